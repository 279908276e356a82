"""The recipe's `train` section."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(20, ge=1, le=10_000)
    batch_size: int = Field(64, ge=1, description="global batch size")
    optimizer: Literal["adamw", "sgd"] = "adamw"
    lr: float = Field(3e-3, gt=0.0)
    weight_decay: float = Field(5e-4, ge=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0, description="SGD momentum (Nesterov)")
    schedule: Literal["cosine", "onecycle", "constant", "exponential"] = "cosine"
    lr_decay: float = Field(
        0.5, gt=0.0, le=1.0, description="exponential schedule: factor applied at each epoch end"
    )
    warmup_epochs: float = Field(0.0, ge=0.0, description="linear warm-up before the schedule")
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    loss: Literal["auto", "mse", "mae", "huber"] = Field(
        "auto",
        description="regression: the training loss on the standardised scale (auto = mse; mae "
        "is less pulled by outlying targets; huber is quadratic within huber_delta, linear "
        "beyond); classifiers always train on cross-entropy. Selection and reports stay on "
        "the task's metric (MSE)",
    )
    huber_delta: float = Field(
        1.0, gt=0.0, description="huber loss: where quadratic turns linear (standardised units)"
    )
    class_weights: Literal["none", "balanced"] | list[float] = Field(
        "none",
        description="classifiers: weight each class's loss (balanced: inversely to its share of "
        "the training rows; or one weight per class)",
    )
    threshold: Literal["argmax", "max_f1"] | float = Field(
        "argmax",
        description="binary classifiers: the decision threshold on the positive class's "
        "probability (argmax = 0.5; max_f1: chosen on the validation split; or a number), "
        "stored in the package and used by /predict and evaluation",
    )
    patience: int | None = Field(None, ge=1, description="early stop after N epochs without gain")
    grad_clip: float | None = Field(None, gt=0.0)
    threads: int | None = Field(
        None, ge=1, description="torch intra-op threads (default: all cores)"
    )
    eval_batch_size: int = Field(512, ge=1)
    ema_decay: float | None = Field(
        None,
        gt=0.0,
        lt=1.0,
        description="validate, keep and package an exponential moving average of the weights "
        "(e.g. 0.99; none: the weights themselves)",
    )
    data_workers: int | Literal["auto"] = Field(
        "auto",
        description="processes that build batches ahead of the step (0: the training process; "
        "auto: 0 for small in-memory splits, else one or more)",
    )
    prefetch: int | Literal["auto"] = Field(
        "auto",
        description="batches built ahead: per worker process, or by a background thread when "
        "data_workers is 0 (auto: 2 with workers, none without)",
    )
    time_budget_min: float | None = Field(
        None,
        gt=0.0,
        le=10_080.0,
        description="fit the schedule to this many minutes of training on this machine "
        "(epochs becomes the ceiling)",
    )

    @field_validator("data_workers", "prefetch")
    @classmethod
    def _small_count(cls, value: int | str) -> int | str:
        if isinstance(value, int) and not 0 <= value <= 64:
            raise ValueError("expected auto or a number from 0 to 64")
        return value
