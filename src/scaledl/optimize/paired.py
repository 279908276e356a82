"""A candidate against its parent on the same rows: the drop and its confidence bounds.

The accuracy budget is a promise about unseen data, so a candidate is judged by an upper
confidence bound of its drop, not by the drop measured on a few hundred rows. Both models are
scored on the same rows, so the comparison is paired: most rows agree and only the rows where
they disagree carry noise — far less than two independent accuracies would.

The bound comes from a paired bootstrap over rows (the percentile method): the rows are
resampled with replacement, the drop is recomputed on each resample for both models together,
and the bound at level `confidence` is that quantile of the resampled drops. The resamples come
from a fixed seed and are the same for every candidate (common random numbers), so two
candidates with the same per-row results always get the same bound. It works for any metric
computed from rows: accuracy (classification) and the relative rise of the mean squared error
(regression, e.g. a forecast's standardised MSE) here.

The bootstrap knows only the disagreements it saw. When a candidate agrees with its parent on
every one of 179 rows, every resample agrees too and the bootstrap bound is 0 — "no doubt" —
though 179 rows cannot rule out that 1.3 % of unseen rows would be lost (a digits CNN chosen
so lost 1.11 pt on test against a 1-point budget). So an accuracy drop's upper bound is never
below the exact one: the Clopper–Pearson bound of the share of rows only the parent gets right
(the rows a candidate can lose), less the share only the candidate gets right. Where few rows
disagree it is the larger and holds exactly; where many do, the bootstrap's is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

RESAMPLES = 2000
# Resampled indices are drawn in blocks of about this many entries (bounded memory).
BLOCK_ENTRIES = 2_000_000


def row_scores(
    outputs: np.ndarray, y: np.ndarray, task: str, error_scale: Any = None
) -> np.ndarray:
    """Per row: 1.0/0.0 for a right/wrong class, or (regression) the row's mean squared error
    over its outputs (a forecast's horizon × targets), on `error_scale` when given."""
    if task == "regression":
        diff = np.asarray(outputs, np.float64) - np.asarray(y, np.float64).reshape(outputs.shape)
        if error_scale is not None:
            diff = diff / np.asarray(error_scale, np.float64)
        return np.asarray((diff**2).reshape(len(diff), -1).mean(axis=1), dtype=np.float64)
    return (outputs.argmax(axis=1) == y).astype(np.float64)


@dataclass(frozen=True)
class DropEstimate:
    """The drop (parent − candidate, in metric units: 0.01 = 1 point) with its bounds.

    `lower` and `upper` are one-sided bounds at `confidence` each (together a two-sided
    interval at 2·confidence − 1); the budget is checked against `upper`.
    """

    point: float
    lower: float
    upper: float
    confidence: float
    rows: int
    # The bootstrap's own upper bound, where the exact one is larger (None: `upper` is it).
    # The search steers by it (a provisional judge, before cross-fitting widens the rows); the
    # promise is `upper`.
    resampled_upper: float | None = None

    @property
    def steering_upper(self) -> float:
        return self.upper if self.resampled_upper is None else self.resampled_upper

    def to_json(self) -> dict[str, Any]:
        return {
            "point": round(self.point, 6),
            "lower": round(self.lower, 6),
            "upper": round(self.upper, 6),
            "confidence": self.confidence,
            "rows": self.rows,
            **(
                {"bootstrap_upper": round(self.resampled_upper, 6)}
                if self.resampled_upper is not None
                else {}
            ),
        }

    def text(self, unit: str = "pt") -> str:
        """E.g. `0.40 pt [−0.20, 1.10]` (points of accuracy) or, with unit "%", a regressor's
        relative error rise `+0.40 % [−0.20, +1.10]`."""
        if unit == "%":
            return f"{self.point * 100:+.2f} % [{self.lower * 100:+.2f}, {self.upper * 100:+.2f}]"
        return f"{self.point * 100:.2f} pt [{self.lower * 100:.2f}, {self.upper * 100:.2f}]"


def _statistic(parent: np.ndarray, candidate: np.ndarray, y: np.ndarray, task: str) -> Any:
    """The drop as a function of resampled row indices (one row of `idx` per resample)."""
    if task == "regression":
        # the relative rise of the mean squared error (the regression budget's unit: 0.02 = 2 %)
        def rise(idx: np.ndarray) -> np.ndarray:
            base = np.maximum(parent[idx].mean(axis=-1), 1e-300)
            return np.asarray(candidate[idx].mean(axis=-1) / base - 1.0)

        return rise
    diff = parent - candidate  # +1 where only the parent is right, −1 where only the candidate

    def drop_acc(idx: np.ndarray) -> np.ndarray:
        return np.asarray(diff[idx].mean(axis=-1))

    return drop_acc


def paired_drop(
    parent: np.ndarray,
    candidate: np.ndarray,
    y: np.ndarray,
    task: str,
    confidence: float,
    seed: int = 0,
    resamples: int = RESAMPLES,
) -> DropEstimate:
    """The candidate's drop against the parent on the same rows, with bootstrap bounds.

    `parent` and `candidate` are `row_scores` of the two models on the same rows, `y` the
    labels (kept for metrics that need them; accuracy and the error rise do not).
    """
    n = len(parent)
    if n == 0 or len(candidate) != n:
        raise ValueError(f"paired rows differ: parent {n}, candidate {len(candidate)}")
    y = np.asarray(y, dtype=np.float64)
    statistic = _statistic(parent, candidate, y, task)
    point = float(statistic(np.arange(n)))
    rng = np.random.default_rng(seed)
    block = max(1, BLOCK_ENTRIES // n)
    drops = np.concatenate(
        [
            statistic(rng.integers(0, n, size=(min(block, resamples - start), n)))
            for start in range(0, resamples, block)
        ]
    )
    resampled = float(np.quantile(drops, confidence))
    exact = -np.inf
    if task != "regression":
        lost = int(np.count_nonzero(parent > candidate))
        gained = int(np.count_nonzero(candidate > parent))
        exact = exact_upper(lost, gained, n, confidence)
    return DropEstimate(
        point=point,
        lower=float(np.quantile(drops, 1.0 - confidence)),
        upper=max(resampled, exact),
        confidence=confidence,
        rows=n,
        resampled_upper=resampled if exact > resampled else None,
    )


def exact_upper(lost: int, gained: int, rows: int, confidence: float) -> float:
    """An accuracy drop's upper bound from counts: the one-sided Clopper–Pearson bound (at
    `confidence`) of the share of rows only the parent gets right (`lost` of `rows`), less the
    share only the candidate gets right (`gained`). With nothing lost it is 1 − (1 − c)^(1/n):
    1.28 pt on 179 rows at 90 %, 0.16 pt on 1,438."""
    from scipy.stats import beta

    share = 1.0 if lost >= rows else float(beta.ppf(confidence, lost + 1, rows - lost))
    return share - gained / rows


def least_upper(rows: int, confidence: float) -> float:
    """The smallest accuracy-drop bound any candidate can reach on `rows` rows (one that
    agrees with its parent on every row)."""
    return exact_upper(0, 0, rows, confidence)


def identical(rows: int, confidence: float) -> DropEstimate:
    """The parent against itself: no drop, no doubt."""
    return DropEstimate(0.0, 0.0, 0.0, confidence, rows)


@dataclass(frozen=True)
class RunSpread:
    """How much one run of a procedure (prune → fine-tune from a random start, …) strays from
    the procedure's mean drop, from several runs each judged on its own rows."""

    tau: float  # between-run standard deviation beyond the rows' noise (DerSimonian–Laird)
    upper: float  # the prediction bound for one more run: point + t·sqrt(se² + tau²)
    points: tuple[float, ...] = ()  # each run's own drop, in the order given


def run_spread(
    runs: list[tuple[np.ndarray, np.ndarray]], point: float, task: str, confidence: float
) -> RunSpread:
    """The spread between runs and the bound it implies for the run that ships.

    Cross-fitting replays a candidate's chain on each fold parent, and the pooled rows bound
    the mean drop of that procedure. The graph that ships is one more run of it, and runs
    differ: on digits a GRU's 30 % prune lost between −1.2 and 1.7 pt on the five folds and
    the validation rows; it and a 75 %-width slim were chosen under pooled bounds of 0.84 and
    0.94 pt, and lost 1.4 and 1.7 pt on test. So the drop of one run is bounded as in a
    random-effects meta-analysis (each run a study; Higgins, Thompson & Spiegelhalter's
    prediction interval): `tau²`, the variance of the runs' drops beyond their sampling noise
    (DerSimonian–Laird moments), is added to the mean's own variance, and the quantile is
    Student's t with k − 2 degrees of freedom for k runs.

    Six runs teach little about a spread: in simulations of six runs of 250 rows whose true
    drops spread by 0.4–1.2 pt, this bound covered the next run's drop in 81–89 % of cases at
    90 %, the pooled rows' bound alone in 64–78 % (tests/optimize/test_paired.py).

    `runs`: per run, the `row_scores` of its parent and of its candidate on the same rows;
    `point`: the pooled drop. A row's contribution is its accuracy difference, or for
    regression its linearised share of the relative error rise.
    """
    from scipy.stats import t as student

    points, sizes, sums = [], [], []
    for parent, candidate in runs:
        n = len(parent)
        if task == "regression":
            base = max(float(parent.mean()), 1e-300)
            drop = float(candidate.mean()) / base - 1.0
            influence = (candidate - (1.0 + drop) * parent) / base
        else:
            drop = float(parent.mean() - candidate.mean())
            influence = parent - candidate
        points.append(drop)
        sizes.append(n)
        sums.append(float(((influence - influence.mean()) ** 2).sum()))
    k = len(points)
    dof = sum(sizes) - k
    if k < 3 or dof <= 0:  # the t quantile needs k − 2 ≥ 1
        return RunSpread(0.0, point, tuple(points))
    row_var = sum(sums) / dof  # one row's variance, pooled (a run without disagreements has 0)
    if row_var <= 0.0:  # every row of every run agrees: no spread to see
        return RunSpread(0.0, point, tuple(points))
    within = np.array([row_var / n for n in sizes])
    weights = 1.0 / within
    d = np.array(points)
    mean = float((weights * d).sum() / weights.sum())
    q = float((weights * (d - mean) ** 2).sum())
    scale = float(weights.sum() - (weights**2).sum() / weights.sum())
    tau2 = max(0.0, (q - (k - 1)) / scale) if scale > 0 else 0.0
    se2 = 1.0 / float((1.0 / (within + tau2)).sum())
    quantile = float(student.ppf(confidence, k - 2))
    bound = point + quantile * float(np.sqrt(se2 + tau2))
    return RunSpread(float(np.sqrt(tau2)), bound, tuple(points))
