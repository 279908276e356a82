"""The single-tool paths scaledl optimize is compared with, as a user would run them.

- ONNX Runtime static int8 alone: quant_pre_process + quantize_static (QDQ, MinMax calibration on
  training rows, per-channel QInt8 weights × QUInt8 activations) on the parent's graph.
- Torch-Pruning alone: MagnitudePruner at 50% (L2, its defaults: no channel rounding), then a
  plain fine-tune on the labels for as many epochs as scaledl's distillation, exported to ONNX.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def ort_static_int8(onnx_bytes: bytes, calibration_x: np.ndarray) -> bytes:
    from scaledl.optimize.quantize import quantize_static_int8

    return quantize_static_int8(
        onnx_bytes, calibration_x, calibration="minmax", per_channel=True, reduce_range=False
    )


def _attention_layers(model: Any) -> list[Any]:
    from scaledl.models.transformer import Attention

    found = []
    for module in model.modules():
        if isinstance(module, Attention):
            found.extend([module.qkv, module.out])
    return found


def _prune(model: Any, example: Any, ignored: list[Any]) -> Any:
    import torch_pruning as tp

    pruner = tp.pruner.MagnitudePruner(
        model,
        example,
        importance=tp.importance.MagnitudeImportance(p=2),
        pruning_ratio=0.5,
        ignored_layers=ignored,
    )
    pruner.step()
    return model


def torch_pruning_finetune(
    parent: Any, splits: Any, preprocessing: dict[str, Any], epochs: int, seed: int = 0
) -> tuple[Any, list[str]]:
    """(pruned and fine-tuned model, notes). Raises when Torch-Pruning cannot prune the model."""
    import torch

    from scaledl.config.train import TrainConfig
    from scaledl.preprocess import apply_preprocessing
    from scaledl.train.loop import Trainer

    notes: list[str] = []
    before = sum(p.numel() for p in parent.parameters())
    example = torch.from_numpy(apply_preprocessing(splits.train.x[:2], preprocessing))
    model = copy.deepcopy(parent).eval()
    # what a user would pass after a first crash: the head, and a frozen stem (patch
    # whitening) whose ± filter pairs must stay whole
    keep = [model.head, *(m for m in model.modules() if not getattr(m, "prunable", True))]
    try:
        _prune(model, example, keep)
        with torch.no_grad():
            model(example)
    except Exception as exc:  # e.g. a reshape into heads that channel pruning broke
        notes.append(f"whole-model pruning failed ({type(exc).__name__}: {exc}); attention kept")
        model = copy.deepcopy(parent).eval()
        _prune(model, example, [*keep, *_attention_layers(model)])
    after = sum(p.numel() for p in model.parameters())
    if after >= before:
        raise RuntimeError("Torch-Pruning found nothing it can prune in this model")
    notes.append(f"parameters {before} → {after}")
    config = TrainConfig(epochs=epochs, lr=1e-3, weight_decay=0.0)
    result = Trainer(model, splits, config, preprocessing, seed=seed).fit()
    return result.model.eval(), notes
