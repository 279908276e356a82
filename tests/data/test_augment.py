"""Augmentation policies: per-sample reproducibility, round trips, bad input, mixing."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from scaledl.data.augment import OPS, AugmentConfig, build_augmenter
from scaledl.errors import ScaledlError
from scaledl.recipe import load_recipe, validate_recipe

IMAGE_POLICY = [
    {"op": "resized_crop", "scale": [0.3, 1.0]},
    {"op": "crop", "padding": 3},
    {"op": "hflip"},
    {"op": "vflip", "p": 0.2},
    {"op": "affine", "degrees": 20, "translate": 0.1, "scale": [0.8, 1.2], "shear": 10},
    {"op": "color_jitter", "hue": 0.1},
    {"op": "erasing", "p": 0.7},
    {"op": "randaugment", "n": 2, "magnitude": 12},
    {"op": "trivialaugment", "p": 0.5},
    {"op": "cutmix", "p": 0.5},
    {"op": "mixup", "alpha": 0.4, "p": 0.5},
]
SEQUENCE_POLICY = [
    {"op": "jitter", "sigma": 0.1},
    {"op": "scaling"},
    {"op": "feature_dropout", "rate": 0.2},
    {"op": "time_mask", "count": 2},
    {"op": "time_warp"},
    {"op": "mixup", "p": 0.5},
]


def _images(n: int = 24, c: int = 3, size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, c, size, size)).astype(np.uint8), rng.integers(0, 10, n)


def _augment(aug, x_raw, y, index, epoch=1):
    x = torch.from_numpy(x_raw.astype(np.float32)) / 255.0
    return aug(x, torch.from_numpy(y), seed=7, epoch=epoch, index=index)


def test_sample_output_is_the_same_whatever_batch_worker_or_rank() -> None:
    x_raw, y = _images()
    aug = build_augmenter(AugmentConfig(policy=IMAGE_POLICY), "image")
    aug.bind(x_raw, y, 1 / 255, 10)
    index = np.arange(len(y))
    whole, soft = _augment(aug, x_raw, y, index)
    assert soft is not None and torch.allclose(soft.sum(1), torch.ones(len(y)))
    # split like data-loader workers (shuffled chunks) and like ranks (contiguous shards)
    rng = np.random.default_rng(1)
    for parts in (np.array_split(rng.permutation(len(y)), 5), np.array_split(index, 3)):
        out_x, out_soft = torch.empty_like(whole), torch.empty_like(soft)
        for rows in parts:
            px, ps = _augment(aug, x_raw[rows], y[rows], index[rows])
            out_x[rows], out_soft[rows] = px, ps
        assert torch.equal(out_x, whole)
        assert torch.equal(out_soft, soft)


def test_each_sample_draws_its_own_parameters() -> None:
    x_raw, _ = _images(2)
    same = np.repeat(x_raw[:1], 8, axis=0)  # one image at 8 sample indices
    aug = build_augmenter(AugmentConfig(policy=IMAGE_POLICY[:9]), "image")
    out, _ = _augment(aug, same, np.zeros(8, dtype=np.int64), np.arange(8))
    distinct = {out[i].numpy().tobytes() for i in range(8)}
    assert len(distinct) == 8
    again, _ = _augment(aug, same, np.zeros(8, dtype=np.int64), np.arange(8))
    assert torch.equal(out, again)
    other_epoch, _ = _augment(aug, same, np.zeros(8, dtype=np.int64), np.arange(8), epoch=2)
    assert not torch.equal(out, other_epoch)


@pytest.mark.parametrize("name", sorted(n for n, c in OPS.items() if "image" in c.kinds))
def test_every_image_op_keeps_shape_and_range(name: str) -> None:
    x_raw, y = _images(6, c=3, size=12)
    aug = build_augmenter(AugmentConfig(policy=[{"op": name, "p": 1.0}]), "image")
    aug.bind(x_raw, y, 1 / 255, 10)
    out, soft = _augment(aug, x_raw, y, np.arange(6))
    assert out.shape == (6, 3, 12, 12) and out.dtype == torch.float32
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert (soft is not None) == OPS[name].mixing
    aug.bind(x_raw[:, :1], y, 1 / 255, 10)
    gray, _ = _augment(aug, x_raw[:, :1], y, np.arange(6))  # one-channel images work too
    assert gray.shape == (6, 1, 12, 12)


@pytest.mark.parametrize("kind", ["table", "sequence"])
def test_series_ops_are_per_sample_and_use_training_statistics(kind: str) -> None:
    rng = np.random.default_rng(0)
    shape = (20, 5) if kind == "table" else (20, 16, 3)
    x_raw = rng.normal(50.0, 10.0, shape).astype(np.float32)
    y = rng.integers(0, 3, 20)
    policy = [op for op in SEQUENCE_POLICY if kind in OPS[op["op"]].kinds]
    aug = build_augmenter(AugmentConfig(policy=policy), kind).bind(x_raw, y, 1.0, 3)
    x = torch.from_numpy(x_raw)
    out, soft = aug(x, torch.from_numpy(y), seed=0, epoch=0, index=np.arange(20))
    assert out.shape == x.shape and soft is not None
    assert not torch.equal(out, x)
    for i in (0, 7, 19):
        one, _ = aug(x[i : i + 1], torch.from_numpy(y[i : i + 1]), seed=0, epoch=0, index=[i])
        assert torch.equal(one[0], out[i])
    # jitter of 0.1 std on features of std 10 moves values by about 1, not by 0.1
    jitter = build_augmenter(AugmentConfig(policy=[{"op": "jitter", "sigma": 0.1}]), kind)
    moved, _ = jitter.bind(x_raw, y, 1.0, 3)(x, None, seed=0, epoch=0, index=np.arange(20))
    assert 0.5 < float((moved - x).abs().mean()) < 1.5


def test_mixing_partner_and_labels_are_deterministic_per_sample() -> None:
    x_raw, y = _images(30)
    aug = build_augmenter(AugmentConfig(policy=[{"op": "mixup", "alpha": 1.0}]), "image")
    aug.bind(x_raw, y, 1 / 255, 10)
    out, soft = _augment(aug, x_raw[:10], y[:10], np.arange(10))
    assert soft.shape == (10, 10)
    # every label weight sits on the sample's own class plus at most one partner class
    assert ((soft > 0).sum(1) <= 2).all()
    assert (soft[torch.arange(10), torch.from_numpy(y[:10])] > 0).all()
    one, one_soft = _augment(aug, x_raw[3:4], y[3:4], np.array([3]))
    assert torch.equal(one[0], out[3]) and torch.equal(one_soft[0], soft[3])
    unbound = build_augmenter(AugmentConfig(policy=[{"op": "cutmix"}]), "image")
    with pytest.raises(ScaledlError, match="bind"):
        _augment(unbound, x_raw[:2], y[:2], np.arange(2))
    with pytest.raises(ScaledlError, match="classification"):
        aug.bind(x_raw, y.astype(np.float32), 1 / 255, None)


def test_policy_round_trips_through_yaml_and_json_unchanged() -> None:
    for policy in (IMAGE_POLICY, SEQUENCE_POLICY):
        config = AugmentConfig(policy=policy)
        dumped = config.model_dump(mode="json")
        from_yaml = AugmentConfig.model_validate(yaml.safe_load(yaml.safe_dump(dumped)))
        from_json = AugmentConfig.model_validate_json(config.model_dump_json())
        assert from_yaml == config and from_json == config
        assert (
            from_yaml.model_dump(mode="json") == dumped == json.loads(from_json.model_dump_json())
        )
        assert [op["op"] for op in dumped["policy"]] == [op["op"] for op in policy]
    recipe = validate_recipe({"augment": {"policy": IMAGE_POLICY}})
    assert validate_recipe(yaml.safe_load(recipe.to_yaml())).digest() == recipe.digest()


def test_shorthand_reads_as_ops() -> None:
    config = AugmentConfig.model_validate({"crop_padding": 2, "hflip": True})
    assert [op.op for op in config.policy] == ["crop", "hflip"]
    assert config.policy[0].padding == 2  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ([{"op": "blur"}], "unknown augmentation 'blur'"),
        ([{"op": "crop", "padding": 500}], "padding"),
        ([{"op": "hflip", "p": 1.5}], "field 'p': Input should be less than or equal to 1"),
        ([{"op": "affine", "angle": 3}], "unknown key 'angle' (valid keys: op, p, degrees"),
        ([{"op": "randaugment", "magnitude": 31}], "magnitude"),
        ([{"op": "resized_crop", "scale": [0.5, 2.0]}], "scale must be"),
        ([{"op": "mixup"}, {"op": "hflip"}], "must be the last"),
    ],
)
def test_bad_policies_name_the_problem_and_what_is_valid(policy: list, expected: str) -> None:
    with pytest.raises(ScaledlError) as info:
        validate_recipe({"augment": {"policy": policy}})
    assert info.value.exit_code == 2
    assert expected in info.value.message
    assert "valid" in info.value.message or "parameters of" in info.value.message


def test_op_for_another_kind_of_data_is_refused() -> None:
    with pytest.raises(ScaledlError, match="does not apply to image data"):
        build_augmenter(AugmentConfig(policy=[{"op": "time_warp"}]), "image")
    with pytest.raises(ScaledlError, match="ops for table data"):
        build_augmenter(AugmentConfig(policy=[{"op": "cutmix"}]), "table")


def test_builtin_recipe_uses_a_policy() -> None:
    recipe = load_recipe(None)
    assert [op.op for op in recipe.augment.policy] == ["crop"]
