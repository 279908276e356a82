"""The end of a search: re-time the finalists side by side, score the test split, choose."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scaledl.bench.latency import LatencyStats, interleaved_rounds, round_noise
from scaledl.modalities import modality_of
from scaledl.modalities.base import SEEN_WARNING_SHARE
from scaledl.optimize.budget import SAFETY, SECONDS_PER_ROUND
from scaledl.optimize.candidate import Candidate
from scaledl.optimize.context import SearchContext
from scaledl.optimize.evaluation import judge_test, make_session, score_test
from scaledl.optimize.frontier import Choice, Constraints, choose, kept_ids, pareto, pick_finalists
from scaledl.optimize.search import Search

log = logging.getLogger(__name__)
MAX_TIE = 0.25
MIN_ROUNDS = 3


@dataclass
class SearchResult:
    ctx: SearchContext
    candidates: list[Candidate]
    parent: Candidate
    constraints: Constraints
    choice: Choice
    frontier: list[str]
    skipped: list[dict[str, str]]
    seconds: float = 0.0
    out_dir: Path | None = None
    kept: list[str] = field(default_factory=list)  # ids that get a package (kept_ids)
    noise: float = 0.0  # relative spread of per-round medians in the final re-timing
    search_seconds: float = 0.0  # when the search handed over to the final step
    reserved_seconds: float = 0.0  # what the search had kept for the final step then
    tie_tolerance: float = 0.0
    measured: dict[str, float] = field(default_factory=dict)  # mean seconds per kind of job
    # each phase of the final step: its estimate from the search's measurements (no safety
    # margin, for the work it really did) and the seconds it took, to check the reserve by
    final_phases: dict[str, dict[str, float]] = field(default_factory=dict)
    cross_fit: dict[str, Any] = field(default_factory=dict)  # folds and rows, when it ran
    # share of validation rows the model read in training (text phrases of training sentences)
    seen_in_training: float | None = None

    @property
    def met(self) -> bool:
        return self.choice.chosen is not None

    def time_summary(self) -> dict[str, Any]:
        """The budget, what was used, what was measured, and how many jobs time left out."""
        budget = self.ctx.config.time_budget_min * 60.0
        for_time = [s for s in self.skipped if s["reason"].startswith("time budget")]
        return {
            "budget_s": budget,
            "used_s": round(self.ctx.elapsed(), 1),
            # the final step took used_s - search_s against final_reserved_s kept for it
            "search_s": round(self.search_seconds, 1),
            "final_reserved_s": round(self.reserved_seconds, 1),
            "measured_mean_s": self.measured,
            "final_phases_s": self.final_phases,
            "skipped_for_time": len(for_time),
        }

    @property
    def winner(self) -> Candidate | None:
        """The chosen candidate, or the best effort when nothing met the budget."""
        return self.choice.chosen or self.choice.best_effort

    def promise(self) -> str:
        """The budget as promised next to what the test split says about the winner.

        E.g. `promised drop ≤ 1 pt at 90 %; test drop 0.40 pt [−0.20, 1.10]`.
        """
        config = self.ctx.config
        if self.constraints.budget == "accuracy":
            what, limit, unit = "drop", config.max_accuracy_drop, "pt"
        else:  # regressors: the relative rise of the error (0.02 = 2 %)
            what, limit, unit = "error increase", config.max_error_increase, "%"
        text = f"promised {what} ≤ {limit * 100:g} {unit} at {config.confidence:.0%}"
        winner = self.winner
        if winner is None or winner.test_drop is None:
            return text + "; no test rows to check it on"
        verdict = "within" if winner.test_drop.point <= limit + 1e-9 else "over"
        return f"{text}; test {what} {winner.test_drop.text(unit)} ({verdict} the budget)"

    def seen_warning(self) -> str | None:
        """Said beside the promise when most validation rows are text the model trained on."""
        share = self.seen_in_training
        if share is None or share < SEEN_WARNING_SHARE:
            return None
        return (
            f"{share:.0%} of the validation rows occur inside training rows (sampled): the budget "
            "was judged on data the model has read, and new data may lose more (give the search "
            f"a tighter budget, or retrain with {modality_of(self.ctx.preprocessing).seen_fix})"
        )


def finalize(search: Search, parent: Candidate, cons: Constraints) -> SearchResult:
    ctx = search.ctx
    search_seconds, reserved = ctx.elapsed(), search.reserve()
    ok = [c for c in search.candidates if c.ok]
    finalists = pick_finalists(ok, cons, parent)
    # Always re-time side by side (the search's one-off timings are too noisy to choose
    # from); when the budget is nearly spent, with fewer rounds rather than none.
    rounds = ctx.config.final_rounds
    per_round = len(finalists) * SECONDS_PER_ROUND
    # No job follows: the packages are those of the frontier so far (a wider tie only shrinks it).
    after = search.book.after_retime(*search.packages(next_job=False))
    spare = ctx.seconds_left() - after
    affordable = int(max(spare, 0.0) // max(per_round, 1e-9))
    if affordable < rounds:
        rounds = max(MIN_ROUNDS, affordable)
        search.skip(
            "full final re-timing",
            f"time budget: {rounds} interleaved round(s) instead of {ctx.config.final_rounds}",
        )
    phases: dict[str, dict[str, float]] = {}
    started = ctx.elapsed()
    noise = _retime(finalists, ctx, rounds)
    phases["retime"] = _phase(search.book.retime_estimate(len(finalists), rounds), started, ctx)
    # On a busy machine, differences smaller than twice the measured noise are not real.
    tie = min(max(ctx.config.tie_tolerance, 2.0 * noise), MAX_TIE)
    # The choice reads validation rows only; the test split is scored after it, once, and
    # only what will be packaged keeps its test outputs.
    choice = choose(ok, cons, tie)
    frontier = [c.id for c in pareto(ok, cons, tie)]
    kept = kept_ids(ok, parent, frontier, choice.chosen or choice.best_effort, ctx.config.keep)
    passes = search.validation_passes(kept)
    if choice.chosen is not None:  # the engine changes neither latency ranks nor quality
        started = ctx.elapsed()
        if _choose_engine(search, choice.chosen, parent, cons, tie, len(kept), passes):
            phases["engine"] = _phase(search.book.engine_estimate() / SAFETY, started, ctx)
    # The test split checks the promise and fills the packages' metrics, so the parent and
    # the packaged candidates are scored on it; the rest are not (a pass over the test rows
    # per candidate can cost more than the whole search when the test split is the larger).
    # A forecaster's package reads no test outputs (no confusion matrix; its profile reads
    # the validation period's windows), so it keeps none.
    reuse = ctx.preprocessing.kind != "series"
    tested = [c for c in ok if c is parent or c.id in kept]
    started = ctx.elapsed()
    for candidate in tested:
        score_test(candidate, ctx, keep_outputs=reuse and candidate.id in kept)
    phases["test"] = _phase(search.book.test_estimate(len(tested) - 1, passes), started, ctx)
    # written by write_outputs, which fills in the seconds it took
    phases["packages"] = {"estimate": round(search.book.packages_estimate(len(kept)), 1)}
    for candidate in tested:
        judge_test(candidate, parent, ctx)
    result = SearchResult(
        ctx=ctx,
        candidates=search.candidates,
        parent=parent,
        constraints=cons,
        choice=choice,
        frontier=frontier,
        kept=kept,
        skipped=search.skipped,
        noise=noise,
        search_seconds=search_seconds,
        reserved_seconds=reserved,
        tie_tolerance=tie,
        measured=search.book.to_json(),
        final_phases=phases,
        cross_fit=search.cross_fit.summary() if search.cross_fit is not None else {},
        seen_in_training=modality_of(ctx.preprocessing).seen_in_training(ctx.splits),
    )
    if (warning := result.seen_warning()) is not None:
        log.warning("optimize: %s", warning)
    return result


def _choose_engine(
    search: Search,
    chosen: Candidate,
    parent: Candidate,
    cons: Constraints,
    tie: float,
    packaged: int,
    passes: list[float],
) -> bool:
    """Time the chosen graph under each installed engine when the budget leaves room for it;
    whether it ran."""
    from scaledl.optimize.engine_choice import choose_engine

    ctx = search.ctx
    need = search.book.engine_estimate()
    if not need:
        return False
    if ctx.seconds_left() - search.book.packaging(packaged, passes) < need:
        search.skip("engine choice", f"time budget: needs ~{need:.0f} s; ONNX Runtime kept")
        return False
    try:
        chosen.engine = choose_engine(chosen, parent, ctx, cons, tie)
    except Exception as exc:  # the engine is an option: ONNX Runtime stays the fallback
        search.skip("engine choice", f"failed ({type(exc).__name__}: {exc}); ONNX Runtime kept")
    return True


def _phase(estimate: float, started: float, ctx: SearchContext) -> dict[str, float]:
    """A final-step phase: what the search's measurements predicted and what it took."""
    return {"estimate": round(estimate, 1), "used": round(ctx.elapsed() - started, 1)}


def _retime(finalists: list[Candidate], ctx: SearchContext, rounds: int) -> float:
    """Interleaved rounds spread background load evenly over the finalists; returns the noise."""
    x = ctx.latency_input()
    calls = {}
    for c in finalists:
        session = make_session(c, ctx.config.threads)
        name = session.get_inputs()[0].name
        calls[c.id] = lambda s=session, n=name: s.run(None, {n: x})
    timed = interleaved_rounds(calls, rounds=rounds, seconds_per_round=SECONDS_PER_ROUND)
    for c in finalists:
        c.latency = LatencyStats.from_rounds(timed[c.id], ctx.config.batch_size)
        c.latency_source = f"final ({rounds} interleaved rounds)"
    return float(np.median([round_noise(parts) for parts in timed.values()]))
