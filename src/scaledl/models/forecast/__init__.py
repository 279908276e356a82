"""Forecasting bodies of the four families, chosen when the front-end produces a forecast form.

`model: {family: mlp}` on a time series builds a DLinear-style linear forecaster, `cnn` a
temporal convolutional network, `rnn` a segment GRU/LSTM with direct multi-step output and
`transformer` PatchTST. Each reads (N, lookback, inputs) standardised by the series front-end and
returns (N, horizon, targets); the `Forecaster` wrapper puts the front-end's scaling around it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from scaledl.errors import ModelError
from scaledl.models.forecast.knobs import FORECAST_KNOBS

_BODIES = {
    "mlp": "scaledl.models.forecast.linear:LinearForecast",
    "cnn": "scaledl.models.forecast.tcn:TCNForecast",
    "rnn": "scaledl.models.forecast.recurrent:RNNForecast",
    "transformer": "scaledl.models.forecast.patchtst:PatchTST",
}


def forecast_families() -> list[str]:
    return sorted(FORECAST_KNOBS)


def validate_forecast_knobs(family: str, knobs: dict[str, Any]) -> BaseModel:
    if family not in FORECAST_KNOBS:
        raise ModelError(
            f"model family {family!r} has no forecaster; valid for time series: "
            f"{', '.join(forecast_families())}"
        )
    cls = FORECAST_KNOBS[family]
    try:
        return cls.model_validate(knobs)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or family}: {e['msg']}" for e in exc.errors()
        )
        valid = ", ".join(cls.model_fields)
        raise ModelError(
            f"model knobs for {family!r} on a time series: {problems} (valid knobs: {valid})"
        ) from None


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
