"""The registry of modalities (timm's pattern): kind → unit, and the data-source dispatch."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

from scaledl.config.data import DataConfig
from scaledl.contract import SpecBase
from scaledl.data.dataset import DataSplits, LoadedData
from scaledl.errors import DataError
from scaledl.modalities.base import Modality

log = logging.getLogger(__name__)

_UNITS: dict[str, Modality] = {}
# Built-in units are imported on first use, so `import scaledl` stays light.
_BUILTIN = {
    "audio": "scaledl.modalities.audio:AudioModality",
    "image": "scaledl.modalities.image:ImageModality",
    "table": "scaledl.modalities.table:TableModality",
    "sequence": "scaledl.modalities.sequence:SequenceModality",
    "series": "scaledl.modalities.series:SeriesModality",
    "text": "scaledl.modalities.text:TextModality",
}
# Which unit reads a source when `data.kind` is `auto`: the first that claims it, in this order
# (specific readers before the catch-all image folder; series and text files are read as such
# only when the recipe asks, or by their own suffixes for text).
_CLAIM_ORDER: list[str] = ["series", "text", "table", "audio", "image"]


def register_modality(unit: Modality, claim_first: bool = False) -> Modality:
    """Make `unit` the modality for its kind (`claim_first`: ask it before the built-ins)."""
    _UNITS[unit.kind] = unit
    if unit.kind not in _CLAIM_ORDER:
        _CLAIM_ORDER.insert(0, unit.kind) if claim_first else _CLAIM_ORDER.append(unit.kind)
    return unit


def modality(kind: str) -> Modality:
    if kind not in _UNITS and kind in _BUILTIN:
        module, _, cls = _BUILTIN[kind].partition(":")
        register_modality(getattr(importlib.import_module(module), cls)())
    if kind not in _UNITS:
        raise DataError(f"unknown kind of input {kind!r}; valid: {', '.join(modality_kinds())}")
    return _UNITS[kind]


def modality_of(spec: SpecBase) -> Modality:
    return modality(spec.kind)


def modality_kinds() -> list[str]:
    return sorted(set(_UNITS) | set(_BUILTIN))


# ---- data sources -------------------------------------------------------------------------
def load_data(config: DataConfig, task: str = "classification") -> LoadedData:
    """Read the data set named by `config.source`; errors name the input and what is valid."""
    spec = config.source.strip()
    if not spec:
        raise DataError(
            "data.source is empty; give `digits`, a folder, or a .csv/.parquet/.npz/IDX file"
        )
    if spec == "digits":
        from scaledl.data.sources import load_digits_data

        loaded = load_digits_data()
    else:
        path = Path(spec).expanduser()
        if not path.exists():
            raise DataError(
                f"data source {spec!r} does not exist; expected `digits`, an image folder, "
                "an IDX folder/file, or a .csv/.parquet/.npz file"
            )
        loaded = _read(path, config, task)
    if loaded.config is None:
        loaded.config = config
    if len(loaded.data) == 0:
        raise DataError(f"data source {spec!r} holds no samples")
    if task == "classification" and loaded.labels is not None and len(loaded.labels) < 2:
        raise DataError(f"data source {spec!r} has {len(loaded.labels)} class; need at least 2")
    log.info("loaded %s: %d rows (%s)", spec, len(loaded.data), loaded.kind)
    return loaded


def load_splits(config: DataConfig, seed: int = 0, task: str = "classification") -> DataSplits:
    """Train/validation/test splits of a data source (a predefined test split is kept).

    `config.split_seed`, when set, is the split's seed instead of `seed` (the recipe's)."""
    if config.split_seed is not None:
        seed = config.split_seed
    loaded = load_data(config, task)
    if task == "classification" and loaded.labels is None:
        raise DataError(
            f"data source {config.source!r} has no labels; training and evaluation need a "
            "label column"
        )
    return modality(loaded.kind).split(loaded, config, seed, task)


def _read(path: Path, config: DataConfig, task: str) -> LoadedData:
    if path.is_file() and path.suffix.lower() == ".npz":
        from scaledl.data.arrays import read_npz  # arrays of any kind, by shape or data.kind

        return read_npz(path, config, task)
    if config.kind != "auto":
        unit = modality(config.kind)
        if unit.claims(path, config):
            return unit.read(path, config, task)
        raise DataError(f"data.kind is {config.kind!r} but {path} is not {config.kind} data")
    for kind in _CLAIM_ORDER:
        unit = modality(kind)
        if unit.claims(path, config):
            return unit.read(path, config, task)
    raise DataError(
        f"data source {path} has an unknown type {path.suffix or '(no suffix)'}; valid: "
        "`digits`, an image or audio folder, an IDX folder/file (*-ubyte[.gz]), .csv, .tsv, "
        ".parquet, .npz, and for text .jsonl or .txt"
    )


def fit_preprocessing(splits: DataSplits) -> SpecBase:
    """What the splits' modality learns from the training rows."""
    return modality(splits.kind).fit(splits)


def to_graph(spec: SpecBase, raw: Any) -> Any:
    return modality_of(spec).to_graph(spec, raw)
