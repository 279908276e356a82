"""Ops for text, on token-id batches (B, L) as the tokenizer gives them: [CLS] first, then the
text's tokens, then padding.

Each op decides per token with one uniform draw per position from the counter-based generator
(draw j of a sample depends only on seed, epoch, sample index and j — not on how long the
batch was padded), so a text is augmented the same way in any batch, worker or rank. [CLS]
and padding are never touched, and at least one token of a text always stays.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from scaledl.data.augment.base import AugmentOp, OpRng, Statistics, register

PAD_ID, UNK_ID, CLS_ID = 0, 1, 2  # fixed by the text tokenizer (scaledl.modalities.text)


class TextOp(AugmentOp):
    kinds: ClassVar[tuple[str, ...]] = ("text",)


def _words(x: Any) -> Any:
    """Positions holding a token of the text (not [CLS], not padding)."""
    return (x != PAD_ID) & (x != CLS_ID)


@register
class TokenDropout(TextOp):
    """Delete each token with probability `rate`; the rest close up (word dropout)."""

    op: Literal["token_dropout"] = "token_dropout"
    rate: float = Field(0.1, gt=0.0, lt=1.0, description="probability a token is deleted")

    def transform(self, x: Any, u: Any, rng: OpRng, stats: Statistics | None) -> Any:
        import torch

        words = _words(x)
        drop = words & (rng.uniform(x.shape[1], sub=1) < self.rate)
        emptied = (words & ~drop).sum(dim=1) == 0
        if bool(emptied.any()):  # keep a text's first token when every one was drawn
            first = torch.zeros_like(drop)
            first[:, 1] = True
            drop = drop & ~(first & emptied.unsqueeze(1))
        keep = (x != PAD_ID) & ~drop
        # stable sort puts kept positions first, in their order; the rest becomes padding
        order = torch.sort((~keep).to(torch.int8), dim=1, stable=True).indices
        out = x.gather(1, order)
        positions = torch.arange(x.shape[1], device=x.device).unsqueeze(0)
        return out.masked_fill(positions >= keep.sum(dim=1, keepdim=True), PAD_ID)


@register
class TokenMask(TextOp):
    """Replace each token with [UNK] with probability `rate` (as an unseen word would be)."""

    op: Literal["token_mask"] = "token_mask"
    rate: float = Field(0.1, gt=0.0, lt=1.0, description="probability a token becomes [UNK]")

    def transform(self, x: Any, u: Any, rng: OpRng, stats: Statistics | None) -> Any:
        chosen = _words(x) & (rng.uniform(x.shape[1], sub=1) < self.rate)
        return x.masked_fill(chosen, UNK_ID)


@register
class TokenSwap(TextOp):
    """Swap a token with the next one with probability `rate` per position (no overlaps)."""

    op: Literal["token_swap"] = "token_swap"
    rate: float = Field(0.05, gt=0.0, lt=1.0, description="probability a pair is swapped")

    def transform(self, x: Any, u: Any, rng: OpRng, stats: Statistics | None) -> Any:
        import torch

        if x.shape[1] < 3:
            return x
        words = _words(x)
        draw = rng.uniform(x.shape[1], sub=1)
        start = torch.zeros_like(words)
        start[:, :-1] = words[:, :-1] & words[:, 1:] & (draw[:, :-1] < self.rate)
        previous = torch.zeros_like(start)
        previous[:, 1:] = start[:, :-1]
        start = start & ~previous  # a position starts a swap only if the one before did not
        index = torch.arange(x.shape[1], device=x.device).expand_as(x).clone()
        second = torch.zeros_like(start)
        second[:, 1:] = start[:, :-1]
        index = torch.where(start, index + 1, index)
        index = torch.where(second, index - 1, index)
        return x.gather(1, index)
