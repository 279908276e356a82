"""`scaledl monitor report` on texts: in-distribution rows pass, shifted texts are flagged
with the features that moved named."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from scaledl.config.data import DataConfig
from scaledl.config.monitor import DriftConfig
from scaledl.modalities import load_splits
from scaledl.monitor.check import check_arrays
from scaledl.package import open_package
from tests.conftest import run_cli

pytestmark = pytest.mark.slow


def typos(texts: list[str], seed: int = 0) -> list[str]:
    """Every word of four letters or more gets two neighbouring letters swapped."""
    rng = np.random.default_rng(seed)
    out = []
    for text in texts:
        words = []
        for w in text.split():
            if len(w) >= 4:
                i = int(rng.integers(0, len(w) - 1))
                w = w[:i] + w[i + 1] + w[i] + w[i + 2 :]
            words.append(w)
        out.append(" ".join(words))
    return out


def test_held_out_texts_pass_and_typos_are_flagged(text_package: Path, sst2_small: Path) -> None:
    pkg = open_package(text_package)
    splits = load_splits(DataConfig.model_validate(pkg.manifest.lineage.data), seed=0)
    clean = check_arrays(pkg, splits.val.x, splits.val.y, config=DriftConfig(seed=0, alpha=0.01))
    assert not clean.drift.drift, clean.drift.to_json()
    shifted = np.array(typos(list(splits.val.x)), dtype=object)
    found = check_arrays(pkg, shifted, splits.val.y, config=DriftConfig(seed=0))
    assert found.drift.drift
    ks = found.drift.test("ks_pca")
    assert {"unknown_share", "band_top100"} & set(ks.detail["shifted_features"])


def test_monitor_report_cli_on_a_file_of_texts(text_package: Path, tmp_path: Path) -> None:
    texts = tmp_path / "tickets.txt"
    texts.write_text(
        "\n".join(f"my order {i} arrived broken , please send a refund" for i in range(60)),
        encoding="utf-8",
    )
    out, summary = tmp_path / "drift.html", tmp_path / "drift.json"
    result = run_cli(
        "monitor",
        "report",
        str(text_package),
        "--data",
        str(texts),
        "--out",
        str(out),
        "--json",
        str(summary),
        "--seed",
        "0",
    )
    assert result.returncode == 1, result.stderr + result.stdout
    doc = json.loads(summary.read_text())
    assert doc["drift"]["drift"] and doc["accuracy"] is None
    html = out.read_text(encoding="utf-8")
    assert "Input features: reference vs new data" in html and "tokens_log2" in html
