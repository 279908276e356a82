"""The search: pruning × slimming × quantization candidates under a time budget.

1. The parent is scored like every candidate (its ONNX graph in ONNX Runtime, validation split).
2. Every graph method (int8 static/dynamic, bf16) runs on the parent: cheap, and it tells which
   quantization settings keep accuracy on this model and this CPU.
3. Each structural method walks its ladder (mild → aggressive) by bisection on the accuracy
   budget: a variant is fine-tuned by distillation, exported, scored; if it keeps accuracy, the
   graph settings that kept accuracy on the parent are applied to it too.
4. On a small data set, the time left cross-fits the candidates that could win: they are judged
   on every non-test row, not only the validation rows (crossfit.py).
Every job's cost is estimated from what jobs of its kind cost so far (budget.py). A job that would
not finish before the budget (minus what the final step needs) is skipped and reported; when the
whole plan does not fit and the graph settings are not cheap beside it (a budget of a minute or
two), structural methods (the large speed-ups) go before the alternative settings of each graph
method. The final step (re-timing, test split, choice) is in finalize.py.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any

from scaledl.errors import PackageError, UsageError
from scaledl.optimize.budget import SAFETY, TimeBook
from scaledl.optimize.candidate import Candidate
from scaledl.optimize.context import SearchContext
from scaledl.optimize.crossfit import CrossFit
from scaledl.optimize.evaluation import ensure_onnx, judge, quality_of, score
from scaledl.optimize.frontier import Constraints, choose, kept_ids, pareto, pick_finalists
from scaledl.optimize.ladder import Ladder
from scaledl.optimize.registry import (
    Method,
    MethodConfig,
    MethodSkipped,
    MethodSpace,
    apply_method,
    build_space,
    get_method,
    method_for,
    method_names,
    resolve_methods,
)
from scaledl.ui import progress

log = logging.getLogger(__name__)
MAX_RETRIES = 4
RETRY_SCALE = 3
GRAPH_SHARE = 0.1  # the share of the time left that graph settings on the parent may take first


def constraints_for(parent: Candidate, ctx: SearchContext) -> Constraints:
    return Constraints(
        parent_quality=quality_of(parent.val, ctx.task),
        max_drop=ctx.config.max_accuracy_drop,
        task=ctx.task,
        max_error_increase=ctx.config.max_error_increase,
        latency_ms=ctx.config.latency_ms,
        max_size_mb=ctx.config.max_size_mb,
        val_count=len(ctx.x_val),
        confidence=ctx.config.confidence,
    )


class Search:
    """Runs the jobs, keeps every candidate (failed ones too) and every skip with its reason."""

    def __init__(self, ctx: SearchContext) -> None:
        self.ctx = ctx
        self.candidates: list[Candidate] = []
        self.skipped: list[dict[str, str]] = []
        self.book = TimeBook(ctx)
        self.ladders: list[Ladder] = []
        self.pending: list[MethodConfig] = []  # graph configs planned on the parent, not run yet
        self.follow: list[MethodConfig] = []  # graph configs applied to structural variants
        self.methods = self._usable_methods()
        names = {*(m.name for m in self.methods), "distill"}
        self.spaces: dict[str, MethodSpace] = {
            name: build_space(get_method(name), ctx.config.settings.get(name)) for name in names
        }
        self.spaces["distill"] = self.spaces["distill"].resolve(ctx)  # type: ignore[attr-defined]
        self.bar: Any = None
        self.made: dict[str, tuple[MethodConfig, int]] = {}  # structural id → (config, scale)
        self.out_of_time = False
        self.cross_fit: CrossFit | None = None  # made once the parent has been scored
        self.parent: Candidate | None = None  # set once the parent has been scored
        self.constraints: Constraints | None = None  # likewise

    def _usable_methods(self) -> list[Method]:
        settings = self.ctx.config.settings
        unknown = sorted(set(settings) - set(method_names()))
        if unknown:
            raise UsageError(
                f"--set {unknown[0]}.…: unknown method; valid methods: {', '.join(method_names())}"
            )
        usable = []
        for method in resolve_methods(self.ctx.config.methods):
            space = build_space(method, settings.get(method.name))
            if method.needs_weights and not self.ctx.has_weights:
                self.skip(
                    method.name,
                    "the package has no PyTorch weights (weights.safetensors + model.json); "
                    "only graph methods (quantization) run on an ONNX-only package",
                )
            elif reason := space.unavailable(self.ctx):
                self.skip(method.name, reason)
            else:
                usable.append(method)
        return usable

    def skip(self, what: str, reason: str) -> None:
        """Record that `what` did not run and why; asked again (a second cross-fitting pass),
        the latest reason replaces the earlier one."""
        log.info("skipped %s: %s", what, reason)
        self.skipped = [s for s in self.skipped if s["method"] != what]
        self.skipped.append({"method": what, "reason": reason})

    # -- running one job -----------------------------------------------------------------------

    def _run(
        self,
        tags: list[str],
        make: Callable[[], Candidate],
        base: Candidate,
        chain: list[MethodConfig],
    ) -> Candidate | None:
        label = " → ".join(tags)
        if self.bar is not None:
            self.bar.update(description=f"optimize: {label}")
        start = time.monotonic()
        try:
            made = make()
            scoring = time.monotonic()
            candidate = score(made, self.ctx)
            self.book.record("score", time.monotonic() - scoring)
            self.book.record("metrics", candidate.metrics_seconds)
            judge(candidate, self.candidates[0], self.ctx)
            candidate.chain = chain
        except MethodSkipped as exc:
            self.skip(label, str(exc))
            return None
        except Exception as exc:  # one broken candidate must not end the search
            log.info("candidate %s failed", label, exc_info=True)
            candidate = Candidate(id="", transforms=tags, onnx=None, base=base.id, status="failed")
            candidate.notes.append(f"failed: {type(exc).__name__}: {exc}")
        candidate.seconds = time.monotonic() - start
        candidate.id = f"c{len(self.candidates):02d}"
        self.candidates.append(candidate)
        self._advance(candidate)
        return candidate

    def _advance(self, candidate: Candidate) -> None:
        if self.bar is None:
            return
        fields: dict[str, Any] = {"jobs": len(self.candidates)}
        if candidate.ok and candidate.latency is not None:
            fields.update(last=candidate.id, val=quality_of(candidate.val, self.ctx.task))
            fields["p25_ms"] = candidate.latency.p25_ms
        self.tick(**fields)

    def tick(self, **fields: Any) -> None:
        """Progress in seconds: elapsed of (elapsed + the estimated rest), capped by the budget."""
        if self.bar is None:
            return
        elapsed = self.ctx.elapsed()
        planned = elapsed + self.remaining_estimate() + self.reserve()
        total = max(min(planned, self.ctx.config.time_budget_min * 60.0), elapsed)
        self.bar.update(completed=elapsed, total=total, **fields)

    def remaining_estimate(self) -> float:
        """Seconds the planned jobs not run yet would take, at the costs measured so far."""
        graph = self.book.graph_estimate()
        steps = sum(ladder.remaining() for ladder in self.ladders)
        structure = self.book.structure_estimate(self._finetune_epochs())
        return len(self.pending) * graph + steps * (structure + len(self.follow) * graph)

    def _finetune_epochs(self) -> int:
        space: Any = self.spaces["distill"]
        return int(space.step(from_scratch=False, teacher=True).epochs)

    def ok_count(self) -> int:
        return sum(c.ok for c in self.candidates)

    def packages(self, next_job: bool = True) -> tuple[int, list[float]]:
        """What the final step would package (and score on the test split) if the search
        stopped now, by its own rule (`kept_ids`): how many candidates, plus one with
        `next_job` (the job that runs next can add one to the frontier; the final step itself
        runs none), and the measured validation passes their test passes scale from (the
        parent's first; the extra one is not known yet)."""
        children = [c for c in self.candidates if c.ok and c is not self.parent]
        kept = self._kept_now()
        if kept is None:
            return len(children), []
        return min(len(children), len(kept) + int(next_job)), self.validation_passes(kept)

    def packaged_count(self, next_job: bool = True) -> int:
        return self.packages(next_job)[0]

    def packaged_passes(self) -> list[float]:
        return self.packages()[1]

    def validation_passes(self, kept: list[str]) -> list[float]:
        """Seconds the parent's and the `kept` candidates' validation passes took."""
        if self.parent is None:
            return []
        wanted = set(kept)
        packaged = (c.metrics_seconds for c in self.candidates if c.id in wanted)
        return [self.parent.metrics_seconds, *packaged]

    def _kept_now(self) -> list[str] | None:
        """`kept_ids` if the search stopped now (None before the parent is scored)."""
        if self.constraints is None or self.parent is None:
            return None
        ok = [c for c in self.candidates if c.ok]
        tie = self.ctx.config.tie_tolerance  # the final step's tie is at least this
        frontier = [c.id for c in pareto(ok, self.constraints, tie)]
        choice = choose(ok, self.constraints, tie)
        winner = choice.chosen or choice.best_effort
        return kept_ids(ok, self.parent, frontier, winner, self.ctx.config.keep)

    def reserve(self) -> float:
        """Seconds kept for the final step, for the candidates scored so far."""
        return self.book.reserve(self.finalist_count(), *self.packages())

    def finalist_count(self) -> int:
        """How many graphs the final step would re-time if the search stopped now (by its own
        rule), not every candidate scored: on digits that halved the re-timing's share."""
        if self.constraints is None or self.parent is None:
            return self.ok_count()
        ok = [c for c in self.candidates if c.ok]
        return len(pick_finalists(ok, self.constraints, self.parent))

    def time_left(self) -> float:
        """Seconds the search itself may still spend before the final step's reserve."""
        return self.ctx.seconds_left() - self.reserve()

    def fits(self, label: str, estimate: float, booked: float = 0.0) -> bool:
        """Whether a job of `estimate` seconds fits the time left, less `booked` seconds promised
        to later work (cross-fitting asked for by name); a job that does not is skipped."""
        left = self.time_left() - booked
        self.out_of_time = estimate > left
        if self.out_of_time:
            kept = f"~{self.reserve():.0f} s kept for it"
            if booked:
                kept += f", ~{booked:.0f} s for cross-fitting (--cross-fit)"
            self.skip(
                label,
                f"time budget: needs ~{estimate:.0f} s (from the jobs measured so far), "
                f"{max(left, 0):.0f} s left before the final step ({kept})",
            )
            return False
        return True

    # -- the jobs ------------------------------------------------------------------------------

    def baseline(self) -> Candidate:
        pkg = self.ctx.parent
        parent = Candidate(
            id="c00",
            transforms=[],
            onnx=pkg.onnx_path.read_bytes(),
            module=self.ctx.teacher,
            spec=self.ctx.spec,
            precision=pkg.manifest.precision,
            export=pkg.manifest.export.model_dump(mode="json", exclude_none=True),
        )
        try:
            start = time.monotonic()
            score(parent, self.ctx)
            self.book.record("score", time.monotonic() - start)  # the first measured cost
            self.book.record("metrics", parent.metrics_seconds)
            judge(parent, parent, self.ctx)
        except Exception as exc:
            raise PackageError(f"the parent package's graph cannot be scored: {exc}") from None
        parent.package = str(pkg.source.resolve())
        self.candidates.append(parent)
        self.parent = parent
        return parent

    def graph_configs(self) -> list[MethodConfig]:
        return [
            config
            for m in self.methods
            if m.kind == "graph"
            for config in self.spaces[m.name].configs(self.ctx)
        ]

    def graph_variants(self, base: Candidate, configs: list[MethodConfig]) -> list[Candidate]:
        made = []
        for config in configs:
            if config in self.pending:
                self.pending.remove(config)
            tags = [*base.transforms, config.tag()]
            if not self.fits(" → ".join(tags), self.book.graph_estimate()):
                continue
            start = time.monotonic()
            make = functools.partial(apply_method, base, config, self.ctx)
            child = self._run(tags, make, base, [*base.chain, config])
            self.book.record("graph", time.monotonic() - start)
            if child is not None:
                made.append(child)
        return made

    def structure_variant(
        self,
        parent: Candidate,
        config: MethodConfig,
        scale: int = 1,
        booked: float = 0.0,
        first_epochs: int = 0,
        replays: int = 0,
    ) -> Candidate | None:
        """Apply a structural method, fine-tune (`scale` × the usual epochs), export, score.

        When that fine-tune does not fit the time left, as many epochs as fit run instead
        (`_affordable_epochs`), but no fewer than one (half for a model trained from scratch),
        and a second chance (`first_epochs`: what the first run had) no fewer than twice the
        first run's. `booked`: seconds promised to later work (cross-fitting asked for by
        name), which this job may not take. `replays`: how many times cross-fitting will
        repeat the job on its fold parents (a second chance on small data is judged there),
        which its estimate must leave room for."""
        method = method_for(config)
        space: Any = self.spaces["distill"]
        teacher = any(m.name == "distill" for m in self.methods)
        step = space.step(from_scratch=method.finetune == "scratch", teacher=teacher)
        step = step.model_copy(update={"epochs": step.epochs * scale})
        planned = epochs = 0 if method.finetune == "none" else step.epochs
        tags = [config.tag()] + ([step.tag()] if epochs else [])
        if epochs:
            if first_epochs:  # a second chance: worth it only well beyond the first run
                least = min(2 * first_epochs, epochs)
            else:
                least = -(-epochs // 2) if method.finetune == "scratch" else 1
            epochs = self._affordable_epochs(epochs, least, booked, 1 + replays)
            if epochs < planned:
                needed = self.book.structure_estimate(planned) * (1 + replays)
                step = step.model_copy(update={"epochs": epochs})
                self.skip(
                    f"{' → '.join(tags)} ({planned} epochs)",
                    f"time budget: needs ~{needed:.0f} s"
                    f"{' with its cross-fitting' if replays else ''}, "
                    f"{max(self.time_left() - booked, 0):.0f} s left; fine-tuned {epochs} "
                    f"epoch{'s' if epochs > 1 else ''} instead",
                )
        estimate = self.book.structure_estimate(epochs) * (1 + replays)
        if not self.fits(" → ".join(tags), estimate, booked):
            return None
        if epochs:  # an epoch slower than estimated must not eat the final step's reserve
            slot = self._finetune_slot(booked, 1 + replays)
            step = step.model_copy(update={"time_budget_s": slot})

        def make() -> Candidate:
            child = apply_method(parent, config, self.ctx)
            if epochs:
                t0 = time.monotonic()
                child = apply_method(child, step, self.ctx)
                ran = int(child.structure.get("finetune_epochs") or epochs)
                self.book.record("epoch", (time.monotonic() - t0) / max(min(ran, epochs), 1))
                if ran < planned:
                    cut = "the time budget had no room for more"
                    if ran < epochs:
                        cut = f"{epochs} planned; the job's time slot ended first"
                    child.notes.append(f"fine-tuned {ran} of {planned} epochs ({cut})")
                    child.structure = {**child.structure, "shortened_from_epochs": planned}
                else:
                    child.notes.append(f"fine-tuned {epochs} epochs")
            t0 = time.monotonic()
            child = ensure_onnx(child, self.ctx)
            self.book.record("export", time.monotonic() - t0)
            return child

        child = self._run(tags, make, parent, [config, step] if epochs else [config])
        if child is not None:
            self.made[child.id] = (config, scale)
            if epochs and child.chain:
                # Replays (cross-fitting's fold parents) repeat the epochs that ran, not the
                # slot: the same procedure, whatever the machine's speed at the time.
                ran = int(child.structure.get("finetune_epochs") or step.epochs)
                replay = step.model_copy(update={"epochs": ran, "time_budget_s": None})
                child.chain = [*child.chain[:-1], replay]
        return child

    def _finetune_slot(self, booked: float, copies: int = 1) -> float:
        """Seconds a fine-tune may train: its share (one of `copies`: itself and its replays)
        of the time left before the reserve (and `booked`), less its export and scoring. The
        trainer fits its schedule into them and stops there, so an epoch slower than measured
        (a busier machine, a first guess) shortens the fine-tune instead of running into the
        final step's time."""
        after = SAFETY * (self.book.mean("export") + self.book.mean("score"))
        return max((self.time_left() - booked) / copies - after, 1.0)

    def _affordable_epochs(self, planned: int, least: int, booked: float, copies: int) -> int:
        """The most fine-tune epochs, from `planned` down to `least`, whose job fits the time
        left (`planned` when none does: the job is then skipped as it stands).

        A fine-tune cut short usually recovers most of what pruning cost, and the budget's end
        would leave that time unused otherwise."""
        left = self.time_left() - booked
        for epochs in range(planned, least - 1, -1):
            if self.book.structure_estimate(epochs) * copies <= left:
                return epochs
        return planned

    def run(self) -> tuple[Candidate, Constraints]:
        self.ladders = ladders = [
            Ladder(m, self.spaces[m.name].configs(self.ctx))
            for m in self.methods
            if m.kind == "structure"
        ]
        graph = self.graph_configs()
        self.pending = list(graph)
        budget = self.ctx.config.time_budget_min * 60.0
        with progress("optimize", budget, unit="s") as bar:
            self.bar = bar
            parent = self.baseline()
            self.tick(description="optimize: parent scored")
            cons = self.constraints = constraints_for(parent, self.ctx)
            self.cross_fit = CrossFit(self)
            first, later = self._prioritize(graph)
            follow = self._graph_on_parent(parent, first, cons)
            self._walk(parent, ladders, follow, cons)
            follow += self._graph_on_parent(parent, later, cons)
            # Small data: the candidates that could win are judged on every non-test row
            # before any second chance, which would otherwise take the time (a longer
            # fine-tune is polish; the wider judge is the promise). Second chances' children
            # are judged after.
            self._cross_fit_all(parent, follow, cons)
            self._second_chance(parent, follow, cons)
            self._cross_fit_all(parent, follow, cons)
            done = self.ctx.elapsed()
            bar.update(completed=done, total=done, description="optimize: search done")
            self.bar = None
        return parent, cons

    def _prioritize(
        self, graph: list[MethodConfig]
    ) -> tuple[list[MethodConfig], list[MethodConfig]]:
        """Graph configs to run first and those that wait until the structural walk is done.

        When the estimated plan fits the time left, everything runs in order. So it does when
        the graph settings together cost at most `GRAPH_SHARE` of the time left: each is a few
        seconds against minutes for a fine-tune, and one that keeps accuracy on the parent is
        what every pruned or slimmed variant gets too (a long fine-tune must not starve them).
        Otherwise (a budget of a minute or two) each graph method's first (default) setting
        runs first and its alternatives wait: pruning and slimming are where the large
        speed-ups are.
        """
        self.follow = list(graph)
        plan = self.remaining_estimate()
        left = self.book.left(1, 1)  # the parent and one winner
        if plan <= left or len(graph) * self.book.graph_estimate() <= GRAPH_SHARE * left:
            return graph, []
        first: dict[str, MethodConfig] = {}
        for config in graph:
            first.setdefault(method_for(config).name, config)
        later = [config for config in graph if config not in first.values()]
        log.info(
            "optimize: the plan needs ~%.0f s, %.0f s left; %d graph setting(s) wait for the "
            "structural methods",
            plan,
            left,
            len(later),
        )
        self.follow = list(first.values())
        return list(first.values()), later

    def _graph_on_parent(
        self, parent: Candidate, graph: list[MethodConfig], cons: Constraints
    ) -> list[MethodConfig]:
        """Run every graph config on the parent; the ones that kept accuracy, fastest first."""
        results = self.graph_variants(parent, graph)
        kept = sorted(
            (c for c in results if c.ok and cons.promising(c)),
            key=lambda c: c.rank_ms,
        )
        for c in results:
            if c not in kept:
                self.skip(
                    f"{c.transforms[-1]} on pruned/slimmed variants",
                    f"it failed the accuracy budget on the parent ({c.id})",
                )
        by_tag = {config.tag(): config for config in graph}
        self.follow = [by_tag[c.transforms[-1]] for c in kept]
        return list(self.follow)

    def _walk(
        self,
        parent: Candidate,
        ladders: list[Ladder],
        follow: list[MethodConfig],
        cons: Constraints,
    ) -> None:
        while any(lad.next() is not None for lad in ladders):
            for ladder in ladders:
                config = ladder.next()
                if config is None:
                    continue
                child = self.structure_variant(parent, config)
                if child is None and not self.out_of_time:  # does not apply to this model
                    ladder.drop()
                    continue
                if child is None or not child.ok:  # out of time, or broken
                    ladder.stop()
                    continue
                passed = cons.promising(child)
                if passed or "shortened_from_epochs" not in child.structure:
                    ladder.report(passed)
                else:  # a short fine-tune's miss says little about the setting: the time is up
                    ladder.stop()
                if passed:
                    self.graph_variants(child, follow)
                else:
                    self.skip(
                        f"quantization of {child.id}",
                        f"its fp32 graph is already over budget ({cons.describe(child)} fails)",
                    )

    def _second_chance(
        self, parent: Candidate, follow: list[MethodConfig], cons: Constraints
    ) -> None:
        """Fine-tune 3× longer while time remains (too few epochs is the usual shortfall).

        First near misses that would be faster than the best candidate within budget once the
        graph methods that kept accuracy on the parent follow (worth it only if they would
        win), then the fastest candidates within budget that still lose accuracy (a validation
        split of a few hundred rows is a noisy judge: accuracy in hand is safer).
        """
        retried: set[str] = set()
        for _ in range(MAX_RETRIES):
            pick = self._retry_pick(cons, retried)
            if pick is None:
                return
            config = self.made[pick.id][0]
            retried.add(config.tag())
            judge = self.cross_fit
            booked = judge.booked() if judge is not None else 0.0
            replays = judge.folds if judge is not None and judge.active else 0
            first = int(pick.structure.get("finetune_epochs") or 1)
            child = self.structure_variant(
                parent,
                config,
                scale=RETRY_SCALE,
                booked=booked,
                first_epochs=first,
                replays=replays,
            )
            if child is not None and child.ok and cons.promising(child):
                self.graph_variants(child, follow)

    def _cross_fit_all(
        self, parent: Candidate, follow: list[MethodConfig], cons: Constraints
    ) -> None:
        """Small data: with the time the search left, judge candidates on every non-test row.

        Promising ones first. With `auto`, only those that could win: faster than the parent and not
        clearly over budget already (the lower bound of the validation drop within it). A structural
        variant that passes only now also gets the graph settings that kept accuracy on the
        parent, and those children are judged the same way.
        """
        if self.cross_fit is None or not self.cross_fit.active:
            return
        every = self.ctx.config.cross_fit != "auto"  # asked for by name: judge them all
        worth = [
            c
            for c in self.candidates[1:]
            if c.ok
            and c.chain
            and (every or c.rank_ms < parent.rank_ms)
            and (every or c.drop is None or c.drop.lower <= cons.limit)
        ]
        # Those the search already counts within budget first (most likely to win), each group
        # fastest first: on digits the two fastest were clear misses whose replays took the
        # time of the 40 % prune the search would have chosen.
        for candidate in sorted(worth, key=lambda c: (not cons.promising(c), c.rank_ms)):
            passed = cons.promising(candidate)
            self.cross_fit.widen(candidate, parent)
            if not self.cross_fit.active:  # the fold parents did not fit the time left
                return
            if candidate.id in self.made and not passed and cons.promising(candidate):
                for child in self.graph_variants(candidate, follow):
                    self.cross_fit.widen(child, parent)

    def _retry_pick(self, cons: Constraints, retried: set[str]) -> Candidate | None:
        fresh = [
            c
            for c in self.candidates
            if c.ok
            and c.id in self.made
            and self.made[c.id][1] == 1
            and self.made[c.id][0].tag() not in retried
        ]
        best = min((c.rank_ms for c in self.candidates if c.ok and cons.meets(c)), default=None)
        # A structural variant that passes goes on to the graph methods that kept accuracy on
        # the parent: judge its speed as it would leave them (full CIFAR-10: a 40 %-pruned
        # fp32 graph at 1.31 ms lost to int8 on the parent at 0.84 ms, but int8 runs at a
        # third of fp32 there, so the pruned one would have won once quantized).
        after = self._graph_speedup(cons)
        misses = [
            c for c in fresh if not cons.promising(c) and (best is None or c.rank_ms * after < best)
        ]
        if misses:
            return min(misses, key=cons.degradation)
        # Only a candidate that could be chosen (as fast as the fastest, within the tie) is
        # worth polishing.
        near = (best or 0.0) * (1.0 + self.ctx.config.tie_tolerance)
        lossy = [
            c
            for c in fresh
            if cons.meets(c) and cons.degradation(c) > 0 and c.rank_ms * after <= near
        ]
        return min(lossy, key=lambda c: c.rank_ms) if lossy else None

    def _graph_speedup(self, cons: Constraints) -> float:
        """The latency ratio (≤ 1) the fastest graph method within budget achieved on the
        parent: what a structural variant that passes can expect from the same methods."""
        parent = self.candidates[0]
        graph_children = [
            c
            for c in self.candidates[1:]
            if c.ok and len(c.chain) == 1 and c.id not in self.made and cons.meets(c)
        ]
        if not graph_children or parent.rank_ms <= 0:
            return 1.0
        return min(1.0, min(c.rank_ms for c in graph_children) / parent.rank_ms)
