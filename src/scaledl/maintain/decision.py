"""The two decisions of a maintenance run, as pure functions of measured numbers.

Retrain: when the monitor's check of the new data against the live version finds drift or an
accuracy drop (`Assessment.degraded`), or when forced.

Promote: the new version replaces the live one only if, on every channel it was measured on
(offline ONNX Runtime; through the server when one is given):

1. **gain** — on the new data's held-out rows (or `--eval-data`), its accuracy is at least the
   live version's + `min_gain` (default 0.01: it must fix something where the world changed;
   0 accepts a version that is merely as good, e.g. a forced refresh);
2. **no regression** — on the old data's test rows (the live lineage's test split, never
   trained on), it loses at most `max_regression` (default 0.02) against the live version;
3. **no failures** — every request sent to it through the server was answered, and the
   server's failure count for it could be read: a count that cannot be taken (an unreadable
   `/metrics`) blocks the promotion like a failure would, and the decision says why.

Anything else rolls it back. Rule 2 is what catches a harmful update whose new labels are wrong:
the held-out rows of such data carry the same wrong labels, so rule 1 alone would reward it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from scaledl.maintain.config import DecideConfig
from scaledl.maintain.log import DecisionLog

NEW, REFERENCE = "new", "reference"


@dataclass
class Trigger:
    retrain: bool
    reasons: list[str]
    forced: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"retrain": self.retrain, "forced": self.forced, "reasons": self.reasons}


def plan_retrain(degraded: bool, reasons: list[str], force: bool) -> Trigger:
    if degraded:
        return Trigger(True, list(reasons))
    if force:
        return Trigger(True, ["--force: retrain on demand (nothing detected)"], forced=True)
    return Trigger(False, ["no drift and no accuracy drop on the new data"])


@dataclass
class Measured:
    """Accuracy of the live and the new version on one labelled set, through one channel."""

    set: Literal["new", "reference"]
    channel: Literal["offline", "server"]
    samples: int
    live: float
    candidate: float

    @property
    def delta(self) -> float:
        return self.candidate - self.live

    def to_json(self) -> dict[str, Any]:
        return {
            "set": self.set,
            "channel": self.channel,
            "samples": self.samples,
            "live_accuracy": round(self.live, 6),
            "candidate_accuracy": round(self.candidate, 6),
            "delta": round(self.delta, 6),
        }


@dataclass(frozen=True)
class FailureCount:
    """Requests to the new version that failed, or why they could not be counted (`count`
    None). Only a count that was actually taken can let a version through."""

    count: int | None
    how: str = "offline: no requests were sent"

    def plus(self, failed: int, how: str) -> FailureCount:
        if self.count is None:
            return self
        return FailureCount(self.count + failed, how)

    def to_json(self) -> dict[str, Any]:
        return {"failures": self.count, "failures_counted": self.how}


@dataclass
class Check:
    name: str
    passed: bool
    value: float
    threshold: float
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {
            "check": self.name,
            "passed": self.passed,
            "value": round(self.value, 6),
            "threshold": self.threshold,
            "detail": self.detail,
        }


@dataclass
class Decision:
    action: Literal["promote", "rollback"]
    checks: list[Check] = field(default_factory=list)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    @property
    def reason(self) -> str:
        if self.action == "promote":
            return "every check passed"
        return "; ".join(c.detail for c in self.failed)

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "reason": self.reason,
            "checks": [c.to_json() for c in self.checks],
        }


def decide(
    measured: list[Measured], config: DecideConfig, failures: int | FailureCount = 0
) -> Decision:
    """Apply the promotion rule to every measurement; any failed check rolls back."""
    counted = failures if isinstance(failures, FailureCount) else FailureCount(failures)
    checks: list[Check] = []
    for m in measured:
        where = f"{m.set} rows ({m.samples}, {m.channel})"
        if m.set == NEW:
            ok = m.delta >= config.min_gain - 1e-12
            checks.append(
                Check(
                    f"gain:{m.channel}",
                    ok,
                    m.delta,
                    config.min_gain,
                    f"on the {where}: {m.candidate:.4f} vs live {m.live:.4f} "
                    f"(gain {m.delta:+.4f}, needed ≥ {config.min_gain:+.4f})",
                )
            )
        else:
            ok = -m.delta <= config.max_regression + 1e-12
            checks.append(
                Check(
                    f"regression:{m.channel}",
                    ok,
                    -m.delta,
                    config.max_regression,
                    f"on the {where}: {m.candidate:.4f} vs live {m.live:.4f} "
                    f"(loss {-m.delta:+.4f}, allowed ≤ {config.max_regression:.4f})",
                )
            )
    checks.append(_failure_check(counted))
    if not measured:
        checks.append(Check("measured", False, 0.0, 1.0, "no labelled rows were measured"))
    action: Literal["promote", "rollback"] = (
        "promote" if all(c.passed for c in checks) else "rollback"
    )
    return Decision(action, checks)


def _failure_check(failures: FailureCount) -> Check:
    if failures.count is None:  # fail closed: an uncounted failure may be a failure
        detail = f"failed requests to the new version could not be counted ({failures.how})"
        return Check("failures", False, math.nan, 0.0, detail)
    return Check(
        "failures",
        failures.count == 0,
        float(failures.count),
        0.0,
        f"{failures.count} request(s) to the new version failed on the server",
    )


def record_decision(
    log: DecisionLog,
    version: str,
    measured: list[Measured],
    failures: FailureCount,
    config: DecideConfig,
    **extra: Any,
) -> Decision:
    """Decide, and append the `compare` and `decision` records (the numbers, then the rule)."""
    decision = decide(measured, config, failures)
    log.write(
        "compare", measurements=[m.to_json() for m in measured], **failures.to_json(), **extra
    )
    log.write(
        "decision", version=version, thresholds=config.model_dump(mode="json"), **decision.to_json()
    )
    return decision
