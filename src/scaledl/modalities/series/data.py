"""Reading a series source into windows and splitting it by time (never shuffled)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scaledl.config.data import DataConfig
from scaledl.config.series import SeriesConfig
from scaledl.data.dataset import DataSplits, LoadedData
from scaledl.data.series.table import SeriesTable, read_series
from scaledl.data.series.windows import (
    Layout,
    Period,
    all_windows,
    layout_for,
    periods,
    split_starts,
    take_windows,
)
from scaledl.errors import DataError


@dataclass
class SeriesData(LoadedData):
    """A loaded series: `data` holds every window of the file (views); `table` the rows."""

    table: SeriesTable | None = None
    layout: Layout | None = None
    series: SeriesConfig = field(default_factory=SeriesConfig)


@dataclass
class SeriesSplits(DataSplits):
    """Splits that remember the periods and each window's start row (for audits and stats)."""

    table: SeriesTable | None = None
    layout: Layout | None = None
    series: SeriesConfig = field(default_factory=SeriesConfig)
    periods: list[Period] = field(default_factory=list)
    starts: dict[str, range] = field(default_factory=dict)

    def period(self, name: str) -> Period:
        return next(p for p in self.periods if p.name == name)


def series_config(config: DataConfig) -> SeriesConfig:
    return config.series if config.series is not None else SeriesConfig()


def read_source(path: Path, config: DataConfig, task: str) -> SeriesData:
    if task != "regression":
        raise DataError(
            f"data {path} is a time series: forecasting is a regression task; set task: "
            "regression in the recipe"
        )
    cfg = series_config(config)
    table = read_series(path, cfg)
    layout = layout_for(table, cfg)
    windows = all_windows(table, layout)
    if len(windows) == 0:
        raise DataError(
            f"time series {path} has {len(table)} rows: too few for one window of lookback "
            f"{cfg.lookback} + horizon {cfg.horizon}"
        )
    return SeriesData(
        data=windows,
        kind="series",
        labels=None,
        scale=1.0,
        fingerprint=_fingerprint(table, layout),
        source=str(path),
        feature_names=[table.columns[i] for i in layout.inputs],
        table=table,
        layout=layout,
        config=config,
        series=cfg,
    )


def _fingerprint(table: SeriesTable, layout: Layout) -> str:
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(table.values).tobytes())
    if table.times is not None:
        digest.update(np.ascontiguousarray(table.times).tobytes())
    digest.update(repr((layout.inputs, layout.targets, layout.lookback, layout.horizon)).encode())
    return digest.hexdigest()[:16]


def split_series(loaded: LoadedData, config: DataConfig, seed: int) -> SeriesSplits:
    if not isinstance(loaded, SeriesData) or loaded.table is None or loaded.layout is None:
        raise DataError(f"data {loaded.source} is not a time series")
    table, layout, cfg = loaded.table, loaded.layout, loaded.series
    parts = periods(table, cfg, config.val_fraction, config.test_fraction)
    starts = split_starts(layout, parts, cfg.context)
    sets = {name: take_windows(table, layout, s) for name, s in starts.items()}
    for period in parts:
        if len(sets[period.name]) == 0:
            raise DataError(
                f"time series {loaded.source}: the {period.name} period "
                f"({table.time_label(min(period.start, len(table) - 1))}, {len(period)} rows) "
                f"holds no whole window of lookback {layout.lookback} + horizon "
                f"{layout.horizon}; make the period longer or the windows shorter"
            )
    return SeriesSplits(
        train=sets["train"],
        val=sets["val"],
        test=sets["test"],
        kind="series",
        labels=None,
        scale=1.0,
        fingerprint=loaded.fingerprint,
        source=loaded.source,
        feature_names=loaded.feature_names,
        split_seed=seed,
        sizes={name: len(s) for name, s in sets.items()},
        table=table,
        layout=layout,
        config=config,
        series=cfg,
        periods=parts,
        starts=starts,
    )
