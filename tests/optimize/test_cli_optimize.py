"""`scaledl optimize` end to end through the real CLI on the small digits package."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scaledl.package import MODEL_JSON, WEIGHTS, open_package, write_package
from tests.conftest import run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
QUICK_INT8 = [
    *("--set", "int8-static.calibrations=[minmax]"),
    *("--set", "int8-static.reduce_range=true"),
]


def test_tiny_search_writes_verified_packages(digits_package: Path, tmp_path: Path) -> None:
    out = tmp_path / "opt"
    budget_min = 3.0
    proc = run_cli(
        "optimize",
        str(digits_package),
        "--out",
        str(out),
        "--time-budget-min",
        str(budget_min),
        "--methods",
        "prune,distill,int8-static",
        "--set",
        "prune.ratios=[0.5]",
        "--set",
        "distill.epochs=1",
        *QUICK_INT8,
        "--exporter",
        "legacy",
        "--keep-all",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "chosen c" in proc.stdout
    frontier = json.loads((out / "frontier.json").read_text())
    assert frontier["met"] is True and frontier["chosen"] is not None
    assert frontier["seconds"] <= budget_min * 60
    by_id = {c["id"]: c for c in frontier["candidates"]}
    assert [c["transforms"] for c in frontier["candidates"]][:2] == [
        [],
        ["int8:static:minmax:reduce-range"],
    ]
    pruned = [c for c in frontier["candidates"] if c["transforms"][:2] == ["prune:0.5", "distill"]]
    assert pruned and pruned[0]["status"] == "ok", frontier["candidates"]
    chosen = by_id[frontier["chosen"]]
    assert chosen["chosen"] and chosen["accuracy_drop"] <= 0.01 + 1e-9
    for entry in frontier["candidates"][1:]:
        if entry["status"] != "ok":
            continue
        package = out / entry["package"]
        manifest = open_package(package).manifest
        assert manifest.lineage.parent == str(digits_package.resolve())
        assert manifest.lineage.transforms == entry["transforms"]
        assert manifest.metrics.latency is not None and manifest.metrics.latency.batch_size == 1
    proc = run_cli("verify", str(out / chosen["package"]))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    quantized = out / by_id["c01"]["package"]
    assert open_package(quantized).manifest.parity.reference.startswith("onnxruntime-int8")
    assert run_cli("verify", str(quantized)).returncode == 0
    report = (out / "report.html").read_text()
    assert "Why this candidate" in report and "data:image/png;base64" in report


def test_impossible_budget_exits_1_with_a_diagnosis(digits_package: Path, tmp_path: Path) -> None:
    out = tmp_path / "opt"
    proc = run_cli(
        "optimize",
        str(digits_package),
        "--out",
        str(out),
        "--methods",
        "int8-static",
        *QUICK_INT8,
        "--latency-ms",
        "0.00001",
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "no candidate meets the budget" in proc.stderr
    assert "latency: the fastest candidate" in proc.stdout
    frontier = json.loads((out / "frontier.json").read_text())
    assert frontier["met"] is False and frontier["chosen"] is None
    assert any("latency" in line for line in frontier["diagnosis"])
    assert (out / frontier["best_effort_package"] / "manifest.json").is_file()


def test_onnx_only_package_is_quantized_and_says_so(digits_package: Path, tmp_path: Path) -> None:
    pkg = open_package(digits_package)
    files = {rel: pkg.path / rel for rel in pkg.manifest.files if rel not in (WEIGHTS, MODEL_JSON)}
    onnx_only = write_package(tmp_path / "onnx-only", pkg.manifest, files)
    out = tmp_path / "opt"
    proc = run_cli(
        "optimize",
        str(onnx_only),
        "--out",
        str(out),
        "--methods",
        "prune,slim,int8-static",
        *QUICK_INT8,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    frontier = json.loads((out / "frontier.json").read_text())
    skipped = {s["method"]: s["reason"] for s in frontier["skipped"]}
    assert "no PyTorch weights" in skipped["prune"] and "slim" in skipped
    assert any(
        c["transforms"] == ["int8:static:minmax:reduce-range"] for c in frontier["candidates"]
    )
    assert "ONNX only" in (out / "report.html").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--methods", "prune,magic"], "valid methods:"),
        (["--target", "tpu"], "valid targets: cpu"),
        (["--max-accuracy-drop", "5"], "--max-accuracy-drop"),
        (["--set", "prune.ratio=0.5"], "settings of prune"),
    ],
)
def test_bad_input_exits_2(
    digits_package: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    proc = run_cli("optimize", str(digits_package), "--out", str(tmp_path / "o"), *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()
