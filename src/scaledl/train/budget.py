"""`train.time_budget_min`: fit the learning-rate schedule to the time the machine at hand has.

Training first runs a few steps on the recipe's own plan (`epochs` × steps per epoch, which is
also the ceiling), then sets the total number of optimizer steps from the measured seconds per
step and per epoch end (validation, checkpoint) so the schedule — warm-up, one-cycle or cosine —
reaches its end inside the budget. The plan is re-made every few steps from the recent speed
(a shared machine slows down and speeds up) and training stops at the deadline anyway. In a
process group the ranks agree on every decision: its inputs are averaged over the ranks.

A budgeted run is not bit-reproducible (its length depends on the machine's speed); a resumed
one continues the plan and counts the time spent before the interruption.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

PROBE_STEPS = 4  # steps timed before the first plan (the first one, warm-up, is not counted)
SAFETY = 0.97  # plan for 97 % of the remaining time
WINDOW = 32  # recent steps the speed is taken from


class TimeBudget:
    """The total number of optimizer steps that fits `minutes`; `None` minutes: a fixed plan."""

    def __init__(
        self,
        minutes: float | None,
        max_steps: int,
        steps_per_epoch: int,
        val_samples: int,
        *,
        elapsed_before: float = 0.0,
        agree: Callable[[list[float]], list[float]] = list,
        started: float | None = None,
    ) -> None:
        self.seconds = minutes * 60.0 if minutes else None
        self.max_steps, self.steps_per_epoch = max_steps, steps_per_epoch
        self.val_samples = val_samples
        self.elapsed_before = elapsed_before
        self.agree = agree  # element-wise mean over the ranks (identity on one process)
        self.started = time.monotonic() if started is None else started
        self.recent: deque[tuple[float, int]] = deque(maxlen=WINDOW)
        self.epoch_end_seconds: float | None = None
        self.timed_steps = 0
        self.replan_every = max(PROBE_STEPS, steps_per_epoch // 4)
        self.planned = False

    @property
    def active(self) -> bool:
        return self.seconds is not None

    def elapsed(self) -> float:
        return self.elapsed_before + time.monotonic() - self.started

    def record_step(self, seconds: float, samples: int) -> None:
        self.timed_steps += 1
        if self.timed_steps > 1:  # the first step pays for allocation and warm-up
            self.recent.append((seconds, samples))

    def record_epoch_end(self, seconds: float) -> None:
        self.epoch_end_seconds = max(seconds, self.epoch_end_seconds or 0.0)

    def due(self, steps_done_here: int, steps_left: int) -> bool:
        """Time to (re)plan: after the probe steps, then every `replan_every` steps, and at
        every step of the last `replan_every` (the end is where a slowed machine shows)."""
        if not self.active or steps_done_here < PROBE_STEPS:
            return False
        if not self.planned or steps_left <= self.replan_every:
            return True
        return steps_done_here % self.replan_every == 0

    def overdue(self) -> bool:
        """The deadline, less the final epoch end, has passed (checked between plans)."""
        if self.seconds is None:
            return False
        return self.elapsed() + (self.epoch_end_seconds or 0.0) >= self.seconds * SAFETY

    def plan(self, done: int, total: int) -> tuple[int, bool]:
        """(the new total number of steps, stop now) after `done` steps of the current `total`."""
        assert self.seconds is not None
        step_s = sum(s for s, _ in self.recent) / max(1, len(self.recent))
        samples = sum(n for _, n in self.recent) / max(1, len(self.recent))
        # before the first epoch end, a validation pass is guessed from the training speed
        # (a forward pass is about a third of a training step; doubled for safety)
        epoch_end = self.epoch_end_seconds
        if epoch_end is None:
            epoch_end = self.val_samples * step_s / max(samples, 1.0) * 2.0 / 3.0
        step_s, epoch_end, elapsed = self.agree([step_s, epoch_end, self.elapsed()])
        self.planned = True
        # the final epoch end must fit, and two steps' slack for a machine that slows down
        left = self.seconds * SAFETY - elapsed - epoch_end - 2 * step_s
        if left <= 0:
            return max(done, 1), True
        per_step = step_s + epoch_end / self.steps_per_epoch
        fits = done + math.floor(left / max(per_step, 1e-9))
        # at least one more step while the ceiling allows; never past it (a plan re-made after
        # the last step must end the run, not add a step to it at every re-plan)
        return min(self.max_steps, max(done + 1, fits)), False

    def summary(self, done: int, total: int, stopped: bool) -> dict[str, float | int | bool]:
        assert self.seconds is not None
        return {
            "budget_seconds": round(self.seconds, 1),
            "planned_steps": total,
            "steps_done": done,
            "max_steps": self.max_steps,
            "stopped_at_deadline": stopped,
        }
