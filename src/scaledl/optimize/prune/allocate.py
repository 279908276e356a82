"""How many units each prunable group keeps: global or per-group ranking, rounded counts.

A *group* is a set of units removed together (a conv's output channels with its batch norm and
every consumer, a recurrent layer's hidden units, a layer's attention heads). Scores are
normalized inside each group (divided by their mean, as torch-pruning does), so one threshold
can rank units of different layers against each other.

Counts are rounded to the nearest multiple of `round_to` (ONNX Runtime's blocked kernels run
misaligned channel counts slower), never below `min_keep` and never above the current count.
torch-pruning's own pruner floors the kept count and silently skips a group that would round to
zero; ranking here keeps the rounding explicit and every group alive.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Group:
    name: str
    scores: torch.Tensor  # one score per unit (copies × current units for bidirectional layers)
    original: int  # units before the first pruning step
    round_to: int = 1
    min_keep: int = 1
    copies: int = 1  # units ranked in `copies` independent blocks of equal size (directions)

    @property
    def current(self) -> int:
        return len(self.scores) // self.copies


def normalized(scores: torch.Tensor) -> torch.Tensor:
    scores = scores.detach().double().abs()
    mean = scores.mean()
    return scores / mean if mean > 0 else torch.ones_like(scores)


def round_count(raw: float, group: Group) -> int:
    """Nearest kept count that is a multiple of round_to (or the whole group), within bounds."""
    current, step = group.current, max(1, group.round_to)
    floor = min(current, max(step, group.min_keep))
    candidates = [k for k in range(step, current + 1, step) if k >= floor] + [current]
    return min(candidates, key=lambda k: (abs(k - raw), -k))


def allocate(groups: list[Group], keep_fraction: float, global_ranking: bool) -> list[int]:
    """Kept units per group so that about `keep_fraction` of the original units remain."""
    if not groups:
        return []
    if not global_ranking:
        return [round_count(keep_fraction * g.original, g) for g in groups]
    original = sum(g.original for g in groups)
    keep_total = round(keep_fraction * original)
    scores = torch.cat([normalized(g.scores) for g in groups])
    owner = torch.cat([torch.full((len(g.scores),), i) for i, g in enumerate(groups)])
    kept_entries = torch.zeros(len(groups), dtype=torch.float64)
    if keep_total > 0:
        # Each group's entries count 1/copies unit each, so rank entries weighted that way.
        weights = torch.tensor([1.0 / groups[int(i)].copies for i in owner], dtype=torch.float64)
        order = torch.argsort(scores, descending=True)
        cumulative = torch.cumsum(weights[order], 0)
        chosen = order[: int(torch.searchsorted(cumulative, float(keep_total) - 1e-9)) + 1]
        kept_entries.index_add_(0, owner[chosen], weights[chosen])
    return [round_count(float(kept_entries[i]), g) for i, g in enumerate(groups)]


def lowest(scores: torch.Tensor, keep: int) -> list[int]:
    """Indices of the units to remove so that the `keep` highest-scoring ones remain."""
    order = torch.argsort(scores.detach().double(), descending=True)
    return sorted(int(i) for i in order[keep:])


def highest(scores: torch.Tensor, keep: int) -> list[int]:
    """Indices (ascending) of the `keep` highest-scoring units."""
    order = torch.argsort(scores.detach().double(), descending=True)
    return sorted(int(i) for i in order[:keep])
