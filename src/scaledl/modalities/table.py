"""Tables: one row of numeric features per sample, normalized per feature.

Sources: CSV/TSV/Parquet files with a label column. The graph takes (N, F) float32.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from scaledl.config.data import DataConfig
from scaledl.contract import TableSpec
from scaledl.data.dataset import LoadedData
from scaledl.modalities.normalized import NormalizedModality

TABLE_SUFFIXES = {".csv", ".tsv", ".parquet", ".pq"}


class TableModality(NormalizedModality):
    kind: ClassVar[str] = "table"
    spec_type: ClassVar[type[TableSpec]] = TableSpec

    def claims(self, path: Path, config: DataConfig) -> bool:
        return path.is_file() and path.suffix.lower() in TABLE_SUFFIXES

    def read(self, path: Path, config: DataConfig, task: str) -> LoadedData:
        from scaledl.data.tables import read_table

        return read_table(path, config, task)
