"""`scaledl monitor profile` and `scaledl monitor report` as a user runs them (real CLI)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from scaledl.package import open_package
from tests.conftest import run_cli
from tests.monitor.conftest import noisy
from tests.monitor.server import ready
from tests.monitor.test_profile import strip_profile
from tests.v2 import infer_body
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e


def test_profile_verb_adds_a_profile_to_an_older_package(
    digits_package: Path, tmp_path: Path
) -> None:
    old = strip_profile(digits_package, tmp_path / "old")
    result = run_cli("monitor", "report", str(old), "--data", "digits")
    assert result.returncode == 2
    assert "no monitoring profile" in result.stderr and "scaledl monitor profile" in result.stderr
    result = run_cli("monitor", "profile", str(old))
    assert result.returncode == 0, result.stderr
    assert "32 PCA components" in " ".join(result.stdout.split())
    pkg = open_package(old)  # checksums still valid
    monitoring, same = pkg.manifest.monitoring, open_package(digits_package).manifest.monitoring
    assert monitoring is not None and same is not None
    assert monitoring.reference["inputs_from"] == "train"
    assert monitoring.reference == same.reference
    assert run_cli("verify", str(old)).returncode == 0
    bad = run_cli("monitor", "profile", str(old), "--components", "0")
    assert bad.returncode == 2 and "--components" in bad.stderr
    wrong = run_cli("monitor", "profile", str(old), "--series-reference", "validation")
    assert wrong.returncode == 2 and "applies to forecasters" in wrong.stderr
    assert "Traceback" not in wrong.stderr
    gaps = run_cli("monitor", "profile", str(old), "--no-series-gaps")
    assert gaps.returncode == 2 and "--series-gaps/--no-series-gaps applies" in gaps.stderr


def test_report_exit_codes_and_html(
    digits_package: Path, tmp_path: Path, digits_raw: tuple[np.ndarray, np.ndarray]
) -> None:
    clean = run_cli(
        "monitor",
        "report",
        str(digits_package),
        "--data",
        "digits",
        "--seed",
        "0",
        "--alpha",
        "0.001",  # strict: held-out digits must not alarm on any machine's weights
        "--json",
        str(tmp_path / "clean.json"),
    )
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "no drift found" in clean.stdout
    body = json.loads((tmp_path / "clean.json").read_text())
    assert body["degraded"] is False and body["accuracy"] is not None
    # New data in the raw training form: 8×8 images with values 0–16, no labels.
    shifted = tmp_path / "noisy.npz"
    np.savez(shifted, x=noisy(digits_raw[0][:300])[:, 0])
    out = tmp_path / "report.html"
    drifted = run_cli(
        "monitor",
        "report",
        str(digits_package),
        "--data",
        str(shifted),
        "--out",
        str(out),
        "--seed",
        "0",
    )
    assert drifted.returncode == 1, drifted.stdout + drifted.stderr
    assert "drift found" in drifted.stdout
    page = out.read_text()
    assert "DRIFT FOUND" in page and page.count("<img") == 4 and "KS on PCA" in page
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, x=np.zeros((10, 5, 5)))
    for args, words in (
        (["--data", str(wrong)], "shape"),
        (["--data", str(tmp_path / "missing.npz")], "does not exist"),
        (["--data", "digits", "--alpha", "1.5"], "--alpha"),
    ):
        result = run_cli("monitor", "report", str(digits_package), *args)
        assert result.returncode == 2 and words in " ".join(result.stderr.split()), result.stderr
        assert "Traceback" not in result.stderr


def test_serve_monitor_flags_are_checked(digits_package: Path) -> None:
    lonely = run_cli("serve", str(digits_package), "--no-auth", "--alert-webhook", "http://x")
    assert lonely.returncode == 2 and "need --monitor" in lonely.stderr
    small = run_cli("serve", str(digits_package), "--no-auth", "--monitor", "--monitor-window", "5")
    assert small.returncode == 2 and "window" in small.stderr and "Traceback" not in small.stderr


def test_serve_with_monitor_flag_watches_traffic(digits_package: Path) -> None:
    """The real `scaledl serve --monitor` process: the extension comes from the registry."""
    import subprocess
    import sys

    import httpx

    from tests.monitor.server import free_port

    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scaledl",
            "serve",
            str(digits_package),
            "--no-auth",
            "--port",
            str(port),
            "--monitor",
            "--monitor-window",
            "40",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: ready(url), timeout=90, interval=0.2, what="the server to be ready")
        body = infer_body(np.zeros((40, 1, 8, 8), np.float32))
        assert httpx.post(f"{url}/v2/models/digits-quick/infer", json=body).status_code == 200

        def checked() -> dict:
            state = httpx.get(f"{url}/v2/models/digits-quick/monitor").json()
            return state if state["versions"][0]["last_check"] else {}

        state = wait_until(checked, timeout=30, what="the first drift check")
        version = state["versions"][0]
        assert version["window"]["capacity"] == 40 and version["samples_seen"] == 40
        assert version["last_check"]["drift"] is True  # 40 blank images are far from digits
        assert httpx.get(f"{url}/dashboard").status_code == 200
    finally:
        proc.terminate()
        proc.wait(30)
