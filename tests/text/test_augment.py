"""Text augmentation: per-sample and reproducible, [CLS] and padding never touched."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scaledl.data.augment import AugmentConfig, build_augmenter
from scaledl.errors import RecipeError

BATCH = torch.tensor(
    [
        [2, 10, 11, 12, 13, 14, 15, 0, 0],
        [2, 5, 0, 0, 0, 0, 0, 0, 0],
        [2, 7, 8, 9, 10, 11, 12, 13, 14],
        [2, 30, 31, 0, 0, 0, 0, 0, 0],
    ]
)
POLICY = [
    {"op": "token_dropout", "rate": 0.3},
    {"op": "token_swap", "rate": 0.3},
    {"op": "token_mask", "rate": 0.3},
]


def augment(x: torch.Tensor, index: list[int], epoch: int = 0) -> torch.Tensor:
    augmenter = build_augmenter(AugmentConfig(policy=POLICY), "text")
    assert augmenter is not None
    out, soft = augmenter(x, None, seed=7, epoch=epoch, index=np.array(index))
    assert soft is None
    return out


def test_a_text_is_augmented_the_same_in_any_batch_and_padding() -> None:
    together = augment(BATCH, [0, 1, 2, 3])
    for row in range(4):
        length = int((BATCH[row] != 0).sum())
        alone = augment(BATCH[row : row + 1, :length], [row])
        assert alone[0].tolist() == together[row, :length].tolist()
        assert together[row, length:].eq(0).all()  # never longer than the text
    assert not torch.equal(augment(BATCH, [0, 1, 2, 3], epoch=1), together)


def test_cls_stays_first_and_every_text_keeps_a_token() -> None:
    heavy = build_augmenter(AugmentConfig(policy=[{"op": "token_dropout", "rate": 0.95}]), "text")
    assert heavy is not None
    out, _ = heavy(BATCH, None, seed=1, epoch=0, index=np.arange(4))
    assert out[:, 0].eq(2).all()
    assert ((out != 0) & (out != 2)).sum(dim=1).min() >= 1
    words = [sorted(t for t in row.tolist() if t > 2) for row in out]
    for kept, original in zip(words, BATCH.tolist(), strict=True):
        assert set(kept) <= set(original)  # dropout only removes


def test_image_ops_are_refused_for_text() -> None:
    with pytest.raises(RecipeError, match="does not apply to text data"):
        build_augmenter(AugmentConfig(policy=[{"op": "hflip"}]), "text")
