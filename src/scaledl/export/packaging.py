"""The artifacts a package holds besides the graph: weights, the served signature, the sample."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from scaledl.contract import Signature, TensorSpec
from scaledl.export.onnx_export import INPUT_NAME, OUTPUT_NAME


def weights_bytes(model: Any) -> bytes:
    from safetensors.torch import save

    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    return bytes(save(state))


def load_weights(model: Any, path: Path) -> Any:
    from scaledl.export.rebuild import load_weights as load

    return load(model, path)


def signature(sample_shape: tuple[int, ...], outputs: int | tuple[int, ...]) -> Signature:
    """Input (-1, *sample_shape) and output (-1, outputs) or (-1, *outputs), e.g. a forecast's
    (-1, horizon, targets)."""
    out_shape = [outputs] if isinstance(outputs, int) else list(outputs)
    return Signature(
        inputs=[TensorSpec(name=INPUT_NAME, datatype="FP32", shape=[-1, *sample_shape])],
        outputs=[TensorSpec(name=OUTPUT_NAME, datatype="FP32", shape=[-1, *out_shape])],
    )


def sample_npz(x_raw: np.ndarray, x: np.ndarray, y: np.ndarray) -> bytes:
    """The held-out sample `verify` re-runs: raw inputs, graph inputs, reference outputs.

    Texts (object arrays of str) are stored as a fixed-width unicode array, so the file reads
    back with `allow_pickle=False` like every other array."""
    buffer = io.BytesIO()
    raw = np.asarray(x_raw)
    if raw.dtype == object:
        raw = np.asarray([str(v) for v in raw.ravel()], dtype=np.str_).reshape(raw.shape)
    np.savez(buffer, raw=raw, input=x, output=y)
    return buffer.getvalue()
