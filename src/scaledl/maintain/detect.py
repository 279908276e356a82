"""Does the live version need an update? The monitor's offline check of the new data."""

from __future__ import annotations

from typing import Any

import numpy as np

from scaledl.data.dataset import DataSplits
from scaledl.errors import PackageError
from scaledl.maintain.config import DetectConfig
from scaledl.monitor.check import check_arrays
from scaledl.monitor.config import DriftConfig
from scaledl.monitor.reference import package_profile, profile_for_splits, session_predict
from scaledl.package import Package


def live_profile(live: Package, old: DataSplits) -> tuple[Any, str]:
    """The live package's reference profile; optimized packages may lack one, and then it is
    built in memory from the old data and the live graph (the package is not modified)."""
    try:
        return package_profile(live), "package"
    except PackageError:
        pass
    task = live.manifest.task
    predict = session_predict(live)
    profile = profile_for_splits(old, live.preprocessing, predict, task)
    return profile, "built from the old data (the package has none)"


def assess(
    live: Package,
    old: DataSplits,
    x: np.ndarray,
    y: np.ndarray,
    config: DetectConfig,
    source: str,
) -> tuple[Any, str]:
    """(Assessment of the new rows against the live version, where its profile came from)."""
    profile, origin = live_profile(live, old)
    assessment = check_arrays(
        live,
        x,
        y,
        profile=profile,
        config=DriftConfig(alpha=config.alpha, seed=config.seed),
        max_accuracy_drop=config.max_accuracy_drop,
        source=source,
    )
    return assessment, origin
