"""`data.text.tokenizer_from`: a model trained on another package's tokenizer shares its token
ids, so the two can join one `scaledl ensemble` (tokenizer training itself is not reproducible
from run to run). Synthetic reviews, so this runs without SST-2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml

from scaledl.package import open_package
from tests.conftest import run_cli

GOOD = ["a gripping , funny film", "warm and wise", "the cast is superb", "a joy to watch"]
BAD = ["dull and lifeless", "a tedious mess", "the plot is thin", "nothing works here"]


def _reviews(path: Path, rows: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    lines = ["label\tsentence"]
    for _ in range(rows):
        label = int(rng.integers(0, 2))
        words = [str(rng.choice(GOOD if label else BAD)) for _ in range(int(rng.integers(1, 4)))]
        lines.append(f"{label}\t{' , '.join(words)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _recipe(folder: Path, name: str, model: dict[str, object], **text: object) -> Path:
    recipe = {
        "name": name,
        "data": {
            "source": "train.tsv",
            "val_fraction": 0.2,
            "text": {"test_source": "dev.tsv", "vocab_size": 60, "max_length": 16, **text},
        },
        "model": model,
        "train": {"epochs": 2, "batch_size": 32, "lr": 0.01},
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_a_model_on_a_shared_tokenizer_joins_an_ensemble(tmp_path: Path) -> None:
    from scaledl.verify import verify_package

    _reviews(tmp_path / "train.tsv", 300, 0)
    _reviews(tmp_path / "dev.tsv", 60, 1)
    first = _recipe(tmp_path, "gru", {"family": "rnn", "embed_dim": 8, "hidden": 8})
    done = run_cli("train", str(first), "--out", str(tmp_path / "gru"))
    assert done.returncode == 0, done.stderr
    # a path in the recipe file is read relative to the recipe's folder
    second = _recipe(
        tmp_path,
        "cnn",
        {"family": "cnn", "embed_dim": 8, "channels": 4, "kernel_sizes": [2]},
        tokenizer_from="gru/package",
        tokenizer="word",  # the package's tokenizer wins over these settings
        vocab_size=30,
    )
    done = run_cli("train", str(second), "--out", str(tmp_path / "cnn"))
    assert done.returncode == 0, done.stderr
    a, b = (open_package(tmp_path / name / "package") for name in ("gru", "cnn"))
    assert b.manifest.preprocessing.tokenizer == a.manifest.preprocessing.tokenizer  # type: ignore[union-attr]
    assert (a.path / "tokenizer.json").read_bytes() == (b.path / "tokenizer.json").read_bytes()
    done = run_cli(
        "ensemble", str(a.path), str(b.path), "--out", str(tmp_path / "ens"),
        "--json", str(tmp_path / "ens.json"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    verify_package(tmp_path / "ens")  # raw sentences → shared ids → the soft vote
    report = json.loads((tmp_path / "ens.json").read_text())
    assert [m["name"] for m in report["members"]] == ["gru", "cnn"]
    assert all(0.0 <= m["test_accuracy"] <= 1.0 for m in report["members"])


def test_a_tokenizer_from_a_package_that_is_not_text_is_refused(
    digits_package: Path, tmp_path: Path
) -> None:
    _reviews(tmp_path / "train.tsv", 100, 0)
    _reviews(tmp_path / "dev.tsv", 20, 1)
    model = {"family": "mlp", "embed_dim": 8, "hidden": [8], "bigram_buckets": 64}
    for source, expected in (
        (str(digits_package), "is not a text model (its preprocessing is image)"),
        (str(tmp_path / "nowhere"), "does not exist"),
        (str(tmp_path), "is not a model package: it has no manifest.json"),  # a data folder
    ):
        recipe = _recipe(tmp_path, "bad", model, tokenizer_from=source)
        done = run_cli("train", str(recipe), "--out", str(tmp_path / "bad"))
        assert done.returncode == 2, done.stderr
        assert "data.text.tokenizer_from" in done.stderr and expected in done.stderr
        assert "Traceback" not in done.stderr
