"""The search's time budget: what each step costs, learned from what was measured so far.

Every job (a graph method on a graph, a fine-tune epoch, an export, the scoring of a graph) is
timed as it runs, and the next estimate of that kind of job is the mean of what it cost here,
on this machine, under this load. Before anything of a kind has run, a guess stands in: a fine-
tune epoch from the parent's recorded training speed, the rest from constants. The final step
(re-timing the finalists, scoring the test split, writing packages and the report) is kept
aside as a reserve computed from the same measurements, so the search can spend the rest.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from scaledl.optimize.context import SearchContext
from scaledl.optimize.frontier import MAX_FINALISTS

GUESS_S = {"graph": 4.0, "export": 8.0, "score": 1.0, "metrics": 0.2}
SAFETY = 1.25  # a busy machine makes the next job slower than the last
SECONDS_PER_ROUND = 0.2  # final re-timing: seconds per finalist per interleaved round
REPORT_S = 3.0  # the Pareto plot and report.html (matplotlib's import included)
PACKAGE_S = 0.4  # one candidate package: files, hashes, parity sample
# The monitoring profile's input side (preprocessing the training split, its PCA) for 9,000
# CIFAR-10 images (27.6 M values) on a 2-core 2.0 GHz AVX2 EPYC: 4.4 s the first time in a
# process (imports included), 1.9 s after; 6.5 s once on one loaded core. Rounded down.
PROFILE_VALUES_PER_S = 5e6
ENGINE_LOAD_S = 2.0  # compiling the chosen graph in another engine


@dataclass
class TimeBook:
    """Measured durations per kind of job, and the estimates drawn from them."""

    ctx: SearchContext
    durations: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def record(self, kind: str, seconds: float) -> None:
        self.durations[kind].append(seconds)

    def mean(self, kind: str, default: float | None = None) -> float:
        values = self.durations.get(kind) or []
        if values:
            return sum(values) / len(values)
        return GUESS_S[kind] if default is None else default

    def measured(self, kind: str) -> bool:
        return bool(self.durations.get(kind))

    def graph_estimate(self) -> float:
        """A graph method on one graph, its scoring included."""
        return self.mean("graph")

    def epoch_guess(self) -> float:
        speed = float(self.ctx.parent.manifest.metrics.get("train_samples_per_second", 0))
        # One training epoch of the parent. Fine-tuning also runs the teacher, but the student
        # is smaller and the parent's recorded speed includes its augmentation and checkpoints:
        # the 40 %-pruned and half-depth CIFAR-10 students took 30-36 s an epoch against the
        # parent's 50 s. A guess too low cannot overrun: the trainer stops a fine-tune at the
        # end of its time slot (Search._finetune_slot).
        return len(self.ctx.splits.train) / speed if speed > 0 else 10.0

    def structure_estimate(self, epochs: int) -> float:
        """A structural change: `epochs` of fine-tuning, an export and the scoring."""
        estimate = epochs * self.mean("epoch", self.epoch_guess())
        estimate += self.mean("export") + self.mean("score")
        return SAFETY * estimate

    def reserve(self, ok: int, packaged: int, passes: Sequence[float] = ()) -> float:
        """Seconds the final step needs for `ok` scored candidates of which `packaged` get a
        package (and a test pass), from measured costs (`passes`: see `packaging`)."""
        retime = self.retime_estimate(min(ok, MAX_FINALISTS), self.ctx.config.final_rounds)
        return SAFETY * retime + self.after_retime(packaged, passes)

    @staticmethod
    def retime_estimate(finalists: int, rounds: int) -> float:
        """The final re-timing's own seconds (no safety margin): interleaved rounds."""
        return finalists * rounds * SECONDS_PER_ROUND

    def after_retime(self, packaged: int, passes: Sequence[float] = ()) -> float:
        """The final step's part after the re-timing: the engine choice, then packaging."""
        return self.engine_estimate() + self.packaging(packaged, passes)

    def packaging(self, packaged: int, passes: Sequence[float] = ()) -> float:
        """The test split (the parent and the `packaged` candidates), their packages and the
        report.

        `passes`: the measured validation passes (seconds) of the graphs known to be scored on
        the test split, the parent first. Each test pass is its own graph's validation pass
        scaled by the rows: a pruned or slimmed graph runs the test split two or three times
        faster than the mean over every graph scored (which int8 graphs, slower than fp32 on a
        CPU without VNNI, pull up although they are rarely packaged). Passes not known yet
        count at that mean."""
        test = self.test_estimate(packaged, passes)
        return SAFETY * (test + self.packages_estimate(packaged)) + REPORT_S

    def test_estimate(self, packaged: int, passes: Sequence[float] = ()) -> float:
        """The test passes of the parent and `packaged` candidates (no safety margin)."""
        val_rows = max(len(self.ctx.x_val), 1)
        known = list(passes)[: packaged + 1]
        validation = sum(known) + (packaged + 1 - len(known)) * self.mean("metrics")
        return validation * len(self.ctx.x_test) / val_rows

    def packages_estimate(self, packaged: int) -> float:
        """Writing `packaged` candidate packages, without the report (no safety margin): the
        profile's input side is built once and shared (`SearchContext.profile_inputs`)."""
        if packaged <= 0:
            return 0.0
        return packaged * self.package_estimate() + self.profile_inputs_estimate(packaged)

    def package_estimate(self) -> float:
        """One candidate package; with a monitoring profile, also a pass over the validation
        rows (the test rows' outputs are reused)."""
        if not self._profiled():
            return PACKAGE_S
        return PACKAGE_S + self.mean("metrics")

    def profile_inputs_estimate(self, packaged: int = 1) -> float:
        """The monitoring profile's input side: once per search (0 once built, or without a
        profile); a forecaster's profile reads windows of its own for every package."""
        if not self._profiled() or self.ctx.profile_inputs_built:
            return 0.0
        once = self.ctx.splits.train.x.size / PROFILE_VALUES_PER_S
        return once * packaged if self.ctx.preprocessing.kind == "series" else once

    def _profiled(self) -> bool:
        from scaledl.package import PROFILE

        return PROFILE in self.ctx.parent.manifest.files

    def left(self, ok: int, packaged: int) -> float:
        """Seconds the search itself may still spend."""
        return self.ctx.seconds_left() - self.reserve(ok, packaged)

    def engine_estimate(self) -> float:
        """Timing the chosen graph under each installed engine (0: only ONNX Runtime here)."""
        from scaledl.export.engines import available_engines

        engines = len(available_engines())
        if engines == 1:
            return 0.0
        timing = engines * self.ctx.config.final_rounds * SECONDS_PER_ROUND
        return SAFETY * (timing + engines * self.mean("metrics") + ENGINE_LOAD_S)

    def to_json(self) -> dict[str, float]:
        """Mean measured seconds per kind of job (what the estimates were drawn from)."""
        return {
            kind: round(self.mean(kind), 3) for kind, values in self.durations.items() if values
        }
