"""`scaledl data preview` end to end, and its bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli


@pytest.mark.e2e
def test_preview_writes_a_grid(tmp_path: Path) -> None:
    out = tmp_path / "grid.png"
    policy = "augment.policy=[{op: affine}, {op: erasing}, {op: mixup, p: 0.5}]"
    result = run_cli("data", "preview", "--out", str(out), "--samples", "4", "--set", policy)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = " ".join(result.stdout.split())  # rich wraps long lines
    assert "affine(" in text and "4 samples × 5 views" in text


@pytest.mark.e2e
def test_unknown_augmentation_exits_2_listing_valid_ones(tmp_path: Path) -> None:
    policy = "augment.policy=[{op: sharpen}]"
    result = run_cli("data", "preview", "--out", str(tmp_path / "g.png"), "--set", policy)
    assert result.returncode == 2
    text = " ".join(result.stderr.split())
    assert "unknown augmentation 'sharpen'" in text
    assert "randaugment" in text and "Traceback" not in text
    assert not (tmp_path / "g.png").exists()
