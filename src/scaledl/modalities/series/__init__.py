"""Time series: a table of timestamped values read as forecast windows.

Source: a CSV/TSV/Parquet file with `data.kind: series` or a `data.series` section. A sample is
one look-back window (lookback, inputs) in original units; its target is the next `horizon`
steps of the target columns. Splits are chronological periods (never shuffled), the scaling
statistics come from the training period, and both the scaling and its inverse live inside the
exported graph: the graph takes the raw window and returns the forecast in original units.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from scaledl.config.data import DataConfig
from scaledl.contract import SeriesSpec, SpecBase
from scaledl.data.dataset import DataSplits, LoadedData
from scaledl.data.series.baselines import default_season
from scaledl.errors import DataError
from scaledl.modalities.base import BatchTransform, Modality
from scaledl.modalities.series.form import ForecastShape

SUFFIXES = {".csv", ".tsv", ".parquet", ".pq"}


class SeriesModality(Modality):
    kind: ClassVar[str] = "series"
    spec_type: ClassVar[type[SeriesSpec]] = SeriesSpec

    # ---- data ---------------------------------------------------------------------------
    def claims(self, path: Path, config: DataConfig) -> bool:
        wanted = config.kind == "series" or config.series is not None
        return wanted and path.is_file() and path.suffix.lower() in SUFFIXES

    def read(self, path: Path, config: DataConfig, task: str) -> LoadedData:
        from scaledl.modalities.series.data import read_source

        return read_source(path, config, task)

    def split(self, loaded: LoadedData, config: DataConfig, seed: int, task: str) -> DataSplits:
        from scaledl.modalities.series.data import split_series

        return split_series(loaded, config, seed)

    # ---- preprocessing ------------------------------------------------------------------
    def fit(self, splits: DataSplits) -> SeriesSpec:
        """Statistics of the training period's rows (never a validation or test row)."""
        from scaledl.modalities.series.data import SeriesSplits

        if not isinstance(splits, SeriesSplits) or splits.table is None or splits.layout is None:
            raise DataError("series preprocessing is fitted on time-series splits")
        table, layout, cfg = splits.table, splits.layout, splits.series
        train = splits.period("train")
        rows = table.values[train.start : train.end].astype(np.float64)
        mean, std = rows.mean(axis=0), rows.std(axis=0)
        std = np.where(std < 1e-8, 1.0, std)
        inputs, targets = layout.inputs, layout.targets
        season = cfg.season or default_season(table.step_seconds)
        return SeriesSpec(
            raw_shape=[layout.lookback, len(inputs)],
            horizon=layout.horizon,
            stride=layout.stride,
            timestamp=cfg.timestamp if table.times is not None else None,
            inputs=[table.columns[i] for i in inputs],
            targets=[table.columns[i] for i in targets],
            target_index=[inputs.index(i) if i in inputs else -1 for i in targets],
            mean=[float(mean[i]) for i in inputs],
            std=[float(std[i]) for i in inputs],
            target_mean=[float(mean[i]) for i in targets],
            target_std=[float(std[i]) for i in targets],
            step_seconds=table.step_seconds,
            season=season,
        )

    def to_graph(self, spec: SeriesSpec, raw: Any) -> np.ndarray:
        """The graph reads raw windows (its first layer standardises them)."""
        self.check_raw(spec, raw)
        return np.ascontiguousarray(raw, dtype=np.float32)

    def batch_transform(self, spec: SeriesSpec) -> BatchTransform:
        return RawWindows()

    def error_scale(self, spec: SeriesSpec) -> np.ndarray:
        return np.asarray(spec.target_std, dtype=np.float64)

    def evaluation_extras(
        self, spec: SeriesSpec, x_raw: Any, y: np.ndarray, outputs: np.ndarray
    ) -> dict[str, Any]:
        from scaledl.modalities.series.evaluation import baseline_metrics

        return baseline_metrics(spec, x_raw, y)

    # ---- model --------------------------------------------------------------------------
    def frontend(self, spec: SeriesSpec, family: str) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "lookback": spec.lookback,
            "horizon": spec.horizon,
            "target_index": list(spec.target_index),
            "mean": list(spec.mean),
            "std": list(spec.std),
            "target_mean": list(spec.target_mean),
            "target_std": list(spec.target_std),
        }

    def build_frontend(self, config: dict[str, Any]) -> tuple[Any, ForecastShape]:
        from scaledl.modalities.series.frontend import SeriesScaling

        try:
            shape = ForecastShape(
                lookback=int(config["lookback"]),
                inputs=len(config["mean"]),
                horizon=int(config["horizon"]),
                targets=len(config["target_mean"]),
                target_index=tuple(int(i) for i in config["target_index"]),
            )
            return SeriesScaling(config), shape
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"series front-end config is malformed ({exc!r})") from None

    # ---- serving ------------------------------------------------------------------------
    def rows_from_json(self, spec: SpecBase, rows: Any) -> np.ndarray:
        """Named observations (the newest `lookback` form one window) or whole windows."""
        from scaledl.modalities.series.predict import windows_from_json

        return windows_from_json(spec_of(spec), rows)

    def format_values(self, spec: SeriesSpec, outputs: np.ndarray) -> list[dict[str, Any]]:
        from scaledl.modalities.series.predict import forecasts

        return forecasts(spec, outputs)

    # ---- monitoring ---------------------------------------------------------------------
    def drift_features(self, spec: SeriesSpec, graph_x: np.ndarray) -> np.ndarray:
        from scaledl.modalities.series.drift import window_features

        return window_features(spec, graph_x)


class RawWindows(BatchTransform):
    """Training feeds the raw windows, as the served graph receives them."""

    def load(self, raw: Any) -> Any:
        import torch

        t = torch.from_numpy(np.ascontiguousarray(raw, dtype=np.float32))
        return t if self.device is None else t.to(self.device, non_blocking=True)

    device: Any = None

    def to(self, device: Any) -> RawWindows:
        import torch

        dev = torch.device(device)
        self.device = None if dev.type == "cpu" else dev
        return self


def spec_of(spec: SpecBase) -> SeriesSpec:
    if not isinstance(spec, SeriesSpec):
        raise DataError(f"expected a time-series preprocessing spec, got {spec.kind!r}")
    return spec
