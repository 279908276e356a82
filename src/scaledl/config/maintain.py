"""The `maintain` stage's typed config: thresholds, fine-tune settings, rollout, overrides.

The CLI's flags are built from some of its fields, `--config FILE` (YAML) and `--set
section.key=value` reach every field (e.g. `--set finetune.epochs=2`, `--set
optimize.time_budget_min=5`); the result is validated like a recipe.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from scaledl.config.overrides import apply_override
from scaledl.errors import UsageError
from scaledl.validation import Names, validate


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DetectConfig(_Section):
    """When the live version needs an update (the monitor's offline check on the new data)."""

    alpha: float = Field(0.05, gt=0.0, lt=1.0, description="false-alarm rate of the drift check")
    max_accuracy_drop: float = Field(
        0.05,
        ge=0.0,
        le=1.0,
        description="retrain when accuracy on the new data is this far below the reference",
    )
    force: bool = Field(
        False, description="retrain even when no drift or accuracy drop is detected"
    )
    max_error_increase: float = Field(
        0.1,
        ge=0.0,
        le=10.0,
        description="regressors: allowed relative rise of the error on the new data vs reference",
    )
    seed: int = Field(0, description="randomness of the drift tests (tie-breaks, MMD)")


class SplitConfig(_Section):
    """How the new data is split (deterministically, by class) into train / val / test; a time
    series by time: its last `test_fraction` is the newest period the versions are judged on."""

    val_fraction: float = Field(0.1, gt=0.0, lt=0.9)
    test_fraction: float = Field(0.25, gt=0.0, lt=0.9)
    seed: int = 0


class FinetuneConfig(_Section):
    """Fine-tuning the live model's weights on old + new data."""

    epochs: int = Field(5, ge=1, le=1000)
    lr: float = Field(1e-3, gt=0.0)
    batch_size: int | None = Field(None, ge=1, description="default: the trainer's (64)")
    optimizer: Literal["adamw", "sgd"] = "adamw"
    weight_decay: float = Field(0.0, ge=0.0)
    threads: int | None = Field(None, ge=1, description="torch intra-op threads (default: all)")
    augment: bool = Field(True, description="reuse the augmentation of the model's recipe")
    exporter: Literal["parent", "auto", "dynamo", "legacy"] = Field(
        "parent", description="ONNX exporter (parent: the one the model was exported with)"
    )
    seed: int = 0


class RolloutConfig(_Section):
    """How the new version meets traffic on a running server."""

    policy: Literal["canary", "shadow"] = Field(
        "canary", description="how the new version meets traffic: canary | shadow"
    )
    canary_weight: float = Field(
        0.1, gt=0.0, le=1.0, description="share of the model's traffic the canary gets, in (0, 1]"
    )
    soak_seconds: float = Field(
        0.0, ge=0.0, description="let the canary/shadow serve live traffic this long first"
    )
    request_rows: int = Field(64, ge=1, le=4096, description="labelled rows per infer request")


class DecideConfig(_Section):
    """The promotion rule (see `scaledl.maintain.decision`)."""

    min_gain: float = Field(
        0.01,
        ge=-1.0,
        le=1.0,
        description="promote only if the new version beats the live one by this on the new "
        "held-out rows (0: as good is enough)",
    )
    max_regression: float = Field(
        0.02,
        ge=0.0,
        le=1.0,
        description="promote only if the new version loses at most this on the old test rows",
    )
    min_error_reduction: float = Field(
        0.01,
        ge=-1.0,
        le=1.0,
        description="regressors: relative error reduction on the new held-out rows, at least",
    )
    max_error_increase: float = Field(
        0.02,
        ge=0.0,
        le=10.0,
        description="regressors: relative error rise allowed on the reference rows",
    )


class MaintainConfig(_Section):
    detect: DetectConfig = Field(default_factory=DetectConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    finetune: FinetuneConfig = Field(default_factory=FinetuneConfig)
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    decide: DecideConfig = Field(default_factory=DecideConfig)
    optimize: dict[str, Any] = Field(
        default_factory=dict,
        description="overrides of the optimization budget recorded in the lineage",
    )


def build_config(
    values: dict[str, Any], overrides: list[str], names: Names | None = None
) -> MaintainConfig:
    """Flag or file values ({section: {key: value}}) + `--set` items → a validated config.

    `names` maps a field to the flag it came from, so an error names what the user typed.
    """
    raw: dict[str, Any] = {k: dict(v) if isinstance(v, dict) else v for k, v in values.items()}
    for item in overrides:
        apply_override(raw, item, UsageError)
    return validate(MaintainConfig, raw, "maintain settings", UsageError, names)
