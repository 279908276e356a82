"""The new version on a running server: canary or shadow, measured, then promoted or rolled back.

Roll back = clear the new version's canary/shadow role, wait until it is drained and unloaded,
and move it out of the repository (`.maintain/rejected/`). The live
version is the primary throughout and serves every request addressed to the model.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Literal

from scaledl.maintain.compare import error_scale, metric_of
from scaledl.maintain.decision import Measured
from scaledl.maintain.server import ServerLink

if TYPE_CHECKING:
    from scaledl.maintain.loop import MaintainResult
    from scaledl.maintain.steps import Run


class ServerRollout:
    def __init__(self, run: Run) -> None:
        assert run.p.link is not None and run.version is not None
        self.run_ = run
        self.link: ServerLink = run.p.link
        self.model = run.model
        self.version = run.version
        self.rollout = run.cfg.rollout
        self.on_server = False

    def run(self) -> MaintainResult:
        try:
            self.start()
            decision = self.measure_and_decide()
            if decision == "promote":
                return self.promote()
            return self.rollback("the decision rule")
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
        self.run_.log.write(
            "rollout",
            policy=self.rollout.policy,
            version=self.version,
            canary_weight=self.rollout.canary_weight if self.rollout.policy == "canary" else None,
            routing=status.get("routing"),
            seconds=round(time.monotonic() - started, 3),
        )

    def measure_and_decide(self) -> str:
        started = time.monotonic()
        measured = self.run_.measure_offline()
        served, counts = self.measure_served()
        if self.rollout.soak_seconds > 0:
            time.sleep(self.rollout.soak_seconds)
        failures = counts["candidate_failures"] + self.link.failures(self.model, self.version)
        status = self.link.call("status", self.link.admin.status, self.model)
        decision = self.run_.write_decision(
            measured + served,
            failures,
            server=counts,
            soak_seconds=self.rollout.soak_seconds,
            shadow=status.get("shadow"),
            seconds=round(time.monotonic() - started, 3),
        )
        return decision.action

    def measure_served(self) -> tuple[list[Measured], dict[str, Any]]:
        """The labelled rows as V2 infer requests pinned to the live and to the new version."""
        p = self.run_.p
        candidate = self.run_.candidate()
        rows = self.rollout.request_rows
        out: list[Measured] = []
        counts = {
            "candidate_failures": 0,
            "live_failures": 0,
            "requests_rows": rows,
            "seconds": 0.0,
        }
        metric = metric_of(p.live)
        scale = error_scale(p.live) if metric == "error" else None
        for s in p.eval_sets:
            if not len(s):
                continue
            live = self.link.measure(
                self.model,
                p.live_version,
                s.x,
                s.y,
                p.live.preprocessing,
                rows,
                _input_name(p.live.manifest),
                metric,
                scale,
            )
            cand = self.link.measure(
                self.model,
                self.version,
                s.x,
                s.y,
                candidate.preprocessing,
                rows,
                _input_name(candidate.manifest),
                metric,
                scale,
            )
            counts["live_failures"] += live.failures
            counts["candidate_failures"] += cand.failures
            counts["seconds"] += live.seconds + cand.seconds
            samples = min(live.answered, cand.answered)
            set_name: Literal["new", "reference"] = "new" if s.name == "new" else "reference"
            out.append(Measured(set_name, "server", samples, live.accuracy, cand.accuracy, metric))
        counts["seconds"] = round(float(counts["seconds"]), 3)
        return out, counts

    def promote(self) -> MaintainResult:
        started = time.monotonic()
        status = self.link.call("promote", self.link.admin.promote, self.model, self.version)
        routing = status.get("routing") or {}
        if str(routing.get("primary")) != self.version:
            raise_rollout(f"after promote the server's primary is {routing.get('primary')}")
        self.on_server = False
        self.run_.log.write(
            "promoted",
            version=self.version,
            previous=self.run_.p.live_version,
            routing=routing,
            seconds=round(time.monotonic() - started, 3),
        )
        return self.run_.result(
            "promoted",
            self.version,
            [
                f"version {self.version} now serves {self.model} (pinned); "
                f"`scaledl models rollback {self.model}` returns to version "
                f"{self.run_.p.live_version}"
            ],
            serving=self.version,
        )

    def rollback(self, why: str) -> MaintainResult:
        moved, routing = self._take_off(why)
        return self.run_.result(
            "rolled-back",
            self.version,
            [
                f"version {self.version} was rolled back and moved to {moved}; version "
                f"{self.run_.p.live_version} kept serving"
            ],
            serving=str(routing.get("primary", self.run_.p.live_version)),
        )

    def _take_off(self, why: str) -> tuple[Any, dict[str, Any]]:
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
        moved = self.run_.p.repo.reject(self.version)
        routing = status.get("routing") or {}
        self.run_.log.write(
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
            self.run_.log.write(
                "rollback-failed",
                version=self.version,
                error=str(second),
                todo=f"run `scaledl models canary {self.model} --clear` (or `shadow --clear`) "
                f"against the server, then move {self.run_.p.repo.dir / self.version} out of "
                "the repository",
            )


def raise_rollout(message: str) -> None:
    from scaledl.maintain.server import RolloutError

    raise RolloutError(message)


def _input_name(manifest: Any) -> str:
    return manifest.signature.input.name
