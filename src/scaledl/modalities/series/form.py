"""The feature form the series front-end hands to the model families (no torch here)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ForecastShape:
    """The feature form a series front-end produces for the forecasting families."""

    lookback: int
    inputs: int
    horizon: int
    targets: int
    target_index: tuple[int, ...]  # each target's input channel, -1 when it is not an input

    form: str = "forecast"

    @property
    def targets_are_inputs(self) -> bool:
        return all(i >= 0 for i in self.target_index)

    @property
    def identity_targets(self) -> bool:
        return tuple(self.target_index) == tuple(range(self.inputs))
