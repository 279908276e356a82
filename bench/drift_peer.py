"""The peer detector: Evidently's default data-drift preset, on the same projected features.

`DataDriftPreset()` decides per column with Evidently's default test (chosen by
`get_stattest`: KS p < 0.05 when the reference has ≤ 1,000 rows, normed Wasserstein ≥ 0.1
above that; chi-square / Z / Jensen-Shannon for columns with ≤ 5 distinct values) and calls the
data set drifted when at least half of the columns drift (`DriftedColumnsCount(drift_share=0.5)`).
Building its Report renders plotly figures for every column (~8 s a window here), so the bench
calls the same per-column tests directly and checks once per data set that the drifted-column
count equals the Report's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

DRIFT_SHARE = 0.5


def available() -> str | None:
    """Evidently's version, or None when the bench-drift extra is not installed."""
    try:
        import evidently
    except ImportError:
        return None
    return str(evidently.__version__)


class EvidentlyPeer:
    def __init__(self, reference: np.ndarray) -> None:
        import pandas as pd

        self.columns = [f"pc{i}" for i in range(reference.shape[1])]
        self.reference = pd.DataFrame(reference.astype(np.float64), columns=self.columns)

    def drifted_columns(self, window: np.ndarray) -> int:
        import pandas as pd
        from evidently.legacy.calculations.stattests.registry import get_stattest
        from evidently.legacy.core import ColumnType

        current = pd.DataFrame(window.astype(np.float64), columns=self.columns)
        drifted = 0
        for col in self.columns:
            ref, cur = self.reference[col], current[col]
            test = get_stattest(ref, cur, ColumnType.Numerical, None)
            drifted += bool(test(ref, cur, ColumnType.Numerical, None).drifted)
        return drifted

    def drift(self, window: np.ndarray) -> bool:
        return self.drifted_columns(window) >= DRIFT_SHARE * len(self.columns)

    def report_drifted_columns(self, window: np.ndarray) -> int:
        """The same count through Evidently's Report API (slow; used once as a check)."""
        import pandas as pd
        from evidently import Report
        from evidently.presets import DataDriftPreset

        current = pd.DataFrame(window.astype(np.float64), columns=self.columns)
        snapshot = Report([DataDriftPreset()]).run(
            reference_data=self.reference, current_data=current
        )
        metrics: list[dict[str, Any]] = snapshot.dict()["metrics"]
        return int(metrics[0]["value"]["count"])
