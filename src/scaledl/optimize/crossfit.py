"""Cross-fitting: judge candidates on every non-test row of a small data set.

On a few hundred validation rows the budget's bound is wide. On 179 rows one row is 0.56 pt, so
a candidate that loses two rows is rejected however it does on unseen data, and the search keeps
the parent. Cross-fitting widens the selection set without touching the test split:

1. the training rows are cut into K folds (seeded; stratified by class);
2. for each fold, a parent is retrained from scratch on the other folds and the validation rows,
   so each non-test row is judged once: by its fold's pair, or by the real pair. The retraining
   follows the package's own recipe: its model.json architecture, its `train` settings and its
   augmentation. The fold parent is then exported like the parent;
3. each candidate's chain of methods (e.g. slim:w0.75 → distill → int8:dynamic) is applied to
   that fold parent the same way: fine-tuned by distillation from the fold parent, calibrated
   on the fold parent's own training rows;
4. fold parent and fold candidate are scored, row by row, on the fold they never saw.

A split that keeps groups together (`data.text.group_phrases`: a sentence with its phrases)
is cut into folds by group, and each fold is judged on its whole sentences only, as the
validation split is; a held-out fold's phrases train no fold parent.

The paired per-row results of every fold are pooled with the validation rows' own, and the
budget's bound is recomputed over all of them: on digits, 179 rows become 1,438 (every non-test
row). The bound then speaks of the procedure (this chain applied to a model trained by this
recipe), and the chosen graph is one run of that procedure. That is the standard cross-fitting
argument.

It runs after the search, with the time the search left: the candidates that could win
(faster than the parent, not clearly over budget on the validation rows) are judged fastest
first. A structural variant that passes only now also gets the quantization settings that kept
accuracy on the parent. Limits:
- it runs only when the time left covers K trainings, and each candidate only when it covers
  its chain K times (a structural variant is fine-tuned once per fold; its quantized children
  reuse that fine-tune). A candidate it does not reach keeps its validation-only bound, and the
  report says so;
- it never runs on time series. Their windows overlap, so a held-out fold's rows would have
  near-copies in its training folds.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from scaledl.optimize.budget import SAFETY
from scaledl.optimize.candidate import Candidate
from scaledl.optimize.context import SearchContext, recipe_section
from scaledl.optimize.evaluation import ensure_onnx, scoring_session, split_metrics
from scaledl.optimize.paired import paired_drop, run_spread
from scaledl.optimize.registry import MethodConfig, MethodSkipped, apply_method, method_for
from scaledl.preprocess import apply_preprocessing

if TYPE_CHECKING:
    from scaledl.optimize.search import Search

log = logging.getLogger(__name__)
AUTO_MAX_ROWS = 1000  # `auto` cross-fits when the validation split has fewer rows than this
AUTO_FOLDS = 5
FALLBACK_TRAIN_S = 60.0  # a fold's training when the package records no training time


def planned_folds(ctx: SearchContext, settings: Any = None) -> tuple[int, str | None]:
    """(folds, None) when cross-fitting runs, or (0, why not); None as the reason when `auto`
    simply found the validation split large enough (nothing worth reporting). `settings`: the
    parent's TrainConfig when the caller has read it already."""
    setting = ctx.config.cross_fit
    if setting == "off":
        return 0, None
    if setting == "auto" and len(ctx.splits.val) >= AUTO_MAX_ROWS:
        return 0, None
    folds = AUTO_FOLDS if setting == "auto" else int(setting)
    if ctx.splits.kind == "series":
        return 0, (
            "time-series windows overlap: a held-out fold's rows would have near-copies in its "
            "training folds"
        )
    if ctx.splits.grouped is not None and _groups(ctx) is None:
        return 0, (
            f"the split keeps {ctx.splits.grouped}, but the training rows' groups are not "
            "known here, and row-wise folds would judge rows whose group trained the fold parent"
        )
    if not ctx.has_weights or ctx.spec is None or ctx.spec.family == "custom":
        return 0, "it retrains the parent from its model.json, which this package does not allow"
    if (settings or _train_settings(ctx)) is None:
        return 0, "the package has no recipe.yaml with a valid `train` section to retrain by"
    rows = len(ctx.splits.train) + len(ctx.splits.val)
    if rows < folds * 10:
        return 0, f"{rows} rows are too few for {folds} folds"
    return folds, None


def _train_settings(ctx: SearchContext) -> Any:
    """The parent's TrainConfig from its recipe.yaml (None when it has none that validates)."""
    from scaledl.config.train import TrainConfig

    return recipe_section(ctx.parent, "train", TrainConfig)


def fold_ids(y: np.ndarray, folds: int, seed: int, task: str) -> np.ndarray:
    """A fold per row: shuffled with `seed`, each class spread evenly over the folds."""
    rng = np.random.default_rng(seed)
    ids = np.empty(len(y), dtype=np.int64)
    if task == "classification":
        offset = 0
        for label in np.unique(y):
            rows = rng.permutation(np.flatnonzero(y == label))
            ids[rows] = (np.arange(len(rows)) + offset) % folds
            offset += len(rows)  # the next class continues where this one stopped
        return ids
    ids[rng.permutation(len(y))] = np.arange(len(y)) % folds
    return ids


def group_fold_ids(
    y: np.ndarray, group: np.ndarray, head: np.ndarray, folds: int, seed: int, task: str
) -> np.ndarray:
    """A fold per row that keeps each group in one fold: the heads are cut like `fold_ids`
    (by their own label), and every row follows its head."""
    heads = np.flatnonzero(head)
    fold_of = dict(zip(group[heads].tolist(), fold_ids(y[heads], folds, seed, task).tolist()))
    missing = set(group.tolist()) - fold_of.keys()
    if missing:  # every training group keeps its head in training (grouped_split)
        raise ValueError(f"{len(missing)} groups have no head among the training rows")
    return np.fromiter((fold_of[g] for g in group.tolist()), dtype=np.int64, count=len(group))


def _groups(ctx: SearchContext) -> tuple[np.ndarray, np.ndarray] | None:
    """The training rows' groups and heads of a grouped split (None when it is not grouped,
    or when they do not line up with the training rows)."""
    splits = ctx.splits
    group, head = splits.train_group, splits.train_head
    if group is None or head is None or not len(group) == len(head) == len(splits.train):
        return None
    return group, head


class _OutOfTime(Exception):
    """A fold parent's training ran past the time the search had left."""


@dataclass
class FoldParent:
    """A parent retrained without one fold, its graph, and its per-row results on that fold."""

    ctx: SearchContext  # the search context with this fold's splits (calibration reads them)
    candidate: Candidate
    x: np.ndarray  # the held-out fold, normalized
    y: np.ndarray
    rows: np.ndarray
    # chain prefix → the candidate it made on this fold (reused by longer chains)
    made: dict[tuple[MethodConfig, ...], Candidate] = field(default_factory=dict)

    def replay(self, chain: list[MethodConfig]) -> Candidate:
        """The candidate `chain` makes from this fold parent (prefixes made before are reused:
        the quantized children of a fine-tuned variant share its fine-tune)."""
        child = self.candidate
        for i, config in enumerate(chain):
            key = _key(chain[: i + 1])
            if key in self.made:
                child = self.made[key]
                continue
            if method_for(config).kind == "graph":
                child = ensure_onnx(child, self.ctx)
            child = apply_method(child, config, self.ctx)
            self.made[key] = child
        return ensure_onnx(child, self.ctx)


def _key(chain: list[MethodConfig]) -> tuple[MethodConfig, ...]:
    # the configs themselves (frozen, hashable): tags alone do not tell a 5-epoch distill
    # from a 15-epoch one
    return tuple(chain)


class CrossFit:
    """Trains the fold parents once, then re-judges candidates on them (their chains replayed)."""

    def __init__(self, search: Search) -> None:
        self.search = search
        self.ctx = search.ctx
        self.settings = _train_settings(self.ctx)  # read once: every fold trains by it
        self.folds, reason = planned_folds(self.ctx, self.settings)
        if reason is not None:
            search.skip("cross-fitting", reason)
        self.parents: list[FoldParent] | None = None
        self.judged: list[str] = []
        # Replays measured against their first guesses (see `calibrated`).
        self.estimated = 0.0
        self.spent = 0.0

    @property
    def active(self) -> bool:
        return self.folds > 0

    def booked(self) -> float:
        """Seconds the second chances must leave for the fold parents, while cross-fitting is
        on (asked for, or `auto` on a small validation split) and they are not trained yet.

        `auto` once took only what the search left. When fine-tunes began to fill the budget
        (each one bounded by its slot, from a lower first guess), the second chances took that
        time and digits' 179 validation rows chose alone: 8 of 10 seeded runs kept the budget
        on test, against 10 of 10 with the folds. On small data the wider selection is the
        promise; a longer fine-tune is only polish."""
        if not self.active or self.parents is not None:
            return 0.0
        return self.folds * self._fold_estimate()

    def summary(self) -> dict[str, Any]:
        if not self.parents:
            return {}
        rows = len(self.ctx.splits.val) + sum(len(p.y) for p in self.parents)
        return {
            "folds": self.folds,
            "rows": rows,
            "candidates": list(self.judged),
            # what replays were guessed at and took: the scale later guesses were given
            "replays": {
                "guessed_s": round(self.estimated, 3),
                "took_s": round(self.spent, 3),
                "scale": round(replay_scale(self.estimated, self.spent), 3),
            },
        }

    def widen(self, candidate: Candidate, parent: Candidate) -> None:
        """Recompute the candidate's drop over the validation rows plus every fold's held-out
        rows (its chain replayed on each fold parent)."""
        if not self.active or not candidate.ok or candidate.val_rows is None:
            return
        if not candidate.chain or candidate.cross_fit is not None:  # nothing to replay, or done
            return
        if self.parents is None and not self._train_parents():
            return
        label = f"cross-fitting {candidate.id} ({candidate.label})"
        first_guess = self._first_guess(candidate.chain)
        if not self.search.fits(label, self._chain_estimate(candidate.chain)):
            return
        start = time.monotonic()
        try:
            self._judge(candidate, parent)
            took = time.monotonic() - start
            self.search.book.record("cross_fit", took)
            if first_guess > 0:
                self.estimated += first_guess
                self.spent += took
        except MethodSkipped as exc:
            candidate.notes.append(f"not cross-fitted: {exc}")
        except Exception as exc:  # the validation-only bound stands
            log.info("cross-fitting %s failed", candidate.id, exc_info=True)
            candidate.notes.append(f"not cross-fitted: {type(exc).__name__}: {exc}")

    def _chain_estimate(self, chain: list[MethodConfig]) -> float:
        """Seconds to replay `chain` on every fold parent: the first guess, scaled by what
        the replays so far took against theirs (with the search's safety margin)."""
        return calibrated(self._first_guess(chain), self.estimated, self.spent)

    def _first_guess(self, chain: list[MethodConfig]) -> float:
        """Seconds to replay `chain` on every fold parent from the search's per-job costs
        (steps already made are reused)."""
        assert self.parents is not None
        book = self.search.book
        total = 0.0
        for i, config in enumerate(chain):
            key = _key(chain[: i + 1])
            missing = sum(key not in fold.made for fold in self.parents)
            if not missing:
                continue
            if method_for(config).kind == "graph":
                total += missing * book.graph_estimate()
            else:
                epochs = int(getattr(config, "epochs", 0) or 0)
                total += missing * book.structure_estimate(epochs)
        return total

    def _judge(self, candidate: Candidate, parent: Candidate) -> None:
        assert self.parents is not None
        ctx = self.ctx
        parent_rows, rows = [parent.val_rows], [candidate.val_rows]
        for fold in self.parents:
            child = fold.replay(candidate.chain)
            session = scoring_session(child, ctx)
            _, child_rows = split_metrics(session, fold.x, fold.y, ctx.task, ctx.error_scale)
            parent_rows.append(fold.rows)
            rows.append(child_rows)
        validation_only = candidate.drop
        pooled = paired_drop(
            np.concatenate(parent_rows),
            np.concatenate(rows),
            np.zeros(sum(len(r) for r in rows)),  # the drop statistics need no labels
            ctx.task,
            ctx.config.confidence,
            seed=ctx.config.seed,
        )
        # The pooled rows bound the procedure's mean drop; the graph that ships is one run of
        # it (the real parent's, judged on the validation rows), and runs stray from the mean.
        spread = run_spread(
            list(zip(parent_rows, rows, strict=True)),
            pooled.point,
            ctx.task,
            ctx.config.confidence,
        )
        candidate.drop = pooled
        if spread.upper > pooled.upper:
            candidate.drop = dataclasses.replace(
                pooled,
                upper=spread.upper,
                resampled_upper=pooled.steering_upper,
            )
        candidate.cross_fit = {
            "folds": self.folds,
            "rows": candidate.drop.rows,
            "fold_points": [round(v, 6) for v in spread.points[1:]],  # [0]: validation
            "between_runs_sd": round(spread.tau, 6),
            "pooled_upper": round(pooled.upper, 6),
            "validation_only": validation_only.to_json() if validation_only else None,
        }
        self.judged.append(candidate.id)

    # -- the fold parents ----------------------------------------------------------------------

    def _train_parents(self) -> bool:
        ctx, book = self.ctx, self.search.book
        per_fold = self._fold_estimate()
        label = f"cross-fitting ({self.folds} folds: retraining the parent on each)"
        if not self.search.fits(label, self.folds * per_fold):
            self.folds = 0
            return False
        x = np.concatenate([ctx.splits.train.x, ctx.splits.val.x])
        y = np.concatenate([ctx.splits.train.y, ctx.splits.val.y])
        # folds cut the training rows only; the validation rows always train the fold parents,
        # so each non-test row is judged exactly once: by its fold, or by the real parent.
        # A grouped split (a sentence with its phrases) keeps each group in one fold and judges
        # its head only, as validation holds whole sentences: a held-out fold's phrases
        # neither train its fold parent nor judge it.
        groups = _groups(ctx)
        train_y = ctx.splits.train.y
        if groups is None:
            train_ids = fold_ids(train_y, self.folds, ctx.config.seed, ctx.task)
            judged = np.ones(len(x), dtype=bool)
        else:
            group, head = groups
            try:
                train_ids = group_fold_ids(
                    train_y, group, head, self.folds, ctx.config.seed, ctx.task
                )
            except ValueError as exc:  # groups without a head: no fold can keep them whole
                self.search.skip("cross-fitting", f"the split's groups: {exc}")
                self.folds = 0
                return False
            judged = np.concatenate([head, np.ones(len(ctx.splits.val), dtype=bool)])
        ids = np.concatenate([train_ids, np.full(len(ctx.splits.val), -1, dtype=np.int64)])
        parents = []
        for k in range(self.folds):
            rest = (self.folds - k) * self._fold_estimate()
            if k and not self.search.fits(f"{label}, folds {k + 1}–{self.folds}", rest):
                self.folds = 0  # the first folds took longer than the package's record said
                return False
            if self.search.bar is not None:
                self.search.bar.update(description=f"optimize: cross-fit fold {k + 1}/{self.folds}")
            start = time.monotonic()
            try:
                parents.append(self._fold_parent(k, x, y, ids, judged))
            except _OutOfTime:
                recorded = self.ctx.parent.manifest.metrics.get("train_seconds")
                self.search.skip(
                    "cross-fitting",
                    f"time budget: retraining fold {k} ran past the time left (the package "
                    f"records {recorded} s of training, which understated it); stopped after "
                    "an epoch",
                )
                self.folds = 0
                return False
            except Exception as exc:
                log.info("cross-fitting fold %d failed", k, exc_info=True)
                self.search.skip("cross-fitting", f"retraining fold {k} failed: {exc}")
                self.folds = 0
                return False
            book.record("fold", time.monotonic() - start)
        self.parents = parents
        return True

    def _deadline(self, record: dict[str, Any]) -> None:
        """After each epoch of a fold parent: stop once the search's time is spent. The plan
        trusted the package's recorded training time; a recipe that trains far longer (an old
        record, or a forged one) costs at most one epoch more."""
        if self.search.time_left() < 0:
            raise _OutOfTime

    def _fold_estimate(self) -> float:
        """Seconds to retrain, export and score one fold parent (from what was recorded)."""
        book = self.search.book
        if book.measured("fold"):
            return book.mean("fold")
        metrics = self.ctx.parent.manifest.metrics
        recorded = float(metrics.get("train_seconds", 0) or 0)
        seconds = recorded if recorded > 0 else FALLBACK_TRAIN_S
        train = len(self.ctx.splits.train)
        rows = train * (self.folds - 1) / self.folds + len(self.ctx.splits.val)
        share = rows / max(train, 1)
        return 1.25 * (seconds * share + book.mean("export") + book.mean("score"))

    def _fold_parent(
        self, k: int, x: np.ndarray, y: np.ndarray, ids: np.ndarray, judged: np.ndarray
    ) -> FoldParent:
        import torch

        from scaledl.data.augment import build_augmenter
        from scaledl.data.dataset import ArraySet
        from scaledl.modalities import modality
        from scaledl.train.loop import Trainer

        ctx = self.ctx
        inside = np.flatnonzero(ids != k)  # the other folds and the validation rows
        held = np.flatnonzero((ids == k) & judged)
        early = np.zeros(len(inside), dtype=bool)
        early[::10] = True  # the fold parent picks its best epoch on these, not on the fold
        splits = dataclasses.replace(
            ctx.splits,
            train=ArraySet(x[inside[~early]], y[inside[~early]]),
            val=ArraySet(x[inside[early]], y[inside[early]]),
            test=ArraySet(x[held], y[held]),
            train_group=None,  # the fold's rows are not the split's training rows
            train_head=None,
        )
        torch.manual_seed(ctx.config.seed + k)
        kind = modality(splits.kind).augmentation_kind()
        trainer = Trainer(
            ctx.spec.build(),
            splits,
            self.settings,
            ctx.preprocessing,
            task=ctx.task,
            seed=ctx.config.seed + k,
            augmenter=build_augmenter(ctx.augment, kind) if ctx.augment is not None else None,
            callbacks=[self._deadline],
        )
        model = trainer.fit().model.eval()
        x_held = apply_preprocessing(x[held], ctx.preprocessing)
        fold_ctx = dataclasses.replace(
            ctx,
            splits=splits,
            x_val=x_held,
            x_test=x_held[:0],
            teacher=model,
            _finetune=None,
        )
        fold = Candidate(id=f"fold{k}", transforms=[], onnx=None, module=model, spec=ctx.spec)
        fold = ensure_onnx(fold, fold_ctx)
        session = scoring_session(fold, fold_ctx)
        _, rows = split_metrics(session, x_held, y[held], ctx.task, ctx.error_scale)
        return FoldParent(ctx=fold_ctx, candidate=fold, x=x_held, y=y[held], rows=rows)


def calibrated(guess: float, estimated: float, spent: float) -> float:
    """A replay's first guess scaled by what the replays so far took against their guesses
    (`spent` / `estimated` seconds, bounded to 0.25–4×), with the search's safety margin.

    The guesses come from the search's own jobs, but a fold's fine-tune trains on fewer rows
    and scores only its held-out fold: on digits a 40 % prune's replays were guessed at ~40 s
    and took 6–14 s (`bench/results/optimize_trust-digits-crossfit-first.json`), so candidates
    that would have fitted went unjudged. Before any replay has run, the guess stands."""
    if estimated <= 0 or spent <= 0:
        return guess
    return SAFETY * replay_scale(estimated, spent) * guess


def replay_scale(estimated: float, spent: float) -> float:
    """What replays took against their first guesses, bounded to 0.25–4× (1 before any)."""
    if estimated <= 0 or spent <= 0:
        return 1.0
    return min(max(spent / estimated, 0.25), 4.0)
