"""Fine-tuning after pruning or slimming, with knowledge distillation from the parent model.

The student learns from the teacher's logits softened by a temperature T (Hinton et al.):
    loss = α · T² · KL(softmax(teacher / T) ‖ softmax(student / T)) + (1 − α) · CE(student, y)
The T² factor keeps the soft term's gradients on the scale of the hard one. For regression the
soft term is the squared error to the teacher's output. Without a teacher it is a plain
fine-tune. The epoch with the best validation metric is kept (the foundation's Trainer).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    import torch

    from scaledl.contract import SpecBase
    from scaledl.data.augment import AugmentConfig
    from scaledl.data.dataset import DataSplits
    from scaledl.train.loop import TrainResult


class DistillConfig(BaseModel):
    """How to fine-tune a pruned or slimmed model (and how much to learn from its parent)."""

    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(5, ge=1, le=1000)
    lr: float = Field(1e-3, gt=0.0)
    temperature: float = Field(4.0, gt=0.0, description="softens teacher and student logits")
    alpha: float = Field(0.7, ge=0.0, le=1.0, description="weight of the distillation term")
    batch_size: int | None = Field(None, ge=1, description="default: the trainer's (64)")
    optimizer: Literal["adamw", "sgd"] = "adamw"
    weight_decay: float = Field(0.0, ge=0.0)
    threads: int | None = Field(None, ge=1, description="torch intra-op threads (default: all)")
    loss: Literal["auto", "mse", "mae", "huber"] = Field(
        "auto", description="regression: the loss the parent was trained on (train.loss)"
    )
    huber_delta: float = Field(1.0, gt=0.0)
    time_budget_s: float | None = Field(
        None,
        gt=0.0,
        description="stop by this many seconds of training; the schedule's end is fitted to it "
        "(epochs becomes the ceiling), as train.time_budget_min does",
    )
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto",
        description="autocast of the fine-tune (which runs on the CPU): auto and fp32 are fp32, "
        "bf16 is bf16 autocast (the search asks for it where it was measured to pay: see "
        "optimize.handlers.structure.finetune_precision)",
    )


LossFn = Callable[["torch.Tensor", "torch.Tensor", "torch.Tensor"], "torch.Tensor"]


def distillation_loss(
    teacher: torch.nn.Module, config: DistillConfig, task: str, error_scale: Any = None
) -> LossFn:
    """loss(out, y, x) mixing the teacher's soft targets (on the same normalized x) and y.

    Regression: both terms are the parent's training loss (`config.loss`: MSE unless the recipe
    chose another, on the `error_scale` when the model has one), against the teacher's output
    and against y."""
    import torch
    from torch.nn import functional

    from scaledl.train.tensors import loss_fn

    teacher.eval()
    answer = one_view(teacher)
    t, alpha = config.temperature, config.alpha
    error = loss_fn(
        "regression",
        error_scale=error_scale,
        regression_loss=config.loss,
        huber_delta=config.huber_delta,
    )

    def loss(out: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = answer(x).float()
        # Under bf16 autocast the logits arrive in bf16 (3 significant digits), and CPU autocast
        # keeps log_softmax in bf16: near the teacher, the KL term would be mostly rounding.
        out = out.float()
        if task == "regression":
            return alpha * error(out, target.reshape(out.shape)) + (1 - alpha) * error(out, y)
        soft = functional.kl_div(
            functional.log_softmax(out / t, dim=1),
            functional.log_softmax(target / t, dim=1),
            reduction="batchmean",
            log_target=True,
        )
        return alpha * t * t * soft + (1 - alpha) * functional.cross_entropy(out, y)

    return loss


def one_view(teacher: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """The teacher's answer on the very view the student is trained on.

    A CNN with `tta: flip` averages each image with its mirror in eval mode, which doubles the
    teacher's cost. The student learns one view at a time, and the teacher's answer on that
    view is the soft target for it (where the augmentation flips images, as cifar10-fast's
    does, the student meets both views anyway). On a 40 %-pruned cifar10-fast student this cut
    the 5-epoch fine-tune by 27 % (median of 3 seeds) at the same validation accuracy within
    noise (bench/distill_view.py → bench/results/distill_view.json)."""
    logits = getattr(teacher, "logits", None)
    if getattr(teacher, "tta_flip", False) and callable(logits):
        return logits
    return teacher


def finetune(
    student: torch.nn.Module,
    splits: DataSplits,
    preprocessing: SpecBase,
    *,
    teacher: torch.nn.Module | None = None,
    config: DistillConfig,
    seed: int = 0,
    task: str = "classification",
    augment: AugmentConfig | None = None,
) -> TrainResult:
    """Train `student` (in place) on `splits.train`; keep the best epoch on `splits.val`.

    `preprocessing` is the package's preprocessing (the student sees the same normalized
    inputs as its parent did). With a `teacher`, the loss distills its logits with
    `config.temperature` and weight `config.alpha`. Returns the Trainer's TrainResult (the
    student in eval mode with the best validation state, the per-epoch history); its `extra`
    holds the distillation settings.
    """
    from scaledl.config.train import TrainConfig
    from scaledl.data.augment import build_augmenter
    from scaledl.modalities import modality
    from scaledl.train.loop import Trainer

    settings: dict[str, Any] = {
        "epochs": config.epochs,
        "lr": config.lr,
        "optimizer": config.optimizer,
        "weight_decay": config.weight_decay,
        "schedule": "cosine",
    }
    if task == "regression":
        settings.update(loss=config.loss, huber_delta=config.huber_delta)
    for key in ("batch_size", "threads"):
        if getattr(config, key) is not None:
            settings[key] = getattr(config, key)
    if config.time_budget_s is not None:
        settings["time_budget_min"] = config.time_budget_s / 60.0
    kind = modality(splits.kind).augmentation_kind()
    augmenter = build_augmenter(augment, kind) if augment is not None else None
    trainer = Trainer(
        student,
        splits,
        TrainConfig(**settings),
        preprocessing,
        task=task,
        seed=seed,
        augmenter=augmenter,
        precision=config.precision,
        loss_override=(
            distillation_loss(teacher, config, task, _error_scale(preprocessing, task))
            if teacher is not None
            else None
        ),
    )
    result = trainer.fit()
    result.extra["distill"] = {**config.model_dump(), "teacher": teacher is not None}
    return result


def _error_scale(preprocessing: SpecBase, task: str) -> Any:
    if task != "regression":
        return None
    from scaledl.modalities import modality_of

    return modality_of(preprocessing).error_scale(preprocessing)
