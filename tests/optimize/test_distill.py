"""Distillation: a 50%-pruned digits CNN gets its accuracy back in a few epochs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from scaledl.config.train import TrainConfig
from scaledl.contract import SpecBase
from scaledl.data import DataConfig
from scaledl.data.dataset import ArraySet, DataSplits
from scaledl.metrics import evaluate_outputs
from scaledl.modalities import load_splits, modality_of
from scaledl.models import ModelSpec
from scaledl.optimize.distill import DistillConfig, distillation_loss, finetune
from scaledl.optimize.prune import prune_structured
from scaledl.preprocess import fit_preprocessing
from scaledl.train.loop import Trainer
from scaledl.train.tensors import predict_torch
from tests.optimize.prune_cases import one_thread


@pytest.fixture(autouse=True)
def _single_thread() -> Iterator[None]:
    yield from one_thread()


def accuracy(model: torch.nn.Module, data: ArraySet, preprocessing: SpecBase) -> float:
    outputs = predict_torch(
        model, data.x, modality_of(preprocessing).batch_transform(preprocessing)
    )
    return evaluate_outputs(outputs, data.y, "classification")["accuracy"]


@pytest.mark.slow
def test_pruned_digits_cnn_recovers_with_its_teacher() -> None:
    splits = load_splits(DataConfig(source="digits"), seed=0)
    pre = fit_preprocessing(splits)
    spec = ModelSpec("cnn", [1, 8, 8], 10, {"channels": [16, 32], "depth": 2})
    torch.manual_seed(0)
    config = TrainConfig(epochs=8, batch_size=32, lr=0.005)
    teacher = Trainer(spec.build(), splits, config, pre).fit().model
    teacher_acc = accuracy(teacher, splits.test, pre)
    assert teacher_acc > 0.95

    pruned = prune_structured(teacher, spec, 0.5)
    assert pruned.spec.knobs["widths"] == [[8, 8], [16, 16]]
    dropped = accuracy(pruned.model, splits.test, pre)
    assert dropped < teacher_acc - 0.05
    x_cal = modality_of(pre).batch_transform(pre)(splits.train.x[:512])
    calibration = (x_cal, torch.from_numpy(splits.train.y[:512]))
    recalibrated = prune_structured(teacher, spec, 0.5, calibration=calibration)
    assert accuracy(recalibrated.model, splits.test, pre) > dropped + 0.15

    distill = DistillConfig(epochs=6, lr=5e-3, batch_size=32)
    result = finetune(recalibrated.model, splits, pre, teacher=teacher, config=distill)
    recovered = accuracy(result.model, splits.test, pre)
    # 359 test images: a point is under 4 of them
    assert recovered >= teacher_acc - 0.02, (teacher_acc, dropped, recovered)
    assert result.extra["distill"]["teacher"] is True and len(result.history) == 6
    assert not result.model.training


def test_distillation_loss_is_hinton_kd() -> None:
    teacher = torch.nn.Linear(4, 3)
    x, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 1, 0])
    out = torch.randn(5, 3)
    config = DistillConfig(temperature=2.0, alpha=0.25)
    loss = distillation_loss(teacher, config, "classification")(out, y, x)
    with torch.no_grad():
        p_t = torch.softmax(teacher(x) / 2.0, dim=1)
    log_p_s = torch.log_softmax(out / 2.0, dim=1)
    kl = (p_t * (p_t.log() - log_p_s)).sum(1).mean()
    expected = 0.25 * 4.0 * kl + 0.75 * torch.nn.functional.cross_entropy(out, y)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_a_teacher_with_a_mirrored_view_answers_on_the_students_own_view() -> None:
    """The flip-averaging teacher (cifar10-fast's `tta: flip`) is asked for its plain logits:
    the student trains on one view, and the mirror would double the teacher's cost."""
    from scaledl.models import create_model

    torch.manual_seed(0)
    teacher = create_model("cnn", (3, 8, 8), 4, channels=[8, 8], tta="flip").eval()
    with torch.no_grad():
        teacher.head.weight.mul_(100.0)  # untrained logits barely differ between images
    x, y = torch.randn(6, 3, 8, 8), torch.tensor([0, 1, 2, 3, 0, 1])
    out = torch.randn(6, 4)
    config = DistillConfig(temperature=2.0, alpha=1.0)

    def kd(target: torch.Tensor) -> float:
        p_t = torch.softmax(target / 2.0, dim=1)
        log_p_s = torch.log_softmax(out / 2.0, dim=1)
        return float(4.0 * (p_t * (p_t.log() - log_p_s)).sum(1).mean())

    with torch.no_grad():
        plain, averaged = teacher.logits(x), teacher(x)
    assert not torch.allclose(plain, averaged)  # the mirror changes the answer here
    loss = distillation_loss(teacher, config, "classification")(out, y, x).item()
    assert loss == pytest.approx(kd(plain), rel=1e-5)
    assert abs(loss - kd(averaged)) > 1e-3
    assert teacher.tta_flip and not teacher.training  # the served model is left as it was
    with torch.no_grad():
        assert torch.equal(teacher(x), averaged)


def test_regression_student_learns_from_teacher_and_targets() -> None:
    rng = np.random.default_rng(0)

    def make(n: int) -> ArraySet:
        x = rng.normal(size=(n, 6)).astype(np.float32)
        return ArraySet(x, (x @ np.arange(6, dtype=np.float32)).astype(np.float32))

    splits = DataSplits(make(256), make(64), make(64), "table", None, 1.0, "synthetic", "test")
    pre = fit_preprocessing(splits)
    spec = ModelSpec("mlp", [6], 1, {"hidden": [32]})
    torch.manual_seed(0)
    teacher = spec.build().eval()
    student = ModelSpec("mlp", [6], 1, {"hidden": [8]}).build()
    config = DistillConfig(epochs=4, lr=1e-2, alpha=0.5, batch_size=32)
    result = finetune(student, splits, pre, teacher=teacher, config=config, task="regression")
    losses = [h["val_loss"] for h in result.history]
    assert all(np.isfinite(losses)) and min(losses) < losses[0]
    plain = finetune(
        ModelSpec("mlp", [6], 1, {"hidden": [8]}).build(),
        splits,
        pre,
        config=DistillConfig(epochs=1),
        task="regression",
    )
    assert plain.extra["distill"]["teacher"] is False


def test_config_rejects_unknown_keys() -> None:
    with pytest.raises(ValidationError):
        DistillConfig.model_validate({"epochs": 2, "temprature": 3.0})


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (None, (4, 4)),  # the digits package trained 4 epochs: 5 and 10 come down to 4
        ({"epochs": 6, "slim_epochs": 12}, (6, 12)),  # what the user sets stands
    ],
)
def test_fine_tunes_never_outlast_the_parents_training_unless_asked(
    digits_package: Path,
    settings: dict[str, int] | None,
    expected: tuple[int, int],
) -> None:
    from scaledl.config.optimize import OptimizeConfig
    from scaledl.optimize.context import build_context
    from scaledl.optimize.search import Search

    config = OptimizeConfig(methods=["prune", "distill"], settings={"distill": settings or {}})
    ctx = build_context(digits_package, config)
    assert ctx.parent.manifest.metrics.epochs_run == 4
    space: Any = Search(ctx).spaces["distill"]
    assert (space.epochs, space.slim_epochs) == expected
    assert space.step(from_scratch=False).epochs == expected[0]
    assert space.step(from_scratch=True).epochs == expected[1]


@pytest.mark.parametrize(
    ("parent_dtype", "flags", "expected"),
    [
        ("fp32", {"avx512_bf16"}, "fp32"),  # the parent trained in fp32: so does its fine-tune
        ("bf16", {"avx512_bf16"}, "bf16"),  # bf16 parent, bf16 units: follow the parent
        ("bf16", {"amx_bf16"}, "bf16"),
        ("bf16", {"avx2", "avx512_vnni"}, "fp32"),  # no bf16 units: emulated bf16 is slower
    ],
)
def test_the_fine_tune_follows_the_parents_precision_where_the_cpu_has_bf16(
    digits_package: Path, parent_dtype: str, flags: set[str], expected: str
) -> None:
    import dataclasses

    from scaledl.config.optimize import OptimizeConfig
    from scaledl.optimize.context import build_context
    from scaledl.optimize.handlers.structure import DistillSpace

    ctx = build_context(digits_package, OptimizeConfig(methods=["prune", "distill"]))
    assert (ctx.spec.family, ctx.preprocessing.kind, ctx.task) == ("cnn", "image", "classification")
    ctx.parent.manifest.metrics.utilisation = {"dtype": parent_dtype}
    ctx.cpu = dataclasses.replace(ctx.cpu, flags=frozenset(flags))
    assert DistillSpace().resolve(ctx).step(from_scratch=False).precision == expected
    # what the user sets stands
    chosen = DistillSpace(precision="fp32").resolve(ctx)
    assert chosen.step(from_scratch=True).precision == "fp32"
    # only where bf16 fine-tuning was measured to pay (image CNN classifiers)
    ctx.spec = dataclasses.replace(ctx.spec, family="mlp")
    assert DistillSpace().resolve(ctx).precision == "fp32"


@pytest.mark.parametrize(
    "utilisation", ["bf16", ["bf16"], {"dtype": ["bf16"]}, {"dtype": 16}, None]
)
def test_a_malformed_utilisation_record_in_the_package_means_fp32(
    digits_package: Path, utilisation: object
) -> None:
    """The parent's manifest is a package file: whatever its utilisation record holds, the
    fine-tune's precision is fp32 unless it says exactly dtype "bf16"."""
    import dataclasses

    from scaledl.config.optimize import OptimizeConfig
    from scaledl.optimize.context import build_context
    from scaledl.optimize.handlers.structure import finetune_precision

    ctx = build_context(digits_package, OptimizeConfig(methods=["prune", "distill"]))
    ctx.cpu = dataclasses.replace(ctx.cpu, flags=frozenset({"avx512_bf16"}))
    ctx.parent.manifest.metrics.utilisation = utilisation
    assert finetune_precision(ctx) == "fp32"


def test_a_bf16_fine_tune_runs_under_autocast_and_still_learns_from_its_teacher() -> None:
    splits = load_splits(DataConfig(source="digits"), seed=0)
    pre = fit_preprocessing(splits)
    spec = ModelSpec("mlp", [1, 8, 8], 10, {"hidden": [32]})
    torch.manual_seed(0)
    teacher = Trainer(spec.build(), splits, TrainConfig(epochs=4, lr=1e-2), pre).fit().model
    config = DistillConfig(epochs=3, lr=1e-2, batch_size=64, precision="bf16")
    result = finetune(spec.build(), splits, pre, teacher=teacher, config=config)
    assert result.extra["precision"] == "bf16"
    assert result.extra["distill"]["precision"] == "bf16"
    # the weights stay fp32 (autocast only): the package's graph is exported from them
    assert all(p.dtype == torch.float32 for p in result.model.parameters())
    assert accuracy(result.model, splits.test, pre) > 0.85


def test_the_distillation_loss_is_computed_in_fp32_under_bf16_autocast() -> None:
    """CPU autocast keeps log_softmax in bf16: near the teacher, the KL term computed from
    bf16 log-probabilities was mostly rounding (40x too small here); the loss casts the logits
    up first, so it matches the fp32 loss on the same bf16-rounded logits."""
    torch.manual_seed(0)
    x = torch.randn(256, 64)
    teacher, student = torch.nn.Linear(64, 10), torch.nn.Linear(64, 10)
    with torch.no_grad():
        student.weight.copy_(teacher.weight + 0.01 * torch.randn_like(teacher.weight))
        student.bias.copy_(teacher.bias)
    loss = distillation_loss(teacher, DistillConfig(alpha=1.0), "classification")
    y = torch.zeros(256, dtype=torch.long)
    with torch.no_grad():
        exact = float(loss(student(x), y, x))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            value = float(loss(student(x), y, x))
    assert exact > 0
    assert abs(value - exact) < 0.1 * exact, (value, exact)
