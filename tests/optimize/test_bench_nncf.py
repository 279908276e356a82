"""The optimize benchmark's NNCF peer records a failure as an error result, not a crash or a number.

No network and no install: the peer's venv is either impossible to create or holds an
interpreter that fails the way a broken NNCF run does.
"""

from __future__ import annotations

import importlib.util
import stat
import sys
from pathlib import Path
from types import ModuleType

import numpy as np

from tests.conftest import REPO


def _load_peer() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "optimize_nncf", REPO / "bench" / "optimize_nncf.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("optimize_nncf", module)
    spec.loader.exec_module(module)
    return module


def test_a_venv_that_cannot_be_created_is_an_install_error(tmp_path: Path) -> None:
    peer = _load_peer()
    missing = tmp_path / "no-such-python"
    result = peer.install(tmp_path / "venv", base_python=str(missing))
    assert result["installed"] is False
    assert result["exit_code"] == 127
    assert str(missing) in result["error"]
    assert result["requirements"][0] == peer.NNCF


def test_a_failing_quantization_records_the_last_lines_and_no_numbers(tmp_path: Path) -> None:
    peer = _load_peer()
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    # an installed-looking venv whose interpreter fails like a broken NNCF run
    (venv / ".nncf-installed").write_text(" ".join([peer.NNCF, peer.openvino_pin()]) + "\n")
    python = venv / "bin" / "python"
    python.write_text(
        "#!/bin/sh\necho 'calibrating' \necho 'nncf.errors.ValidationError: no quantizers' >&2\n"
        "exit 3\n"
    )
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    rows = np.zeros((4, 1, 8, 8), dtype=np.float32)
    labels = np.zeros(4, dtype=np.int64)
    result = peer.quantize_with_accuracy_control(
        tmp_path / "model.onnx", rows, (rows, labels), (rows, labels), tmp_path / "work", venv=venv
    )
    assert result["install"]["cached"] is True
    assert result["exit_code"] == 3
    assert result["error"].splitlines()[-1] == "nncf.errors.ValidationError: no quantizers"
    assert "test_accuracy" not in result and "file_bytes" not in result
    # the data travelled to the peer as an .npz it can read back
    with np.load(tmp_path / "work" / "data.npz") as data:
        assert set(data.files) == {"calibration_x", "val_x", "val_y", "test_x", "test_y"}
