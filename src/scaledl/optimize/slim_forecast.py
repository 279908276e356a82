"""Slimmer forecasters: the same slimming (width, depth) on the forecasting families' knobs.

A forecaster (a model whose front-end produces a forecast form) keeps its front-end — the
scaling inside the graph — and gets a narrower or shallower body: PatchTST's d_model and
feed-forward width / blocks, the recurrent hidden size / layers, the TCN's level widths / levels
(fewer levels also shortens its receptive field), a per-channel MLP's hidden layers. A plain
linear forecaster has nothing to slim.
"""

from __future__ import annotations

import math
from typing import Any

from scaledl.errors import ModelError
from scaledl.models.forecast import validate_forecast_knobs
from scaledl.optimize.slim import ALIGN, scale_depth, scale_width


def forecast_knobs(
    family: str, knobs: dict[str, Any], width: float, depth: float
) -> dict[str, Any]:
    parsed: Any = validate_forecast_knobs(family, knobs)
    if family == "transformer":
        layers = scale_depth(parsed.layers, depth)
        d_model = scale_width(parsed.d_model, width, math.lcm(ALIGN, parsed.heads))
        out = {**knobs, "d_model": d_model, "layers": layers, "ff": scale_width(parsed.ff, width)}
        per_layer = parsed.per_layer()[:layers]
        if parsed.layer_heads is not None:
            out["layer_heads"] = [h for h, _ in per_layer]
        if parsed.layer_ff is not None:
            out["layer_ff"] = [scale_width(f, width) for _, f in per_layer]
        return out
    if family == "rnn":
        return {
            **knobs,
            "hidden": scale_width(parsed.hidden, width),
            "layers": scale_depth(parsed.layers, depth),
        }
    if family == "cnn":
        levels = scale_depth(len(parsed.channels), depth)
        return {**knobs, "channels": [scale_width(c, width) for c in parsed.channels[:levels]]}
    hidden = list(parsed.hidden)
    if not hidden:
        raise ModelError("a linear forecaster has no hidden layers to slim")
    keep = scale_depth(len(hidden), depth)
    return {**knobs, "hidden": [scale_width(h, width) for h in hidden[:keep]]}
