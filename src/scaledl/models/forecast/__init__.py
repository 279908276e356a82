"""Forecasting bodies of the four families, chosen when the front-end produces a forecast form.

`model: {family: mlp}` on a time series builds a DLinear-style linear forecaster, `cnn` a
temporal convolutional network, `rnn` a segment GRU/LSTM with direct multi-step output and
`transformer` PatchTST. Each reads (N, lookback, inputs) standardised by the series front-end and
returns (N, horizon, targets); the `Forecaster` wrapper puts the front-end's scaling around it.
"""

from __future__ import annotations

from typing import Any

from scaledl.config.forecast import forecast_families, validate_forecast_knobs
from scaledl.errors import ModelError

_BODIES = {
    "mlp": "scaledl.models.forecast.linear:LinearForecast",
    "cnn": "scaledl.models.forecast.tcn:TCNForecast",
    "rnn": "scaledl.models.forecast.recurrent:RNNForecast",
    "transformer": "scaledl.models.forecast.patchtst:PatchTST",
}


def build_forecaster(family: str, scaling: Any, shape: Any, knobs: dict[str, Any]) -> Any:
    """The series front-end `scaling` around the family's forecasting body for `shape`."""
    import importlib

    from scaledl.models.forecast.base import Forecaster

    validated = validate_forecast_knobs(family, knobs)
    module, _, name = _BODIES[family].partition(":")
    body_class = getattr(importlib.import_module(module), name)
    try:
        body = body_class(shape, validated)
    except ValueError as exc:
        raise ModelError(f"{family} forecaster does not fit the windows: {exc}") from None
    return Forecaster(scaling, body)


__all__ = ["build_forecaster", "forecast_families", "validate_forecast_knobs"]
