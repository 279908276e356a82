"""Small slices of SST-2 (the first rows of its files) and one tiny trained text package."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SHARED_DATASETS

SST2 = SHARED_DATASETS / "sst2"


def require_sst2() -> None:
    if not (SST2 / "train.tsv").is_file():
        pytest.skip(f"the SST-2 data set is not at {SST2}")


def sst2_slice(dest: Path, train_rows: int = 600, dev_rows: int = 120) -> Path:
    """dest/train.tsv and dest/dev.tsv: the first rows of SST-2's files (header kept)."""
    require_sst2()
    dest.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train.tsv", train_rows), ("dev.tsv", dev_rows)):
        lines = (SST2 / name).read_text(encoding="utf-8").splitlines(keepends=True)
        (dest / name).write_text("".join(lines[: rows + 1]), encoding="utf-8")
    return dest / "train.tsv"


def text_recipe(train: Path, family: str = "cnn", **knobs: object) -> dict[str, object]:
    small = {
        "mlp": {"embed_dim": 16, "hidden": [16], "bigram_buckets": 256},
        "cnn": {"embed_dim": 16, "channels": 8, "kernel_sizes": [2, 3]},
        "rnn": {"embed_dim": 16, "hidden": 8},
        "transformer": {"embed_dim": 16, "heads": 2, "layers": 1, "ff": 16},
    }[family]
    return {
        "name": f"sst2-{family}",
        "seed": 0,
        "data": {
            "source": str(train),
            "text": {"test_source": "dev.tsv", "vocab_size": 800, "max_length": 48},
        },
        "model": {"family": family, **small, **knobs},
        "train": {"epochs": 2, "batch_size": 32, "lr": 0.005},
    }


@pytest.fixture(scope="session")
def sst2_small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sst2_slice(tmp_path_factory.mktemp("sst2"))


@pytest.fixture(scope="session")
def text_package(sst2_small: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny CNN trained on 600 SST-2 rows (read-only: copy it before changing it)."""
    from scaledl.pipeline.train import train_recipe
    from scaledl.recipe import validate_recipe

    out = tmp_path_factory.mktemp("text-run")
    return train_recipe(validate_recipe(text_recipe(sst2_small)), out).package
