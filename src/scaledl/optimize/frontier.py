"""Constraints, the Pareto frontier, the choice and, when nothing fits, the diagnosis."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from scaledl.optimize.candidate import Candidate
from scaledl.optimize.evaluation import quality_of
from scaledl.optimize.paired import least_upper


@dataclass
class Constraints:
    """The limits a candidate must meet, measured on the validation split.

    The quality budget has two siblings, one per task, with the same interface (`budget`,
    `degradation`, `limit`, `noise`): classifiers may lose at most `max_drop` accuracy
    (absolute points); regressors may see their error (MSE, on the standardised scale when the
    model has one) rise by at most `max_error_increase` (relative: 0.02 = 2 %). `quality` is
    "higher is better" for both (accuracy, or −error), which is all the frontier and the choice
    need. Either budget is a promise: it is checked against the upper `confidence` bound of the
    candidate's paired degradation against the parent (`Candidate.drop`, a bootstrap over the
    validation rows), not the point estimate.
    """

    parent_quality: float
    max_drop: float
    task: str
    latency_ms: float | None = None
    max_size_mb: float | None = None
    val_count: int = 0  # validation rows behind each accuracy (0: unknown)
    max_error_increase: float = 0.02
    confidence: float = 0.9  # level of the upper bound the quality budget is checked against

    @property
    def budget(self) -> str:
        """Which quality budget applies: "accuracy" (classifiers) or "error" (regressors)."""
        return "accuracy" if self.task == "classification" else "error"

    @property
    def limit(self) -> float:
        return self.max_drop if self.budget == "accuracy" else self.max_error_increase

    def quality(self, c: Candidate) -> float:
        return quality_of(c.val, self.task)

    def accuracy_noise(self, quality: float) -> float:
        """One standard error of an accuracy measured on the validation rows, at least one row.

        Accuracies closer than this are the same measurement: on 179 rows, 100% and 99.4%
        differ by a single image. (None is modelled yet for the error budget.)
        """
        if self.task != "classification" or self.val_count <= 0:
            return 0.0
        n = self.val_count
        return max(math.sqrt(quality * (1.0 - quality) / n), 1.0 / n) + 1e-12

    def drop(self, c: Candidate) -> float:
        """The measured accuracy drop (point estimate) on the validation rows; for a regressor,
        the absolute error gained."""
        return self.parent_quality - self.quality(c)

    def error_increase(self, c: Candidate) -> float:
        """Regression: relative rise of the validation error vs the parent (0.02 = 2 %)."""
        parent_error = -self.parent_quality
        return (-self.quality(c) - parent_error) / max(abs(parent_error), 1e-12)

    def point(self, c: Candidate) -> float:
        """How much worse than the parent, in the units of the budget that applies."""
        return self.drop(c) if self.budget == "accuracy" else self.error_increase(c)

    def bound(self, c: Candidate) -> float:
        """The upper confidence bound of the paired degradation (accuracy points, or the
        relative error rise): what the budget is checked against."""
        return c.drop.upper if c.drop is not None else self.point(c)

    def degradation(self, c: Candidate) -> float:
        return self.bound(c)

    def within_budget(self, c: Candidate) -> bool:
        # A hair of slack so the parent (degradation exactly 0) never fails on float rounding.
        return self.bound(c) <= self.limit + 1e-9

    def promising(self, c: Candidate) -> bool:
        """What the search steers by: the bootstrap's bound, without the exact floor that a
        small validation split sets under every candidate (1.28 pt on 179 rows at 90 %: on it
        every candidate would fail a 1-point budget, and the walk would stop at its first
        rung). Cross-fitting then judges the candidates that could win on every non-test row,
        and a cross-fitted candidate is steered by the promise itself (`within_budget`, which
        the choice keeps to)."""
        if c.cross_fit is not None:
            return self.within_budget(c)
        upper = c.drop.steering_upper if c.drop is not None else self.point(c)
        return upper <= self.limit + 1e-9

    def describe(self, c: Candidate) -> str:
        """The budget check in words, e.g. "accuracy drop 0.40 pt [−0.20, 1.10]: its upper 90%
        bound 1.10 pt ≤ 2 pt"."""
        if self.budget == "accuracy":
            return (
                f"accuracy drop {_drop_text(c, self)}: its upper {self.confidence:.0%} bound "
                f"{self.bound(c) * 100:.2f} pt ≤ {self.max_drop * 100:g} pt"
            )
        return (
            f"error increase {self.error_increase(c) * 100:+.2f} %: its upper "
            f"{self.confidence:.0%} bound {self.bound(c) * 100:+.2f} % ≤ "
            f"{self.max_error_increase * 100:g} %"
        )

    def checks(self, c: Candidate) -> dict[str, bool]:
        assert c.latency is not None
        result = {self.budget: self.within_budget(c)}
        if self.latency_ms is not None:
            result["latency"] = c.latency.p95_ms <= self.latency_ms
        if self.max_size_mb is not None:
            result["size"] = c.size_bytes / 1e6 <= self.max_size_mb
        return result

    def meets(self, c: Candidate) -> bool:
        return all(self.checks(c).values())

    def violation(self, c: Candidate) -> float:
        """Sum of relative excesses over the limits (0 when every constraint holds)."""
        assert c.latency is not None
        total = max(0.0, self.degradation(c) - self.limit) / max(self.limit, 0.01)
        if self.latency_ms is not None:
            total += max(0.0, c.latency.p95_ms / self.latency_ms - 1.0)
        if self.max_size_mb is not None:
            total += max(0.0, c.size_bytes / 1e6 / self.max_size_mb - 1.0)
        return total


def _dominates(a: Candidate, b: Candidate, cons: Constraints, tie: float) -> bool:
    """Whether `a` beats `b`: no worse on any axis, better on one. Latencies within `tie`
    (relative) of each other count as equal, so a graph faster by timing noise alone is not
    kept beside a more accurate one; between two equal on quality and size the faster one
    still wins (a tie must not keep both)."""
    qa, qb = cons.quality(a), cons.quality(b)
    la, lb = a.rank_ms, b.rank_ms
    sa, sb = a.size_bytes, b.size_bytes
    no_worse = qa >= qb and la <= lb * (1.0 + tie) and sa <= sb
    better = qa > qb or sa < sb or la * (1.0 + tie) < lb or (qa == qb and sa == sb and la < lb)
    return no_worse and better


def pareto(candidates: list[Candidate], cons: Constraints, tie: float = 0.0) -> list[Candidate]:
    """Candidates no other beats on accuracy, latency (rank_ms, within `tie` counted as equal)
    and size at once. Never empty for a non-empty list: along a chain of dominance quality and
    size never fall, so a cycle would need strictly lower latency at every step. A larger tie
    only removes candidates (what beats one at a smaller tie beats it at a larger)."""
    return [c for c in candidates if not any(_dominates(o, c, cons, tie) for o in candidates)]


MAX_FINALISTS = 12


def pick_finalists(ok: list[Candidate], cons: Constraints, parent: Candidate) -> list[Candidate]:
    """What the final step re-times: the parent, the fastest feasible candidates, then the
    Pareto frontier (at most 12)."""
    fast = sorted((c for c in ok if cons.meets(c)), key=lambda c: c.rank_ms)
    picked = {c.id: c for c in [parent, *fast[:8], *pareto(ok, cons)]}
    return list(picked.values())[:MAX_FINALISTS]


def kept_ids(
    ok: list[Candidate],
    parent: Candidate,
    frontier: list[str],
    winner: Candidate | None,
    keep: str,
) -> list[str]:
    """Candidates that get a package: the Pareto frontier and the winner (`keep="all"`: every
    scored one); never the parent, which has its own."""
    wanted = set(frontier) | ({winner.id} if winner is not None else set())
    return [c.id for c in ok if c is not parent and (keep == "all" or c.id in wanted)]


@dataclass
class Choice:
    chosen: Candidate | None
    best_effort: Candidate | None
    feasible: list[Candidate]
    reason: str
    diagnosis: list[str] = field(default_factory=list)


def choose(candidates: list[Candidate], cons: Constraints, tie_tolerance: float) -> Choice:
    """Fastest among the candidates meeting every constraint; near-ties go to the most accurate.

    Near-ties in speed (within `tie_tolerance`) go to the most accurate, and near-ties in
    accuracy (within one validation standard error) then to the smallest file.

    Speed is `rank_ms`, the lower quartile of the timed calls (per round, median over rounds):
    on a shared machine background load only ever adds time, so the lower quartile ranks graphs
    repeatably where the median can swing by 2× from one second to the next. p50/p95/p99 are
    reported as measured.
    """
    feasible = [c for c in candidates if cons.meets(c)]
    if not feasible:
        best = min(candidates, key=cons.violation)
        return Choice(
            None, best, [], "no candidate meets every constraint", diagnose(candidates, cons)
        )
    fastest = min(feasible, key=lambda c: c.rank_ms)
    near = [c for c in feasible if c.rank_ms <= fastest.rank_ms * (1.0 + tie_tolerance)]
    top = max(cons.quality(c) for c in near)
    # accuracies within the validation split's noise are equal too: the smaller file then wins
    equal = [c for c in near if cons.quality(c) >= top - cons.accuracy_noise(top)]
    chosen = min(equal, key=lambda c: (c.size_bytes, c.rank_ms, -cons.quality(c)))
    reason = _reason(chosen, fastest, near, feasible, cons, tie_tolerance)
    others = [c for c in candidates if c.transforms]
    if others and not any(c.transforms for c in feasible):
        # the parent kept: say how close the others came (and when the rows themselves
        # cannot support the budget), as the diagnosis does when nothing fits
        lines = diagnose(others, cons)
        if lines:
            reason += " No optimized candidate met every constraint: " + "; ".join(lines) + "."
    return Choice(chosen, chosen, feasible, reason)


def _reason(
    chosen: Candidate,
    fastest: Candidate,
    near: list[Candidate],
    feasible: list[Candidate],
    cons: Constraints,
    tie: float,
) -> str:
    assert chosen.latency is not None
    limits = [cons.describe(chosen)]
    if cons.latency_ms is not None:
        limits.append(f"p95 {chosen.latency.p95_ms:.3f} ms ≤ {cons.latency_ms:g} ms")
    if cons.max_size_mb is not None:
        limits.append(f"size {chosen.size_bytes / 1e6:.3f} MB ≤ {cons.max_size_mb:g} MB")
    text = (
        f"{chosen.id} ({chosen.label}) is the fastest (p25 {chosen.latency.p25_ms:.4f} ms, "
        f"p50 {chosen.latency.p50_ms:.4f} ms at batch {chosen.latency.batch_size}) of the "
        f"{len(feasible)} candidate(s) that meet every constraint ({'; '.join(limits)})."
    )
    if len(near) > 1:
        others = ", ".join(c.id for c in near if c is not chosen)
        text += (
            f" Candidates within {tie:.0%} of the fastest ({others}) count as equally fast "
            "on a shared machine; the most accurate of them was picked"
        )
        noise = cons.accuracy_noise(max(cons.quality(c) for c in near))
        if noise:
            text += (
                f" (accuracies within {noise * 100:.2f} pt, one standard error on "
                f"{cons.val_count} validation rows, count as equal; the smallest file wins)"
            )
        text += "." if chosen is fastest else f" over the nominally fastest {fastest.id}."
    return text


def _drop_text(c: Candidate, cons: Constraints) -> str:
    return c.drop.text() if c.drop is not None else f"{cons.drop(c) * 100:.2f} pt"


def diagnose(candidates: list[Candidate], cons: Constraints) -> list[str]:
    """For each constraint: how close the best candidate meeting the *other* ones came."""
    lines: list[str] = []
    for name in cons.checks(candidates[0]):
        others = [c for c in candidates if all(v for k, v in cons.checks(c).items() if k != name)]
        pool = others or candidates
        qualifier = "that meets the other limits" if others else "(none meets the other limits)"
        if name == "accuracy":
            best = min(pool, key=cons.bound)
            if not cons.checks(best)["accuracy"]:
                lines.append(
                    f"accuracy: the candidate {qualifier} with the smallest bound, {best.id} "
                    f"({best.label}), drops {_drop_text(best, cons)}, upper "
                    f"{cons.confidence:.0%} bound {cons.bound(best) * 100:.2f} pt > "
                    f"{cons.max_drop * 100:g} pt allowed"
                )
                rows = best.drop.rows if best.drop is not None else cons.val_count
                least = least_upper(rows, cons.confidence) if rows else 0.0
                if least > cons.max_drop:
                    lines.append(
                        f"accuracy: {rows} rows cannot bound a drop below {least * 100:.2f} pt "
                        f"at {cons.confidence:.0%} even for a candidate that agrees with the "
                        "parent on every row; more validation rows, cross-fitting "
                        "(--cross-fit), a lower --confidence or a larger budget would let one "
                        "through"
                    )
        elif name == "error":
            best = min(pool, key=cons.bound)
            if not cons.checks(best)["error"]:
                lines.append(
                    f"error: the candidate {qualifier} with the smallest bound, {best.id} "
                    f"({best.label}), raises the validation error by "
                    f"{cons.error_increase(best) * 100:.2f} % (upper {cons.confidence:.0%} bound "
                    f"{cons.bound(best) * 100:.2f} %) > {cons.max_error_increase * 100:g} % allowed"
                )
        elif name == "latency" and cons.latency_ms is not None:
            best = min(pool, key=lambda c: c.latency.p95_ms if c.latency else float("inf"))
            assert best.latency is not None
            if best.latency.p95_ms > cons.latency_ms:
                lines.append(
                    f"latency: the fastest candidate {qualifier}, {best.id} ({best.label}), has "
                    f"p95 {best.latency.p95_ms:.4f} ms > {cons.latency_ms:g} ms "
                    f"({best.latency.p95_ms / cons.latency_ms:.1f}× the limit)"
                )
        elif name == "size" and cons.max_size_mb is not None:
            best = min(pool, key=lambda c: c.size_bytes)
            size = best.size_bytes / 1e6
            if size > cons.max_size_mb:
                lines.append(
                    f"size: the smallest candidate {qualifier}, {best.id} ({best.label}), is "
                    f"{size:.4f} MB > {cons.max_size_mb:g} MB ({size / cons.max_size_mb:.1f}× "
                    "the limit)"
                )
    return lines or ["no single constraint fails alone; their combination excludes every candidate"]
