"""The `maintain` stage's typed config: thresholds, fine-tune settings, rollout, overrides.

The CLI flags fill it and `--set section.key=value` reaches every field (e.g.
`--set finetune.epochs=2`, `--set optimize.time_budget_min=5`), validated like a recipe.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scaledl.errors import UsageError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DetectConfig(_Section):
    """When the live version needs an update (the monitor's offline check on the new data)."""

    alpha: float = Field(0.05, gt=0.0, lt=1.0, description="false-alarm rate of the drift check")
    max_accuracy_drop: float = Field(
        0.05, ge=0.0, le=1.0, description="allowed accuracy drop on the new data vs reference"
    )
    max_error_increase: float = Field(
        0.1,
        ge=0.0,
        le=10.0,
        description="regressors: allowed relative rise of the error on the new data vs reference",
    )
    force: bool = Field(False, description="retrain even when nothing is detected")
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

    policy: Literal["canary", "shadow"] = "canary"
    canary_weight: float = Field(0.1, gt=0.0, le=1.0, description="canary share of traffic")
    soak_seconds: float = Field(
        0.0, ge=0.0, description="serve live traffic this long before deciding"
    )
    request_rows: int = Field(64, ge=1, le=4096, description="labelled rows per infer request")


class DecideConfig(_Section):
    """The promotion rule (see `scaledl.maintain.decision`)."""

    min_gain: float = Field(
        0.01, ge=-1.0, le=1.0, description="new version − live, on the new held-out rows, at least"
    )
    max_regression: float = Field(
        0.02, ge=0.0, le=1.0, description="accuracy the new version may lose on the old test rows"
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


def build_config(values: dict[str, Any], overrides: list[str]) -> MaintainConfig:
    """Flag values ({section: {key: value}}) + `--set` items → a validated config."""
    from scaledl.errors import RecipeError
    from scaledl.recipe import apply_override

    raw: dict[str, Any] = {k: dict(v) for k, v in values.items()}
    for item in overrides:
        try:
            apply_override(raw, item)
        except RecipeError as exc:
            raise UsageError(exc.message) from None
    try:
        return MaintainConfig.model_validate(raw)
    except ValidationError as exc:
        raise UsageError(_explain(exc.errors()[0])) from None


def _explain(error: Any) -> str:
    loc = tuple(str(p) for p in error.get("loc", ()))
    where = ".".join(loc) or "config"
    if error.get("type") == "extra_forbidden":
        section = _section(loc[:-1])
        valid = ", ".join(section.model_fields) if section is not None else "?"
        return f"--set {where}: unknown key (valid here: {valid})"
    return f"{where} = {error.get('input')!r}: {error.get('msg')}"


def _section(loc: tuple[str, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] = MaintainConfig
    for part in loc:
        field = model.model_fields.get(part)
        annotation = field.annotation if field is not None else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model
