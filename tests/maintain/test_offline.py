"""Without --server: the repository folder alone (nothing to do; an optimized live version)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from scaledl.maintain.log import read_log
from tests.conftest import run_cli
from tests.maintain.conftest import FAST

# The digits CNN exported by dynamo: fp32 35 kB, int8 21 kB; by the legacy exporter (what the
# fine-tune below uses): fp32 22 kB, int8 14 kB. The size limits make an int8 variant win both
# times (7-bit weights keep this small net's accuracy on AVX2's saturating int8 products).
BUDGET = {
    "methods": ["int8-static"],
    "settings": {"int8-static": {"calibrations": ["minmax"], "reduce_range": True}},
    "time_budget_min": 0.5,
    "measure_seconds": 0.1,
    "final_rounds": 2,
    "max_accuracy_drop": 0.05,
    "max_size_mb": 0.03,
}
LEGACY_LIMIT_MB = 0.018


@pytest.mark.e2e
def test_nothing_to_do_on_data_like_the_reference(repo: Path, new_data: dict[str, Path]) -> None:
    result = run_cli("maintain", str(repo), "-m", "digits", "--new-data", str(new_data["clean"]))
    assert result.returncode == 0, result.stderr
    assert "nothing to do" in result.stdout
    records = read_log(repo / "digits" / ".maintain" / "log.jsonl")
    assert [r["step"] for r in records] == ["start", "check", "decision", "done"]
    check = records[1]
    assert not check["assessment"]["degraded"] and check["thresholds"]["alpha"] == 0.05
    assert all(t["p_value"] >= 0.0125 for t in check["assessment"]["drift"]["tests"])
    assert records[2]["action"] == "none" and records[3]["outcome"] == "nothing-to-do"
    assert sorted(p.name for p in (repo / "digits").iterdir()) == [".maintain", "1"]


@pytest.fixture()
def optimized_repo(digits_package: Path, tmp_path: Path) -> Path:
    """REPO/digits/1 = a quantized variant out of `scaledl optimize` (parent: digits_package)."""
    from scaledl.config.optimize import OptimizeConfig
    from scaledl.optimize.api import optimize_package

    out = tmp_path / "optimized"
    result = optimize_package(digits_package, OptimizeConfig(**BUDGET, keep="all"), out)
    variant = result.choice.chosen
    if variant is None or not variant.transforms:
        pytest.skip("no int8 variant of the digits CNN meets the budget on this CPU")
    repo = tmp_path / "repo"
    shutil.copytree(out / str(variant.package), repo / "digits" / "1")
    return repo


@pytest.mark.e2e
@pytest.mark.slow
def test_an_optimized_live_version_is_retrained_from_its_parent_and_searched_again(
    optimized_repo: Path, digits_package: Path, new_data: dict[str, Path], tmp_path: Path
) -> None:
    result = run_cli(
        "maintain",
        str(optimized_repo),
        "-m",
        "digits",
        "--new-data",
        str(new_data["shifted"]),
        "--eval-data",
        str(new_data["shifted"]),
        "--out",
        str(tmp_path / "work"),
        *FAST,
        "--set",
        f"optimize.max_size_mb={LEGACY_LIMIT_MB}",  # an override of the recorded budget
        timeout=600,
    )
    output = result.stdout + result.stderr
    steps = {r["step"]: r for r in read_log(optimized_repo / "digits" / ".maintain" / "log.jsonl")}
    assert str(digits_package) in steps["finetune"]["start_from"]  # the fp32 parent's weights
    assert steps["start"]["eval_sets"][0]["source"].endswith("(--eval-data, all 700 rows)")
    if result.returncode == 1:  # no variant of the new weights fits the recorded budget
        assert "no candidate within the recorded budget" in steps["aborted"]["error"], output
        assert sorted(p.name for p in (optimized_repo / "digits").iterdir()) == [".maintain", "1"]
        return
    assert result.returncode == 0, output
    optimize = steps["optimize"]
    assert optimize["ran"] and optimize["budget"]["methods"] == ["int8-static"]
    budget = optimize["budget"]
    assert budget["max_size_mb"] == LEGACY_LIMIT_MB and budget["measure_seconds"] == 0.1
    assert optimize["transforms"]
    outcome = steps["done"]["outcome"]
    folder = optimized_repo / "digits" / ("2" if outcome == "promoted" else ".maintain/rejected/2")
    lineage = json.loads((folder / "manifest.json").read_text())["lineage"]
    assert lineage["optimize"]["config"]["max_size_mb"] == LEGACY_LIMIT_MB  # the next budget
    assert lineage["transforms"] == optimize["transforms"]
    source = optimized_repo / "digits" / ".maintain" / "sources" / "2"
    assert Path(lineage["parent"]) == source.resolve()  # the next fine-tune starts here
    assert "profile.npz" in json.loads((folder / "manifest.json").read_text())["files"]
    assert run_cli("verify", str(folder)).returncode == 0
