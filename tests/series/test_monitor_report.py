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


def test_the_profile_verb_builds_either_reference_of_a_forecaster(
    series_package: Path, tmp_path: Path
) -> None:
    """The packaged profile reads the history (calibrated out of sample) and watches the gaps
    between sensors; `--series-reference validation --no-series-gaps` rebuilds it from that
    period alone, without gaps; a reference that does not exist is exit 2."""
    import shutil

    from tests.conftest import run_cli

    pkg = open_package(series_package)
    packaged = package_profile(pkg)
    assert packaged.meta["calibration"] == "out_of_sample"
    assert packaged.meta["reference"]["series_reference"] == "history"
    copy = tmp_path / "forecaster"
    shutil.copytree(series_package, copy)
    assert any(name.endswith("_gap") for name in packaged.meta["feature_names"])
    done = run_cli(
        "monitor", "profile", str(copy), "--series-reference", "validation", "--no-series-gaps"
    )
    assert done.returncode == 0, done.stderr
    rebuilt = package_profile(open_package(copy))
    assert rebuilt.meta["calibration"] == "in_sample"
    assert not any(name.endswith("_gap") for name in rebuilt.meta["feature_names"])
    assert len(rebuilt.features) < len(packaged.features)  # one period of the history
    bad = run_cli("monitor", "profile", str(copy), "--series-reference", "everything")
    assert bad.returncode == 2 and "--series-reference" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_the_report_scores_windows_per_sensor_when_asked(
    series_package: Path, tmp_path: Path
) -> None:
    """`--windows-score sensor` sums each sensor's features and names the sensor; a score
    that does not exist is exit 2 naming the flag and the valid values."""
    import json

    from tests.conftest import run_cli

    source = str(open_package(series_package).manifest.lineage.data["source"])
    out = tmp_path / "drift.json"
    done = run_cli(
        "monitor", "report", str(series_package), "--data", source,
        "--windows-score", "sensor", "--json", str(out),
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    test = json.loads(out.read_text())["drift"]["tests"][0]
    assert test["name"] == "windows" and test["score_rule"] == "largest sum of |z| over a group"
    assert test["top_group"]["group"] in open_package(series_package).preprocessing.inputs
    bad = run_cli(
        "monitor", "report", str(series_package), "--data", source, "--windows-score", "x"
    )
    assert bad.returncode == 2 and "--windows-score" in bad.stderr and "sensor" in bad.stderr
    assert "Traceback" not in bad.stderr
