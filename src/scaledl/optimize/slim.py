"""Slimmer architectures of the same family: width and depth multipliers, smaller kernels.

The slim model is built from scratch (its weights come from distillation off the parent, see
`distill.finetune`). Widths are rounded to multiples of 8, the alignment ONNX Runtime's blocked
kernels prefer; depth keeps at least one layer (or block) per stage.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from scaledl.errors import ModelError, UsageError
from scaledl.models import ModelSpec, validate_knobs
from scaledl.models.registry import is_forecaster

ALIGN = 8


def scale_width(value: int, width: float, align: int = ALIGN) -> int:
    """`value · width` rounded to a multiple of `align` (at least `align`, never above value)."""
    if value <= align:
        return value
    return min(value, max(align, align * round(value * width / align)))


def scale_depth(value: int, depth: float) -> int:
    return max(1, round(value * depth))


def _cnn(knobs: dict[str, Any], width: float, depth: float, kernel: int | None) -> dict[str, Any]:
    out = {**knobs, "widths": None}
    parsed = validate_knobs("cnn", knobs)
    stage_out = [w[-1] for w in parsed.stage_widths()]  # type: ignore[attr-defined]
    out["channels"] = [scale_width(c, width) for c in stage_out]
    depths = [scale_depth(d, depth) for d in parsed.stage_depths()]  # type: ignore[attr-defined]
    out["depth"] = depths if isinstance(knobs.get("depth"), list) else depths[0]
    if kernel is not None:
        current = parsed.kernel_size  # type: ignore[attr-defined]
        if kernel % 2 == 0 or kernel < 1 or kernel > current:
            raise UsageError(
                f"kernel_size {kernel}: valid values are odd sizes from 1 to the current {current}"
            )
        out["kernel_size"] = kernel
    return out


def _mlp(knobs: dict[str, Any], width: float, depth: float) -> dict[str, Any]:
    hidden = list(validate_knobs("mlp", knobs).hidden)  # type: ignore[attr-defined]
    keep = scale_depth(len(hidden), depth) if hidden else 0
    return {**knobs, "hidden": [scale_width(h, width) for h in hidden[:keep]]}


def _rnn(knobs: dict[str, Any], width: float, depth: float) -> dict[str, Any]:
    sizes = validate_knobs("rnn", knobs).layer_sizes()  # type: ignore[attr-defined]
    layers = scale_depth(len(sizes), depth)
    return {**knobs, "layers": layers, "hidden": [scale_width(h, width) for h in sizes[:layers]]}


def _transformer(knobs: dict[str, Any], width: float, depth: float) -> dict[str, Any]:
    parsed: Any = validate_knobs("transformer", knobs)
    layers = scale_depth(parsed.layers, depth)
    d_model = scale_width(parsed.d_model, width, math.lcm(ALIGN, parsed.heads))
    per_layer = parsed.per_layer()[:layers]
    out = {**knobs, "d_model": d_model, "layers": layers, "ff": scale_width(parsed.ff, width)}
    if parsed.head_dim is not None:  # explicit (e.g. a pruned parent): shrink with d_model
        out["head_dim"] = max(1, round(parsed.head_dim * d_model / parsed.d_model))
    if parsed.layer_heads is not None:
        out["layer_heads"] = [h for h, _ in per_layer]
    if parsed.layer_ff is not None:
        out["layer_ff"] = [scale_width(f, width) for _, f in per_layer]
    return out


def _text(family: str, knobs: dict[str, Any], width: float, depth: float) -> dict[str, Any]:
    """Text models: the embedding width scales too (the per-text cost of every family)."""
    from scaledl.models.text import validate_text_knobs

    parsed: Any = validate_text_knobs(family, knobs)
    out = {**knobs}
    if family == "transformer":
        d = scale_width(parsed.embed_dim, width, math.lcm(ALIGN, parsed.heads))
        layers = scale_depth(parsed.layers, depth)
        per_layer = parsed.per_layer()[:layers]
        out.update(embed_dim=d, layers=layers, ff=scale_width(parsed.ff, width))
        if parsed.head_dim is not None:
            out["head_dim"] = max(1, round(parsed.head_dim * d / parsed.embed_dim))
        if parsed.layer_heads is not None:
            out["layer_heads"] = [h for h, _ in per_layer]
        if parsed.layer_ff is not None:
            out["layer_ff"] = [scale_width(f, width) for _, f in per_layer]
        return out
    out["embed_dim"] = scale_width(parsed.embed_dim, width)
    if family == "cnn":
        out.update(channels=scale_width(max(parsed.per_width()), width), widths=None)
    elif family == "mlp":
        hidden = list(parsed.hidden)
        keep = scale_depth(len(hidden), depth) if hidden else 0
        out["hidden"] = [scale_width(h, width) for h in hidden[:keep]]
    else:
        sizes = parsed.layer_sizes()
        layers = scale_depth(len(sizes), depth)
        out.update(layers=layers, hidden=[scale_width(h, width) for h in sizes[:layers]])
    return {k: v for k, v in out.items() if v is not None or k in knobs}


def slim_spec(
    spec: ModelSpec, width: float = 1.0, depth: float = 1.0, kernel_size: int | None = None
) -> ModelSpec:
    """A slimmer spec of the same family (untrained; distill it from the parent).

    width multiplies channels (cnn), hidden sizes (mlp, rnn), d_model and ff (transformer),
    rounded to multiples of 8; depth multiplies convolutions per stage (cnn), hidden layers
    (mlp), stacked layers (rnn) or blocks (transformer), keeping at least one; kernel_size
    (cnn only) must be odd and not larger than the current one. A pruned parent's per-layer
    widths are folded back into uniform stage widths. Raises ModelError when the family cannot
    be slimmed or the result would not be smaller.
    """
    if not 0.0 < width <= 1.0 or not 0.0 < depth <= 1.0:
        raise UsageError(f"slim width {width}, depth {depth}: each must be in (0, 1]")
    if kernel_size is not None and (spec.family != "cnn" or spec.frontend is not None):
        raise UsageError(f"kernel_size applies to image cnn models only, not {spec.family!r}")
    if spec.frontend is not None and "vocab_size" in spec.frontend:  # a text model
        knobs = _text(spec.family, spec.knobs, width, depth)
        slim = ModelSpec(
            spec.family, list(spec.input_shape), spec.num_outputs, knobs, spec.frontend
        )
        _check_smaller(spec, slim)
        return slim
    slimmers: dict[str, Callable[..., dict[str, Any]]] = {
        "mlp": _mlp,
        "rnn": _rnn,
        "transformer": _transformer,
    }
    if is_forecaster(spec.frontend):
        from scaledl.optimize.slim_forecast import forecast_knobs

        if kernel_size is not None:
            raise UsageError("kernel_size slimming does not apply to forecasters")
        knobs = forecast_knobs(spec.family, spec.knobs, width, depth)
    elif spec.family == "cnn":
        knobs = _cnn(spec.knobs, width, depth, kernel_size)
    elif spec.family in slimmers:
        knobs = slimmers[spec.family](spec.knobs, width, depth)
    else:
        raise ModelError(
            f"cannot slim a {spec.family!r} model; slimming handles cnn, mlp, rnn, transformer"
        )
    knobs = {k: v for k, v in knobs.items() if v is not None or k in spec.knobs}
    slim = ModelSpec(
        spec.family, list(spec.input_shape), spec.num_outputs, knobs, frontend=spec.frontend
    )
    _check_smaller(spec, slim)
    return slim


def _check_smaller(spec: ModelSpec, slim: ModelSpec) -> None:
    from scaledl.optimize.prune.counting import count_macs, count_params

    before, after = spec.build(), slim.build()
    old = (count_params(before), count_macs(before, spec.input_shape, spec.frontend))
    new = (count_params(after), count_macs(after, slim.input_shape, slim.frontend))
    if new[0] >= old[0] and new[1] >= old[1]:
        raise ModelError(
            f"slimming {spec.family} with these settings does not make it smaller "
            f"({old[0]} → {new[0]} parameters); use a lower width or depth"
        )
