"""Audio augmentation: per-sample reproducible waveform and feature ops, and the training hook."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scaledl.data.augment import AugmentConfig, build_augmenter
from scaledl.data.augment.audio import active_power
from scaledl.errors import RecipeError
from tests.audio.conftest import tone

POLICY = [
    {"op": "time_shift", "max_shift": 0.2},
    {"op": "gain", "low_db": -6, "high_db": 6},
    {"op": "noise", "min_snr_db": 5, "max_snr_db": 20},
    {"op": "speed", "low": 0.9, "high": 1.1},
    {"op": "mixup", "alpha": 0.4, "p": 0.5},
    {"op": "spec_freq_mask", "width": 6},
    {"op": "spec_time_mask", "width": 0.2, "count": 2},
]


def _clips(n: int = 6) -> np.ndarray:
    x = np.zeros((n, 4000), np.float32)
    for i in range(n):
        x[i, 1000:3000] = tone(200 + 100 * i, 8000, 0.25)
    return x


def _augmenter(policy: list[dict[str, object]]) -> object:
    augmenter = build_augmenter(AugmentConfig.model_validate({"policy": policy}), "audio")
    assert augmenter is not None
    x = _clips()
    augmenter.bind(x, np.arange(len(x)) % 3, 1.0, 3)
    return augmenter


def test_a_sample_is_augmented_alike_in_any_batch() -> None:
    import torch

    augmenter = _augmenter(POLICY)
    x, y = torch.from_numpy(_clips()), torch.arange(6) % 3
    index = np.arange(6)
    full, soft = augmenter(x, y, seed=3, epoch=2, index=index)
    part, part_soft = augmenter(x[[4, 1]], y[[4, 1]], seed=3, epoch=2, index=index[[4, 1]])
    torch.testing.assert_close(part, full[[4, 1]])
    torch.testing.assert_close(part_soft, soft[[4, 1]])
    other, _ = augmenter(x, y, seed=3, epoch=3, index=index)
    assert not torch.equal(other, full)  # a new epoch draws again
    features = torch.randn(6, 40, 50)
    masked = augmenter.feature_augment(seed=3, epoch=2, index=index)(features)
    again = augmenter.feature_augment(seed=3, epoch=2, index=index[[4, 1]])(features[[4, 1]])
    torch.testing.assert_close(again, masked[[4, 1]])
    zeroed = (masked == 0).float()
    assert zeroed.sum() > 0 and zeroed.mean() < 0.6


def test_waveform_ops_do_what_they_say() -> None:
    import torch

    x = torch.from_numpy(_clips())
    index = np.arange(6)

    def run(op: dict[str, object]) -> torch.Tensor:
        out, _ = _augmenter([op])(x, torch.zeros(6), seed=0, epoch=0, index=index)
        return out

    noisy = run({"op": "noise", "min_snr_db": 10, "max_snr_db": 10})
    snr = 10 * torch.log10(active_power(x) / ((noisy - x) ** 2).mean(dim=1))
    torch.testing.assert_close(snr, torch.full((6,), 10.0), atol=0.3, rtol=0)
    louder = run({"op": "gain", "low_db": 6, "high_db": 6})
    torch.testing.assert_close(louder, (x * 10 ** (6 / 20)).clamp(-1, 1))
    shifted = run({"op": "time_shift", "max_shift": 0.1})
    assert torch.equal(shifted.abs().sum(1) > 0, x.abs().sum(1) > 0)
    moved = [int(torch.argmax((s != 0).int())) - 1000 for s in shifted]
    assert all(abs(m) <= 400 for m in moved) and len(set(moved)) > 1
    faster = run({"op": "speed", "low": 1.25, "high": 1.25})  # 2000 samples → 1600
    assert int((faster != 0).sum(1).max()) in range(1590, 1611)


def test_policies_are_checked_for_audio() -> None:
    with pytest.raises(RecipeError, match="does not apply to audio"):
        build_augmenter(AugmentConfig.model_validate({"policy": [{"op": "hflip"}]}), "audio")
    with pytest.raises(RecipeError, match="does not apply to image"):
        build_augmenter(AugmentConfig.model_validate({"policy": [{"op": "gain"}]}), "image")
    with pytest.raises(ValueError, match="below"):
        AugmentConfig.model_validate(
            {"policy": [{"op": "noise", "min_snr_db": 20, "max_snr_db": 5}]}
        )


def test_preview_draws_spectrograms(tmp_path: Path) -> None:
    from scaledl.recipe import validate_recipe
    from scaledl.report.preview import preview_policy
    from tests.audio.conftest import fsdd_recipe

    recipe = validate_recipe(fsdd_recipe(augment={"policy": POLICY}))
    result = preview_policy(recipe, tmp_path / "p.png", samples=3, views=2)
    assert result.kind == "audio" and result.views == 2 and len(result.ops) == len(POLICY)
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
