"""PyTorch-level methods: structured and unstructured pruning, slimming, distillation fine-tune.

The primitives live in scaledl.optimize.prune / .distill / .slim; here each becomes a typed config
(one application), a search space (what the search tries) and a handler. Ladders in the spaces
go from mild to aggressive: the search walks them by bisection on the accuracy budget.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from scaledl.optimize.candidate import Candidate
from scaledl.optimize.context import SearchContext
from scaledl.optimize.registry import MethodConfig, MethodSkipped, MethodSpace, register_method
from scaledl.preprocess import apply_preprocessing


def _clone(candidate: Candidate) -> Any:
    return copy.deepcopy(candidate.module).eval()


# -- structured pruning ----------------------------------------------------------------------------


class PruneConfig(MethodConfig):
    ratio: float = Field(0.5, gt=0.0, lt=1.0)
    importance: Literal["magnitude", "taylor"] = "magnitude"
    round_to: int | None = Field(8, ge=1)
    steps: int = Field(1, ge=1)
    global_ranking: bool = True
    recalibrate_bn: bool = True
    calibration_samples: int = Field(256, ge=8)

    def tag(self) -> str:
        return f"prune:{self.ratio:g}" + (":taylor" if self.importance == "taylor" else "")


class PruneSpace(MethodSpace):
    ratios: list[float] = Field(
        default_factory=lambda: [0.2, 0.3, 0.4, 0.5, 0.6, 0.7],
        description="tried by bisection from the middle (3 jobs for 6 ratios)",
    )
    importance: Literal["magnitude", "taylor"] = "magnitude"
    round_to: int | None = Field(8, ge=1, description="channel counts rounded to multiples")
    steps: int = Field(1, ge=1, description="iterative pruning steps")
    global_ranking: bool = True
    recalibrate_bn: bool = Field(True, description="re-estimate batch-norm statistics after")

    @field_validator("ratios")
    @classmethod
    def _ratios(cls, value: list[float]) -> list[float]:
        if not value or not all(0.0 < r < 1.0 for r in value):
            raise ValueError("ratios must be a non-empty list of values in (0, 1)")
        return sorted(set(value))

    def unavailable(self, ctx: SearchContext) -> str | None:
        from scaledl.models.registry import is_forecaster

        spec = ctx.spec
        if spec is not None and is_forecaster(spec.frontend):
            return (
                "structured pruning rebuilds a family's own layers; a forecaster is built "
                "around its family by the series front-end (slimming and quantization apply)"
            )
        return None

    def configs(self, ctx: SearchContext) -> list[MethodConfig]:
        return [
            PruneConfig(
                ratio=r,
                importance=self.importance,
                round_to=self.round_to,
                steps=self.steps,
                global_ranking=self.global_ranking,
                recalibrate_bn=self.recalibrate_bn,
            )
            for r in self.ratios
        ]


@register_method("prune", config=PruneConfig, space=PruneSpace, kind="structure")
def prune(candidate: Candidate, config: PruneConfig, ctx: SearchContext) -> Candidate:
    """Structured pruning: removes channels, neurons, heads, hidden units (global ranking)."""
    from scaledl.optimize.prune import prune_structured

    # Training rows (never val/test): Taylor gradients and the batch-norm re-estimation.
    index = ctx.calibration_index(config.calibration_samples)
    x = apply_preprocessing(ctx.splits.train.x[index], ctx.preprocessing)
    calibration: Any = (x, ctx.splits.train.y[index])
    result = prune_structured(
        _clone(candidate),
        candidate.spec,
        config.ratio,
        importance=config.importance,
        round_to=config.round_to or 1,
        steps=config.steps,
        calibration=calibration,
        global_ranking=config.global_ranking,
        recalibrate_bn=config.recalibrate_bn,
    )
    if result.params_after >= result.params_before:
        raise MethodSkipped(f"nothing prunable at ratio {config.ratio:g} ({result.skipped})")
    child = candidate.derive(
        config.tag(),
        module=result.model,
        spec=result.spec,
        onnx=None,
        structure={
            "removed": dict(result.removed),
            "params_before": result.params_before,
            "params_after": result.params_after,
            "macs_before": result.macs_before,
            "macs_after": result.macs_after,
        },
    )
    child.notes.extend(f"not pruned: {name}" for name in result.skipped)
    return child


# -- unstructured pruning --------------------------------------------------------------------------


class UnstructuredConfig(MethodConfig):
    sparsity: float = Field(0.5, gt=0.0, lt=1.0)

    def tag(self) -> str:
        return f"sparsity:{self.sparsity:g}"


class UnstructuredSpace(MethodSpace):
    sparsities: list[float] = Field(default_factory=lambda: [0.5, 0.8])

    def configs(self, ctx: SearchContext) -> list[MethodConfig]:
        return [UnstructuredConfig(sparsity=s) for s in sorted(set(self.sparsities))]


@register_method(
    "unstructured",
    config=UnstructuredConfig,
    space=UnstructuredSpace,
    kind="structure",
    default=False,
    finetune="none",
)
def unstructured(candidate: Candidate, config: UnstructuredConfig, ctx: SearchContext) -> Candidate:
    """Unstructured magnitude pruning: zeros weights; smaller zipped file, no speed-up on ORT."""
    from scaledl.optimize.prune import prune_unstructured

    model, info = prune_unstructured(_clone(candidate), config.sparsity)
    child = candidate.derive(config.tag(), module=model, onnx=None, structure=dict(info))
    child.notes.append(
        "zeros are stored densely: no speed-up and no smaller raw file; see zipped size"
    )
    return child


# -- slimming --------------------------------------------------------------------------------------


class SlimConfig(MethodConfig):
    width: float = Field(1.0, gt=0.0, le=1.0)
    depth: float = Field(1.0, gt=0.0, le=1.0)
    kernel_size: int | None = Field(None, ge=1)
    inherit: bool = True

    def tag(self) -> str:
        parts = ["slim"]
        if self.width != 1.0:
            parts.append(f"w{self.width:g}")
        if self.depth != 1.0:
            parts.append(f"d{self.depth:g}")
        if self.kernel_size is not None:
            parts.append(f"k{self.kernel_size}")
        return ":".join(parts)


class SlimVariant(BaseModel):
    model_config = ConfigDict(extra="forbid")

    width: float = Field(1.0, gt=0.0, le=1.0)
    depth: float = Field(1.0, gt=0.0, le=1.0)
    kernel_size: int | None = None


class SlimSpace(MethodSpace):
    variants: list[SlimVariant] = Field(
        default_factory=lambda: [
            SlimVariant(width=0.75),
            SlimVariant(depth=0.5),
            SlimVariant(width=0.5),
            SlimVariant(width=0.5, depth=0.5),
        ],
        description="mild → aggressive",
    )
    inherit: bool = Field(
        True, description="start from the parent's tensors where name and shape still match"
    )

    def configs(self, ctx: SearchContext) -> list[MethodConfig]:
        return [SlimConfig(**v.model_dump(), inherit=self.inherit) for v in self.variants]


@register_method("slim", config=SlimConfig, space=SlimSpace, kind="structure", finetune="scratch")
def slim(candidate: Candidate, config: SlimConfig, ctx: SearchContext) -> Candidate:
    """Slimmer architecture of the same family (width, depth, kernel), trained by distillation."""
    import torch

    from scaledl.errors import ModelError
    from scaledl.optimize.slim import slim_spec

    try:
        spec = slim_spec(candidate.spec, config.width, config.depth, config.kernel_size)
    except ModelError as exc:  # e.g. depth 0.5 of a one-layer model
        raise MethodSkipped(str(exc)) from None
    if spec.to_json() == candidate.spec.to_json():
        raise MethodSkipped(f"{config.tag()} leaves the architecture unchanged")
    torch.manual_seed(ctx.config.seed)
    student = spec.build().eval()
    inherited = _inherit(student, candidate.module) if config.inherit else 0
    child = candidate.derive(
        config.tag(),
        module=student,
        spec=spec,
        onnx=None,
        structure={"from_scratch": True, "inherited_tensors": inherited},
    )
    if inherited:
        child.notes.append(f"{inherited} tensors inherited from the parent (same name and shape)")
    return child


def _inherit(student: Any, parent: Any) -> int:
    """Copy the parent's tensors into the student where name and shape match.

    Depth slimming keeps the first layers of each stage/stack, so those (and the embedding,
    norms and head when widths are unchanged) start trained instead of random.
    """
    import torch

    source = parent.state_dict()
    target = student.state_dict()
    same = {
        k: v for k, v in source.items() if k in target and tuple(target[k].shape) == tuple(v.shape)
    }
    with torch.no_grad():
        student.load_state_dict({**target, **same})
    return sum(1 for k in same if not k.endswith("num_batches_tracked"))


# -- distillation fine-tune ------------------------------------------------------------------------


class DistillStep(MethodConfig):
    epochs: int = Field(5, ge=1)
    lr: float = Field(1e-3, gt=0.0)
    temperature: float = Field(4.0, gt=0.0)
    alpha: float = Field(0.7, ge=0.0, le=1.0)
    batch_size: int | None = Field(None, ge=1)
    teacher: bool = True
    time_budget_s: float | None = Field(None, gt=0.0)  # the slot the search admitted it into
    precision: Literal["auto", "fp32", "bf16"] = "auto"

    def tag(self) -> str:
        return "distill" if self.teacher else "finetune"


class DistillSpace(MethodSpace):
    epochs: int = Field(
        5, ge=1, description="fine-tune epochs after pruning (default: 5, at most the parent's)"
    )
    slim_epochs: int | None = Field(
        None,
        ge=1,
        description="epochs for a slimmed model (default: half the parent's, ≥ 10, at most "
        "the parent's)",
    )
    lr: float = Field(1e-3, gt=0.0)
    slim_lr: float = Field(3e-3, gt=0.0, description="learning rate for slimmed models")
    temperature: float = Field(4.0, gt=0.0)
    alpha: float = Field(0.7, ge=0.0, le=1.0)
    batch_size: int | None = Field(None, ge=1)
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto",
        description="fine-tune autocast; auto: bf16 for an image CNN classifier trained in bf16 "
        "on a CPU with bf16 units (AVX512-BF16/AMX), else fp32 (see finetune_precision)",
    )

    def configs(self, ctx: SearchContext) -> list[MethodConfig]:
        return [self.step(from_scratch=False)]

    def resolve(self, ctx: SearchContext) -> DistillSpace:
        """Fit the epochs left at their defaults to the parent's training: a slimmed model
        needs most of it (half, at least 10), and neither fine-tune runs more epochs than the
        parent itself was trained for. On a large data set a parent trains in few epochs (the
        SST-2 GRU: 2 epochs over 60,000 sentences), and 5 or 10 epochs of fine-tuning with a
        teacher would cost several times its whole training, so the search's time would never
        reach them."""
        trained = ctx.parent.manifest.metrics.epochs_run or 0
        update: dict[str, int | str] = {}
        if self.slim_epochs is None:
            slim = max(10, trained // 2)
            update["slim_epochs"] = min(slim, trained) if trained > 0 else slim
        if "epochs" not in self.model_fields_set and trained > 0:
            update["epochs"] = min(self.epochs, trained)
        if self.precision == "auto":
            update["precision"] = finetune_precision(ctx)
        return self.model_copy(update=update) if update else self

    def step(self, *, from_scratch: bool, teacher: bool = True) -> DistillStep:
        return DistillStep(
            epochs=(self.slim_epochs or 10) if from_scratch else self.epochs,
            lr=self.slim_lr if from_scratch else self.lr,
            temperature=self.temperature,
            alpha=self.alpha,
            batch_size=self.batch_size,
            teacher=teacher,
            precision=self.precision,
        )


def finetune_precision(ctx: SearchContext) -> Literal["fp32", "bf16"]:
    """Fine-tune the way the parent was trained where that was measured to pay: an image CNN
    classifier trained under bf16 autocast (its utilisation record) is fine-tuned in bf16 on a
    CPU with bf16 units, where its distillation epochs ran 1.48x faster at the same validation
    accuracy (bench/results/distill_precision.json; training: 1.7x, train-bf16.json).
    Everything else stays fp32: emulated bf16 is slower, and on recurrent, tabular or
    regression models the gain was never measured (their parents trained on a GPU are in bf16
    by default, not by choice)."""
    utilisation = ctx.parent.manifest.metrics.get("utilisation") or {}
    trained_bf16 = isinstance(utilisation, dict) and utilisation.get("dtype") == "bf16"
    measured = (
        ctx.task == "classification"
        and ctx.preprocessing.kind == "image"
        and getattr(ctx.spec, "family", None) == "cnn"
    )
    return "bf16" if trained_bf16 and measured and ctx.cpu.has_bf16 else "fp32"


@register_method("distill", config=DistillStep, space=DistillSpace, kind="finetune")
def distill(candidate: Candidate, config: DistillStep, ctx: SearchContext) -> Candidate:
    """Fine-tune after pruning/slimming, learning the parent's temperature-softened logits."""
    from scaledl.optimize.distill import DistillConfig, finetune

    settings = config.model_dump(exclude={"teacher"})
    result = finetune(
        _clone(candidate),
        ctx.finetune_splits(),
        ctx.preprocessing,
        teacher=ctx.teacher if config.teacher else None,
        config=DistillConfig(**settings, **ctx.train_loss),
        seed=ctx.config.seed,
        task=ctx.task,
        augment=ctx.augment,
    )
    child = candidate.derive(config.tag(), module=result.model.eval(), onnx=None)
    child.structure = {**candidate.structure, "finetune_epochs": len(result.history)}
    if result.extra.get("precision") == "bf16":
        child.notes.append("fine-tuned under bf16 autocast (the parent's precision)")
    return child
