"""The steps of one maintenance run, each appending its record to the decision log."""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from scaledl.maintain import datasets
from scaledl.maintain.api import MaintainRequest, MaintainResult, Outcome, Prepared
from scaledl.maintain.compare import offline
from scaledl.maintain.decision import FailureCount, Measured, Trigger, plan_retrain, record_decision
from scaledl.maintain.detect import assess
from scaledl.maintain.lineage import recorded_budget
from scaledl.maintain.log import DecisionLog
from scaledl.maintain.rollout import Candidate, ServerRollout
from scaledl.maintain.server import ServerLink
from scaledl.modalities import load_splits
from scaledl.package import Package, open_package

log = logging.getLogger(__name__)


def _since(started: float) -> float:
    return round(time.monotonic() - started, 3)


class Run:
    def __init__(self, req: MaintainRequest, p: Prepared, dlog: DecisionLog, work: Path) -> None:
        self.req, self.p, self.log, self.work = req, p, dlog, work
        self.cfg = req.config
        self.model = req.model
        self.version: str | None = None
        self.union: Path | None = None
        self.source_kept: Path | None = None

    # ---- the run ---------------------------------------------------------------------
    def execute(self) -> MaintainResult:
        self._start_record()
        trigger = self.check()
        if not trigger.retrain:
            self.log.write("decision", action="none", reason="; ".join(trigger.reasons))
            return self.result("nothing-to-do", None, ["nothing to do: " + trigger.reasons[0]])
        self.version = self.p.repo.next_version()
        try:
            package, lineage = self.build()
            self.publish(package, lineage)
        except BaseException:
            self._discard_unpublished()
            raise
        try:
            started = time.monotonic()
            candidate = self.candidate()
            measured = offline(self.p.live, candidate, self.p.eval_sets)
            if self.p.link is None:
                return self.decide_offline(measured, _since(started))
        except BaseException:  # published but not decided: out of the repository it goes
            if self.version in self.p.repo.versions():
                self.p.repo.reject(str(self.version))
            raise
        return self.roll_out(self.p.link, candidate, measured)

    def _start_record(self) -> None:
        p = self.p
        self.log.write(
            "start",
            repository=str(p.repo.root.resolve()),
            live_version=p.live_version,
            new_data=self.req.new_data,
            server=self.req.server.url if self.req.server else None,
            routing=p.routing,
            training_source=p.source.how,
            data={
                "old": {"source": p.old.source, **p.old.sizes},
                "new": {"source": self.req.new_data, **p.new.sizes},
            },
            eval_sets=[{"set": s.name, "rows": len(s), "source": s.source} for s in p.eval_sets],
            config=self.cfg.model_dump(mode="json"),
        )

    def check(self) -> Trigger:
        started = time.monotonic()
        x, y = datasets.all_rows(self.p.new)
        assessment, origin = assess(
            self.p.live, self.p.old, x, y, self.cfg.detect, self.req.new_data
        )
        trigger = plan_retrain(assessment.degraded, assessment.reasons, self.cfg.detect.force)
        server_monitor = self.p.link.monitor_state(self.model) if self.p.link else None
        self.log.write(
            "check",
            version=self.p.live_version,
            profile=origin,
            assessment=assessment.to_json(),
            thresholds={
                "alpha": self.cfg.detect.alpha,
                "max_accuracy_drop": self.cfg.detect.max_accuracy_drop,
            },
            server_monitor=server_monitor,
            decision=trigger.to_json(),
            seconds=_since(started),
        )
        return trigger

    # ---- building the new version ----------------------------------------------------
    def build(self) -> tuple[Path, dict[str, Any]]:
        """Union data → fine-tune → (re-optimize): the package to publish + its lineage."""
        # the training stack loads only when a run retrains (checks and refusals stay quick)
        from scaledl.maintain.retrain import finetune_package

        started = time.monotonic()
        p, version = self.p, str(self.version)
        labels = p.live.labels or [str(i) for i in range(p.new.num_classes or 0)]
        self.union = p.repo.data_path(version)
        union, dropped = datasets.write_union(self.union, p.old, p.new, labels, p.old_config)
        seed = p.source.package.manifest.lineage.split_seed
        splits = load_splits(union, seed=seed, task=p.task)
        self.log.write(
            "data",
            union=str(self.union),
            rows=splits.sizes,
            dropped_copies_of_test_rows=dropped,
            fingerprint=splits.fingerprint,
            old={"source": p.old.source, **p.old.sizes},
            new={"source": self.req.new_data, **p.new.sizes},
            seconds=_since(started),
        )
        source_lineage = p.source.package.manifest.lineage
        lineage = {
            "data": union.model_dump(mode="json"),
            "recipe_hash": source_lineage.recipe_hash,
        }
        retrained = finetune_package(
            p.source.package,
            splits,
            self.cfg.finetune,
            self.work / "finetune",
            lineage,
            trust_code=self.req.trust_code,
        )
        self.log.write(
            "finetune",
            start_from=p.source.how,
            config=self.cfg.finetune.model_dump(mode="json"),
            **retrained.to_json(),
        )
        return self.optimize(retrained.package)

    def optimize(self, finetuned: Path) -> tuple[Path, dict[str, Any]]:
        from scaledl.maintain.reoptimize import budget_config, reoptimize  # the search stack

        recorded, why = recorded_budget(self.p.live)
        parent = self.p.source.package.source
        if recorded is None:
            self.log.write("optimize", ran=False, reason=why)
            return finetuned, {"parent": str(Path(parent).resolve()), "transforms": []}
        config = budget_config(recorded, self.cfg.optimize)
        result = reoptimize(finetuned, config, self.work / "optimize", self.req.trust_code)
        self.log.write("optimize", **result.to_json())
        if result.package == finetuned:  # nothing beat the fine-tuned model: keep its budget
            optimize = {"candidate": result.candidate, "chosen": True, "config": result.config}
            return finetuned, {"parent": str(Path(parent).resolve()), "optimize": optimize}
        self.source_kept = self.p.repo.keep_source(finetuned, str(self.version))
        return result.package, {"parent": str(self.source_kept.resolve())}

    def publish(self, package: Path, lineage: dict[str, Any]) -> None:
        started = time.monotonic()
        lineage = {
            **lineage,
            "parent_version": self.p.live_version,
            "maintain": {
                "run": self.log.run_id,
                "from_version": self.p.live_version,
                "new_data": self.req.new_data,
                "union": str(self.union),
            },
        }
        path = self.p.repo.publish(package, str(self.version), {}, lineage)
        self.log.write(
            "publish",
            version=self.version,
            path=str(path),
            parent=lineage["parent"],
            seconds=_since(started),
        )

    def _discard_unpublished(self) -> None:
        """A run that failed before publishing leaves no data or source behind."""
        if self.union is not None:
            with contextlib.suppress(OSError):
                self.union.unlink()
        if self.source_kept is not None:
            shutil.rmtree(self.source_kept, ignore_errors=True)

    # ---- comparing and deciding ------------------------------------------------------
    def candidate(self) -> Package:
        return open_package(self.p.repo.path(str(self.version)))

    def decide_offline(self, measured: list[Measured], seconds: float) -> MaintainResult:
        decision = record_decision(
            self.log, str(self.version), measured, FailureCount(0), self.cfg.decide, seconds=seconds
        )
        version, model = str(self.version), self.model
        if decision.action == "promote":
            self.log.write("promoted", version=version, where="repository")
            return self.result(
                "promoted",
                version,
                [
                    f"version {version} is in the repository; to serve it: "
                    f"`scaledl models canary {model} --version {version} --weight 0.1 --url URL` "
                    f"then `scaledl models promote {model}`, or `scaledl models load {model} "
                    f"--version {version}` (a server with policy latest serves it after a "
                    "restart)"
                ],
            )
        moved = self.p.repo.reject(version)
        self.log.write("rolled-back", version=version, moved_to=str(moved))
        return self.result(
            "rolled-back",
            version,
            [
                f"version {version} was not better: moved to {moved}; version "
                f"{self.p.live_version} stays live"
            ],
        )

    def roll_out(
        self, link: ServerLink, package: Package, measured: list[Measured]
    ) -> MaintainResult:
        """Canary or shadow on the server, measured there too; promoted or rolled back."""
        p, version, model = self.p, str(self.version), self.model
        candidate = Candidate(
            model, version, package, p.live_version, p.live, p.eval_sets, measured
        )
        rollout = ServerRollout(
            link, candidate, self.cfg.rollout, self.cfg.decide, p.repo, self.log
        )
        outcome = rollout.run()
        if outcome.promoted:
            return self.result(
                "promoted",
                version,
                [
                    f"version {version} now serves {model} (pinned); "
                    f"`scaledl models rollback {model}` returns to version {p.live_version}"
                ],
                serving=outcome.serving,
            )
        return self.result(
            "rolled-back",
            version,
            [
                f"version {version} was rolled back and moved to {outcome.moved_to}; version "
                f"{p.live_version} kept serving"
            ],
            serving=outcome.serving,
        )

    def result(
        self,
        outcome: Outcome,
        version: str | None,
        next_steps: list[str],
        serving: str | None = None,
    ) -> MaintainResult:
        self.log.write("done", outcome=outcome, new_version=version, serving=serving)
        return MaintainResult(
            outcome=outcome,
            model=self.model,
            live_version=self.p.live_version,
            new_version=version,
            serving=serving,
            run_id=self.log.run_id,
            log_path=self.log.path,
            records=self.log.records,
            next_steps=next_steps,
        )
