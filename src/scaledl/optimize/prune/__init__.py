"""Pruning: structured (physically smaller models) and unstructured (zeros, for size only).

`prune_structured(model, spec, ratio)` removes whole units by family and returns the smaller
model with the `ModelSpec` that rebuilds it:

- cnn: output channels of every convolution, with their batch norms, the residual blocks sharing
  a stage's width and the head's inputs (torch-pruning's dependency graph); `widths` knob.
- mlp: hidden neurons (torch-pruning); `hidden` knob.
- transformer: attention heads and feed-forward neurons per block; `layer_heads`/`layer_ff`.
- rnn: GRU and LSTM hidden units per layer and direction (gate-aware slicing); `hidden` list.

Units are ranked by L2 magnitude or first-order Taylor importance (which needs calibration
data), globally across layers or per layer, removed in `steps` equal steps, and kept counts are
rounded to multiples of `round_to`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scaledl.errors import ModelError, UsageError

if TYPE_CHECKING:
    import torch

    from scaledl.models import ModelSpec

__all__ = ["PruneResult", "prune_structured", "prune_unstructured", "pruned_families"]


@dataclass
class PruneResult:
    """A structurally pruned model and what it took.

    `model` is physically smaller and in eval mode; `spec.build()` followed by
    `load_state_dict(model.state_dict())` reproduces it exactly. `removed` counts the units taken
    out ({"channels": n} for cnn, {"neurons": n} for mlp, {"heads": h, "ff_neurons": f} for
    transformer, {"hidden_units": n} for rnn, counting both directions). `skipped` names every
    layer a method left alone, with the reason. MACs are for one sample.
    """

    model: torch.nn.Module
    spec: ModelSpec
    removed: dict[str, int]
    skipped: list[str] = field(default_factory=list)
    params_before: int = 0
    params_after: int = 0
    macs_before: int = 0
    macs_after: int = 0


def _as_calibration(calibration: Any) -> tuple[torch.Tensor, torch.Tensor] | None:
    import torch

    if calibration is None:
        return None
    x, y = calibration
    x = torch.as_tensor(x)  # token ids (text) stay integers
    return (x if not torch.is_floating_point(x) else x.float()), torch.as_tensor(y)


def _check_args(ratio: float, round_to: int, steps: int, head_ratio: float | None) -> None:
    if not 0.0 <= ratio < 1.0:
        raise UsageError(f"pruning ratio {ratio}: valid values are 0 ≤ ratio < 1")
    if head_ratio is not None and not 0.0 <= head_ratio < 1.0:
        raise UsageError(f"head_ratio {head_ratio}: valid values are 0 ≤ head_ratio < 1")
    if round_to < 1:
        raise UsageError(f"round_to {round_to}: must be a positive multiple (1, 8, 16, …)")
    if steps < 1:
        raise UsageError(f"steps {steps}: must be at least 1")


def prune_structured(
    model: torch.nn.Module,
    spec: ModelSpec,
    ratio: float,
    *,
    importance: str = "magnitude",
    round_to: int = 8,
    steps: int = 1,
    calibration: tuple[torch.Tensor, torch.Tensor] | None = None,
    global_ranking: bool = True,
    head_ratio: float | None = None,
    recalibrate_bn: bool = True,
) -> PruneResult:
    """Remove about `ratio` of the prunable units of `model` (built from `spec`).

    importance: "magnitude" (L2 of each unit's weights) or "taylor" (|w · ∂L/∂w| summed over the
    unit, from gradients on `calibration` = (normalized x, y); required then). round_to: kept
    counts are multiples of it (16 suits ONNX Runtime's blocked conv kernels; heads are never
    rounded). steps: the ratio is reached in `steps` equal steps, importance re-estimated at
    each. global_ranking: one threshold across layers (scores normalized per layer) instead of
    the same ratio in every layer. head_ratio: fraction of attention heads to remove
    (transformer; default `ratio`). recalibrate_bn: when `calibration` is given and the model
    has batch norms, their running statistics are re-estimated on the calibration inputs after
    pruning (much better accuracy before fine-tuning; set False to keep the parent's). Ratios
    are fractions of the input model's units. The input model is not modified.
    """
    from scaledl.models import ModelSpec, has_own_form
    from scaledl.optimize.prune.base import PruneOptions, handler_for
    from scaledl.optimize.prune.calibrate import has_batch_norm, recalibrate_batch_norm
    from scaledl.optimize.prune.counting import count_macs, count_params
    from scaledl.optimize.prune.importance import check_importance

    _check_args(ratio, round_to, steps, head_ratio)
    if spec.frontend is not None and not has_own_form(spec.frontend):
        return _prune_body(
            model,
            spec,
            ratio,
            importance=importance,
            round_to=round_to,
            steps=steps,
            calibration=calibration,
            global_ranking=global_ranking,
            head_ratio=head_ratio,
            recalibrate_bn=recalibrate_bn,
        )
    options = PruneOptions(
        ratio, importance, round_to, steps, _as_calibration(calibration), global_ranking, head_ratio
    )
    check_importance(importance, options.calibration)
    handler = handler_for(pruner_key(spec))
    work = copy.deepcopy(model).float().eval()
    params_before = count_params(work)
    macs_before = count_macs(work, spec.input_shape, spec.frontend)
    outcome = handler(work, spec, options)
    if recalibrate_bn and options.calibration is not None and has_batch_norm(work):
        recalibrate_batch_norm(work, options.calibration[0])
    new_spec = ModelSpec(
        spec.family, list(spec.input_shape), spec.num_outputs, outcome.knobs, spec.frontend
    )
    rebuilt = new_spec.build()
    try:
        rebuilt.load_state_dict(work.state_dict())
    except RuntimeError as exc:
        raise ModelError(f"pruned {spec.family} does not match its rebuilt spec: {exc}") from exc
    rebuilt.eval()
    return PruneResult(
        model=rebuilt,
        spec=new_spec,
        removed=outcome.removed,
        skipped=outcome.skipped,
        params_before=params_before,
        params_after=count_params(rebuilt),
        macs_before=macs_before,
        macs_after=count_macs(rebuilt, new_spec.input_shape, new_spec.frontend),
    )


def pruner_key(spec: ModelSpec) -> str:
    """The handler of a model: its family, or `<kind>:<family>` for a modality whose families
    are their own modules (text models are not the image/table families of the same name)."""
    from scaledl.models import has_own_form

    if spec.frontend is None or not has_own_form(spec.frontend):
        return spec.family
    return f"{spec.frontend['kind']}:{spec.family}"


def _prune_body(
    model: torch.nn.Module, spec: ModelSpec, ratio: float, **options: Any
) -> PruneResult:
    """A model behind a modality front-end: prune its family body on the front-end's features
    (the front-end's fixed weights are never touched) and put the front-end back."""
    import torch

    from scaledl.models import ModelSpec
    from scaledl.optimize.prune.counting import count_macs, count_params

    front, body = model.get_submodule("frontend"), model.get_submodule("body")
    with torch.no_grad():
        feature_shape = list(front(torch.zeros(1, *spec.input_shape)).shape[1:])
        calibration = _as_calibration(options.pop("calibration"))
        if calibration is not None:
            calibration = (front.eval()(calibration[0]), calibration[1])
    body_spec = ModelSpec(spec.family, feature_shape, spec.num_outputs, spec.knobs)
    inner = prune_structured(body, body_spec, ratio, calibration=calibration, **options)
    new_spec = ModelSpec(
        spec.family, list(spec.input_shape), spec.num_outputs, inner.spec.knobs, spec.frontend
    )
    rebuilt = new_spec.build()
    rebuilt.get_submodule("body").load_state_dict(inner.model.state_dict())
    rebuilt.eval()
    return PruneResult(
        model=rebuilt,
        spec=new_spec,
        removed=inner.removed,
        skipped=inner.skipped,
        params_before=count_params(model),
        params_after=count_params(rebuilt),
        macs_before=count_macs(model, spec.input_shape),
        macs_after=count_macs(rebuilt, new_spec.input_shape),
    )


def pruned_families() -> list[str]:
    """Families `prune_structured` handles."""
    from scaledl.optimize.prune.base import pruned_families as families

    return families()


def prune_unstructured(model: torch.nn.Module, sparsity: float) -> tuple[Any, dict[str, float]]:
    """Zero the `sparsity` fraction of smallest conv/linear/recurrent weights (a copy; same shapes).

    Size only: dense kernels run zeros as fast as any other value. Returns (model, stats) with
    the sparsity reached and the deflate-compressed weight bytes before and after.
    """
    from scaledl.optimize.prune.unstructured import prune_unstructured as run

    return run(model, sparsity)
