"""The reference profile of a forecaster: what normal windows and normal errors look like.

Differences from the other modalities' profiles, and why:

- **features** are the readable per-variable window features of `modalities.series.drift`
  (level, spread, step, roughness, stillness), kept as they are (an identity projection): a
  drift report names "OT.level", not a principal component;
- the **input reference is a sequence of windows in time order**. Consecutive windows overlap,
  so the drift test is calibrated on chunks of this sequence (`monitor.calibrated`), not on
  textbook p-values. Which sequence is a choice (`ProfileOptions.series_reference`):
  - `history` (the default): the newest `max_reference` windows through the end of the
    validation period (training rows included: inputs the model has seen are normal inputs),
    calibrated **out of sample**. Its false alarms hold on weeks the reference never held
    (ETTh1: 5.9 % at alpha 5 %), and it alarms less readily on a small shift;
  - `validation`: that period alone, the newest the model never trained on, calibrated in
    sample: the most sensitive, but a seasonal series few months long alarms on most unseen
    weeks (ETTh1: 100 %; `bench/forecast_drift.py` measures both);
- the profile adds **gaps between sensors** (`modalities.series.drift.fit_gaps`): each
  variable's level, floor, spread and roughness minus what the other variables predict, fitted
  on the reference windows. They are extra rows of the projection, and `meta["tolerance"]`
  says how far each feature may move before it counts (zero for the per-variable features);
- the **output reference** is the held-out error (MSE on the standardised scale) that live
  errors from feedback are compared with, and the forecasts' mean per target.

The window features grow over releases (`floor` came after the first five). A profile names the
features it holds (`feature_names`), so an older profile keeps working on those:
`align_profile` makes its projection pick them, by name, out of today's feature vector.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np

from scaledl.contract import SeriesSpec
from scaledl.errors import PackageError
from scaledl.metrics import regression_errors
from scaledl.monitor.profile import FORMAT, Predict, ProfileOptions, ReferenceProfile
from scaledl.monitor.projection import Projection

log = logging.getLogger(__name__)
SERIES_TESTS = ["windows"]
SERIES_REFERENCES = ("history", "validation")


def identity_projection(k: int) -> Projection:
    return Projection(
        mean=np.zeros(k, np.float32),
        components=np.eye(k, dtype=np.float32),
        explained_variance=np.ones(k),
    )


@dataclasses.dataclass
class Watched:
    """What a forecaster's drift test compares: the projection live windows' features go
    through, the reference's projected features, their names and tolerances."""

    projection: Projection
    features: np.ndarray  # (n, k) float32, time order
    names: list[str]
    tolerance: list[float]


def watched_features(spec: SeriesSpec, features: np.ndarray, gaps: bool = True) -> Watched:
    """The reference's window features (N, `feature_names` order), with the gaps between
    sensors fitted on them (none with `gaps` off); each gap carries its tolerance."""
    from scaledl.modalities.series.drift import feature_names, fit_gaps

    fitted = fit_gaps(spec, features if gaps else features[:0])
    projection = with_rows(identity_projection(features.shape[1]), fitted.rows)
    own = feature_names(spec)
    return Watched(
        projection=projection,
        features=projection.transform(features),
        names=own + fitted.names,
        tolerance=[0.0] * len(own) + [float(t) for t in fitted.tolerance],
    )


def with_rows(projection: Projection, rows: np.ndarray) -> Projection:
    """The projection followed by `rows` more linear features of its inputs."""
    if len(rows) == 0:
        return projection
    return Projection(
        mean=projection.mean,
        components=np.concatenate([projection.components, rows]).astype(np.float32),
        explained_variance=np.ones(projection.k + len(rows)),
    )


def series_profile(
    sequence_raw: np.ndarray,
    y: np.ndarray,
    spec: SeriesSpec,
    predict: Predict,
    *,
    unscored_raw: np.ndarray | None = None,
    history_raw: np.ndarray | None = None,
    train_rows: np.ndarray | None = None,
    options: ProfileOptions | None = None,
    sources: dict[str, str] | None = None,
) -> ReferenceProfile:
    """A profile from the reference period's windows (time order) and their targets.

    `unscored_raw`: the windows that follow, up to the period's last hour, whose targets lie
    past it — normal inputs of the newest hours, so the input reference includes them.
    `history_raw`: with `series_reference: history`, the whole input reference (every window
    from the start of training through the period's last hour, in time order); without it the
    reference period's own windows are the history.
    """
    from scaledl.modalities.series.drift import window_features

    opts = options or ProfileOptions()
    if opts.series_reference not in SERIES_REFERENCES:
        raise ValueError(f"series_reference {opts.series_reference!r}: {SERIES_REFERENCES}")
    history = opts.series_reference == "history"
    if history and history_raw is not None:
        # keep the newest first: features of windows dropped anyway are not computed
        features = window_features(spec, history_raw[-opts.max_reference :])
    else:
        features = window_features(spec, sequence_raw)
        if unscored_raw is not None and len(unscored_raw):
            features = np.concatenate([features, window_features(spec, unscored_raw)])
    features = features[np.isfinite(features).all(axis=1)]
    if len(features) > opts.max_reference:  # keep the newest, in order
        features = features[-opts.max_reference :]
    watched = watched_features(spec, features, opts.series_gaps)
    outputs = _predict_chunks(predict, sequence_raw)
    errors = regression_errors(outputs, np.asarray(y), np.asarray(spec.target_std))
    stats_rows = train_rows if train_rows is not None else np.asarray(sequence_raw[:, -1, :])
    meta: dict[str, Any] = {
        "format": FORMAT,
        "task": "regression",
        "kind": "series",
        "labels": None,
        "tests": list(SERIES_TESTS),
        "calibration": "out_of_sample" if history else "in_sample",
        "feature_names": watched.names,
        "tolerance": watched.tolerance,
        "mmd_bandwidth": 1.0,
        "explained_variance_ratio": 1.0,
        "reference_error": round(errors["mse_standardized"], 6),
        "reference_mae": round(errors["mae_standardized"], 6),
        "reference_rmse": round(errors["rmse"], 6),
        "forecast_mean": [round(float(v), 6) for v in outputs.mean(axis=(0, 1))],
        "reference": {
            "inputs": len(watched.features),
            "outputs": len(outputs),
            "order": "time",
            **(sources or {}),
            **({"inputs_from": "history"} if history and history_raw is not None else {}),
            "series_reference": opts.series_reference,
        },
    }
    return ReferenceProfile(
        projection=watched.projection,
        features=watched.features,
        task="regression",
        output_predicted=None,
        output_score=None,
        output_confidence=None,
        output_values=None,
        num_classes=None,
        channel_stats=_row_statistics(stats_rows),
        meta=meta,
    )


def _predict_chunks(predict: Predict, x: np.ndarray, size: int = 1024) -> np.ndarray:
    parts = [
        np.asarray(predict(np.ascontiguousarray(x[i : i + size], np.float32)))
        for i in range(0, len(x), size)
    ]
    return np.concatenate(parts)


def _row_statistics(rows: np.ndarray) -> dict[str, np.ndarray]:
    r = np.asarray(rows, np.float64)
    return {
        "mean": r.mean(axis=0).astype(np.float32),
        "std": r.std(axis=0).astype(np.float32),
        "min": r.min(axis=0).astype(np.float32),
        "max": r.max(axis=0).astype(np.float32),
        "p01": np.percentile(r, 1, axis=0).astype(np.float32),
        "p99": np.percentile(r, 99, axis=0).astype(np.float32),
    }


def is_series(profile: ReferenceProfile) -> bool:
    return profile.meta.get("kind") == "series"


def align_profile(profile: ReferenceProfile, spec: SeriesSpec, source: str) -> ReferenceProfile:
    """The profile, its projection picking its own named features out of the window features
    this version computes (a no-op for a profile of the current features)."""
    from scaledl.modalities.series.drift import feature_names

    current = feature_names(spec)
    names = profile.meta.get("feature_names")
    held = [str(name) for name in names] if isinstance(names, list) else []
    width = profile.features.shape[1] if profile.features.ndim == 2 else -1
    if held[: len(current)] == current and _projects_own_features(profile, len(current)):
        _check_tolerance(profile, width, source)
        return profile
    position = {name: i for i, name in enumerate(current)}
    unknown = [name for name in held if name not in position]
    if not held or unknown or len(held) != width:
        shown = (unknown or held)[:5]
        raise PackageError(
            f"{source}: its window features ({len(held)} named, e.g. {shown}; {width} columns) "
            f"do not match this model's inputs; rebuild it with `scaledl monitor profile PACKAGE`"
        )
    _check_tolerance(profile, width, source)
    kept = set(held)
    missing = [name for name in current if name not in kept]
    log.info("%s predates the features %s; it is used without them", source, missing)
    select = np.zeros((len(held), len(current)), np.float32)
    select[np.arange(len(held)), [position[name] for name in held]] = 1.0
    projection = Projection(
        mean=np.zeros(len(current), np.float32),
        components=select,
        explained_variance=np.ones(len(held)),
    )
    return dataclasses.replace(profile, projection=projection)


def _projects_own_features(profile: ReferenceProfile, current: int) -> bool:
    """The profile's projection keeps today's `current` features as they are, then adds its
    gaps (named `*_gap`): one row per named feature, one column per feature computed."""
    names = [str(name) for name in profile.meta.get("feature_names") or []]
    components = profile.projection.components
    return (
        profile.projection.dim == current
        and profile.projection.k == len(names) == profile.features.shape[-1]
        and all(name.endswith("_gap") for name in names[current:])
        and np.array_equal(components[:current], np.eye(current, dtype=components.dtype))
        and bool(np.isfinite(components).all())
    )


def _check_tolerance(profile: ReferenceProfile, width: int, source: str) -> None:
    tolerance = profile.meta.get("tolerance")
    if tolerance is None:
        return
    numbers = isinstance(tolerance, list) and all(
        type(v) in (int, float) and 0 <= v < 1e6
        for v in tolerance  # not bool, not NaN
    )
    if not numbers or len(tolerance) != width:
        raise PackageError(
            f"{source}: its tolerance must be {width} numbers, each 0 or more (one per window "
            f"feature); rebuild it with `scaledl monitor profile PACKAGE`"
        )
