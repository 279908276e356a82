"""The new version on a running server: canary or shadow, measured, then promoted or rolled back.

`ServerRollout` is given everything it works with — the server link, the candidate and what it
is compared with, the rollout and decision settings, the repository and the decision log —
and returns what happened (`RolloutOutcome`); it never reaches back into the run.

Roll back = clear the new version's canary/shadow role, wait until it is drained and unloaded,
and move it out of the repository (`.maintain/rejected/`). The live version is the primary
throughout and serves every request addressed to the model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from scaledl.maintain.config import DecideConfig, RolloutConfig
from scaledl.maintain.datasets import EvalSet
from scaledl.maintain.decision import Decision, Measured, record_decision
from scaledl.maintain.log import DecisionLog
from scaledl.maintain.repository import ModelRepository
from scaledl.maintain.server import RolloutError, ServedAccuracy, ServerLink
from scaledl.package import Package


@dataclass(frozen=True)
class Candidate:
    """The new version (published in the repository) and what it is compared with."""

    model: str
    version: str
    package: Package
    live_version: str
    live: Package
    eval_sets: list[EvalSet]
    offline: list[Measured]  # measured before the rollout, with ONNX Runtime


@dataclass(frozen=True)
class RolloutOutcome:
    decision: Decision
    serving: str  # the version that answers for the model once the rollout is over
    moved_to: Path | None = None  # where a rolled-back version went

    @property
    def promoted(self) -> bool:
        return self.decision.action == "promote"


class ServerRollout:
    def __init__(
        self,
        link: ServerLink,
        candidate: Candidate,
        rollout: RolloutConfig,
        rule: DecideConfig,
        repo: ModelRepository,
        log: DecisionLog,
    ) -> None:
        self.link = link
        self.candidate = candidate
        self.model = candidate.model
        self.version = candidate.version
        self.rollout = rollout
        self.rule = rule
        self.repo = repo
        self.log = log
        self.on_server = False

    def run(self) -> RolloutOutcome:
        """Start, measure, decide, then promote or roll back; on any failure with the new
        version on the server, take it off before the error propagates."""
        try:
            self.start()
            decision = self.measure_and_decide()
            if decision.action == "promote":
                return RolloutOutcome(decision, self.promote())
            moved, routing = self._take_off("the decision rule")
            serving = str(routing.get("primary", self.candidate.live_version))
            return RolloutOutcome(decision, serving, moved)
        except BaseException as exc:
            if self.on_server:
                self._emergency_rollback(exc)
            raise

    def start(self) -> None:
        started = time.monotonic()
        admin = self.link.admin
        self.on_server = True  # even a call that fails half-way may have loaded it
        if self.rollout.policy == "canary":
            weight = self.rollout.canary_weight
            status = self.link.call("canary", admin.canary, self.model, self.version, weight)
        else:
            status = self.link.call("shadow", admin.shadow, self.model, self.version)
        self.log.write(
            "rollout",
            policy=self.rollout.policy,
            version=self.version,
            canary_weight=self.rollout.canary_weight if self.rollout.policy == "canary" else None,
            routing=status.get("routing"),
            seconds=round(time.monotonic() - started, 3),
        )

    def measure_and_decide(self) -> Decision:
        started = time.monotonic()
        served, counts = self.measure_served()
        if self.rollout.soak_seconds > 0:
            time.sleep(self.rollout.soak_seconds)
        failures = self.link.failures(self.model, self.version).plus(
            counts["candidate_failures"], "requests sent by this run + the server's /metrics"
        )
        status = self.link.call("status", self.link.admin.status, self.model)
        return record_decision(
            self.log,
            self.version,
            self.candidate.offline + served,
            failures,
            self.rule,
            server=counts,
            soak_seconds=self.rollout.soak_seconds,
            shadow=status.get("shadow"),
            seconds=round(time.monotonic() - started, 3),
        )

    def measure_served(self) -> tuple[list[Measured], dict[str, Any]]:
        """The labelled rows as V2 infer requests pinned to the live and to the new version."""
        c = self.candidate
        out: list[Measured] = []
        counts: dict[str, Any] = {
            "candidate_failures": 0,
            "live_failures": 0,
            "requests_rows": self.rollout.request_rows,
            "seconds": 0.0,
        }
        for s in c.eval_sets:
            if not len(s):
                continue
            live = self._accuracy(c.live_version, c.live, s)
            cand = self._accuracy(c.version, c.package, s)
            counts["live_failures"] += live.failures
            counts["candidate_failures"] += cand.failures
            counts["seconds"] += live.seconds + cand.seconds
            samples = min(live.answered, cand.answered)
            set_name: Literal["new", "reference"] = "new" if s.name == "new" else "reference"
            out.append(Measured(set_name, "server", samples, live.accuracy, cand.accuracy))
        counts["seconds"] = round(float(counts["seconds"]), 3)
        return out, counts

    def _accuracy(self, version: str, package: Package, rows: EvalSet) -> ServedAccuracy:
        return self.link.accuracy(
            self.model,
            version,
            rows.x,
            rows.y,
            package.preprocessing,
            self.rollout.request_rows,
            package.manifest.signature.input.name,
        )

    def promote(self) -> str:
        started = time.monotonic()
        status = self.link.call("promote", self.link.admin.promote, self.model, self.version)
        routing = status.get("routing") or {}
        if str(routing.get("primary")) != self.version:
            raise RolloutError(f"after promote the server's primary is {routing.get('primary')}")
        self.on_server = False
        self.log.write(
            "promoted",
            version=self.version,
            previous=self.candidate.live_version,
            routing=routing,
            seconds=round(time.monotonic() - started, 3),
        )
        return self.version

    def _take_off(self, why: str) -> tuple[Path, dict[str, Any]]:
        """Drop the canary/shadow, wait for it to unload, move it out of the repository.

        Only the new version's own role is cleared (never the server's `rollback`, which with
        no canary/shadow left would switch the primary back to an older version)."""
        started = time.monotonic()
        admin = self.link.admin
        status = self.link.call("status", admin.status, self.model)
        routing = status.get("routing") or {}
        if routing.get("canary") == self.version:
            status = self.link.call("clearing the canary", admin.clear_canary, self.model)
        elif routing.get("shadow") == self.version:
            status = self.link.call("clearing the shadow", admin.clear_shadow, self.model)
        state = self.link.wait_unloaded(self.model, self.version)
        self.on_server = False
        moved = self.repo.reject(self.version)
        routing = status.get("routing") or {}
        self.log.write(
            "rolled-back",
            version=self.version,
            why=why,
            routing=routing,
            new_version_state=state,
            moved_to=str(moved),
            seconds=round(time.monotonic() - started, 3),
        )
        return moved, routing

    def _emergency_rollback(self, exc: BaseException) -> None:
        """The run failed with the new version on the server: take it off, keep the error.

        If the server cannot be reached, the version stays where it is (a server restarting
        from its state file expects it) and the log says what to do."""
        try:
            self._take_off(f"the run failed: {exc}")
        except Exception as second:
            self.log.write(
                "rollback-failed",
                version=self.version,
                error=str(second),
                todo=f"run `scaledl models canary {self.model} --clear` (or `shadow --clear`) "
                f"against the server, then move {self.repo.dir / self.version} out of "
                "the repository",
            )
