"""The naive baselines' errors on the same windows a model is scored on."""

from __future__ import annotations

from typing import Any

import numpy as np

from scaledl.contract import SeriesSpec
from scaledl.data.series.baselines import baseline_forecasts
from scaledl.metrics import regression_errors

REPORTED = ("mse_standardized", "mae_standardized", "mse", "mae")


def baseline_metrics(spec: SeriesSpec, x_raw: Any, y: np.ndarray) -> dict[str, Any]:
    """{"baselines": {"persistence": {...}, "seasonal_naive": {...}}} for these windows."""
    scale = np.asarray(spec.target_std, dtype=np.float64)
    forecasts = baseline_forecasts(x_raw, list(spec.target_index), spec.horizon, spec.season)
    out: dict[str, Any] = {}
    for name, pred in forecasts.items():
        errors = regression_errors(pred, np.asarray(y), scale)
        out[name] = {k: round(errors[k], 6) for k in REPORTED}
        if name == "seasonal_naive":
            out[name]["season"] = spec.season
    return {"baselines": out} if out else {}
