"""`scaledl monitor report --out` on a forecaster: the HTML page lists its window features."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scaledl.monitor.check import check_arrays
from scaledl.monitor.reference import package_profile
from scaledl.monitor.report import build_report
from scaledl.package import open_package
from tests.series.conftest import series_values


def test_report_page_of_a_forecaster_names_its_window_features(series_package: Path) -> None:
    pkg = open_package(series_package)
    values = series_values(900)
    windows = np.stack([values[560 + i : 560 + i + 48] for i in range(40)]).astype(np.float32)
    windows[:, :, 0] += 200.0  # the load sensor reads 200 too high
    assessment = check_arrays(pkg, windows)
    profile = package_profile(pkg)
    page = build_report(assessment, profile, pkg.name).render()
    assert assessment.drift.drift
    assert "load.floor" in page and "Input features: reference vs new data" in page
