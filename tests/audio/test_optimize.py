"""`scaledl optimize` on an audio package: pruning, int8 and a lighter front-end all run, the
front-end stays fp32, and every written package reads raw waveforms and verifies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scaledl.package import open_package
from tests.conftest import run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_search_on_an_audio_package(audio_package: Path, tmp_path: Path) -> None:
    out = tmp_path / "opt"
    proc = run_cli(
        "optimize",
        str(audio_package),
        "--out",
        str(out),
        "--time-budget-min",
        "6",
        "--max-accuracy-drop",
        "1.0",  # a 3-epoch smoke-test model: every candidate is worth writing
        "--methods",
        "frontend,prune,distill,int8-static",
        "--set",
        "frontend.variants=[{window_ms: 16, hop_ms: 20}]",
        "--set",
        "prune.ratios=[0.5]",
        "--set",
        "distill.epochs=1",
        "--set",
        "int8-static.calibrations=[minmax]",
        "--cross-fit",
        "off",  # cross-fitting has its own tests; here it would retrain five fold parents
        "--keep-all",
    )
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    frontier = json.loads((out / "frontier.json").read_text())
    made = {tuple(c["transforms"]): c for c in frontier["candidates"] if c["status"] == "ok"}
    lighter = ("frontend:win16ms:hop20ms", "distill")
    assert lighter in made and ("prune:0.5", "distill") in made, frontier["candidates"]
    assert any(t and t[-1].startswith("int8") for t in made), list(made)
    for entry in made.values():
        if not entry["transforms"]:
            continue
        package = out / entry["package"]
        pkg = open_package(package)
        assert pkg.manifest.signature.inputs[0].shape == [-1, 6400]
        front = json.loads(pkg.file("model.json").read_text())["frontend"]
        if entry["transforms"][0].startswith("frontend"):
            assert (front["n_fft"], front["hop_length"]) == (128, 160)
        proc = run_cli("verify", str(package))
        assert proc.returncode == 0, proc.stdout + proc.stderr
    quantized = next(e for t, e in made.items() if t and t[-1].startswith("int8"))
    import onnx

    graph = onnx.load(str(out / quantized["package"] / "model.onnx")).graph
    dft = [n for n in graph.node if "frontend.logmel.basis" in n.input]
    assert dft and all(n.op_type == "Conv" for n in dft)  # the front-end's DFT stays fp32
