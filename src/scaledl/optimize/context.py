"""Everything the methods of one search share: the parent, its data, and the target."""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from scaledl.bench.cpu import CpuInfo, cpu_info
from scaledl.config.optimize import OptimizeConfig
from scaledl.contract import SpecBase
from scaledl.data.dataset import DataSplits
from scaledl.errors import UsageError
from scaledl.export.runtime import package_session
from scaledl.package import RECIPE, SAMPLE, Package, open_package
from scaledl.package_files import read_npz
from scaledl.preprocess import apply_preprocessing

if TYPE_CHECKING:
    from scaledl.monitor.profile import InputReference

log = logging.getLogger(__name__)
TARGETS = {"cpu": "ONNX Runtime CPUExecutionProvider on this machine"}


@dataclass
class SearchContext:
    parent: Package
    config: OptimizeConfig
    splits: DataSplits
    preprocessing: SpecBase
    task: str
    x_val: np.ndarray
    x_test: np.ndarray
    example_raw: np.ndarray  # kept in every candidate's sample.npz
    example: np.ndarray  # the same, normalized: export parity inputs
    teacher: Any = None  # the parent's nn.Module when it has weights
    spec: Any = None  # the parent's ModelSpec
    augment: Any = None  # the parent's AugmentConfig, reused when fine-tuning
    train_loss: dict[str, Any] = field(default_factory=dict)  # the parent's regression loss
    cpu: CpuInfo = field(default_factory=cpu_info)
    started: float = field(default_factory=time.monotonic)
    data_label: str = ""
    _finetune: DataSplits | None = field(default=None, repr=False)
    _profile_inputs: InputReference | None = field(default=None, repr=False)

    @property
    def has_weights(self) -> bool:
        return self.teacher is not None

    @property
    def deadline(self) -> float:
        return self.started + self.config.time_budget_min * 60.0

    def seconds_left(self) -> float:
        return self.deadline - time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def exporter(self) -> str:
        if self.config.exporter != "parent":
            return self.config.exporter
        return self.parent.manifest.export.exporter

    @property
    def opset(self) -> int:
        return self.parent.manifest.export.opset

    @property
    def error_scale(self) -> Any:
        """Regressors: the per-target scale errors are measured on (None: the target's units)."""
        if self.task != "regression":
            return None
        from scaledl.modalities import modality_of

        return modality_of(self.preprocessing).error_scale(self.preprocessing)

    @property
    def dynamic_axes(self) -> dict[int, str]:
        """Graph-input axes besides the batch that stay symbolic (text: the length)."""
        from scaledl.modalities import modality_of

        return modality_of(self.preprocessing).dynamic_axes()

    def calibration_index(self, count: int) -> np.ndarray:
        """Up to `count` training rows spread over the split (calibration never sees val/test)."""
        n = len(self.splits.train.x)
        return np.unique(np.linspace(0, n - 1, num=min(count, n)).round().astype(np.int64))

    def calibration_inputs(self, count: int) -> np.ndarray:
        """The normalized rows of `calibration_index(count)`."""
        return apply_preprocessing(
            self.splits.train.x[self.calibration_index(count)], self.preprocessing
        )

    def profile_inputs(self) -> InputReference | None:
        """The monitoring profile's model-free side (`monitor.profile.InputReference`), built
        on first use and shared by every candidate package; None for forecasters, whose profile
        reads windows of its own."""
        if self.preprocessing.kind == "series":
            return None
        if self._profile_inputs is None:
            from scaledl.monitor.reference import input_reference_for_splits

            self._profile_inputs = input_reference_for_splits(self.splits, self.preprocessing)
        return self._profile_inputs

    @property
    def profile_inputs_built(self) -> bool:
        return self._profile_inputs is not None

    def finetune_splits(self) -> DataSplits:
        """The splits fine-tuning sees: its best epoch is picked on every 10th training row.

        The validation split judges every candidate against the accuracy budget; if fine-tuning
        also picked its best epoch on it, the candidate would look better than it is.
        """
        if self._finetune is None:
            from scaledl.data.dataset import ArraySet

            train = self.splits.train
            held = np.zeros(len(train), dtype=bool)
            held[::10] = True
            self._finetune = dataclasses.replace(
                self.splits,
                train=ArraySet(train.x[~held], train.y[~held]),
                val=ArraySet(train.x[held], train.y[held]),
                train_group=None,  # these rows are not the split's training rows
                train_head=None,
            )
        return self._finetune

    def latency_input(self) -> np.ndarray:
        if self.dynamic_axes:  # texts: a batch of typical length, padded to its own longest
            return self._typical_input()
        x = self.x_val if len(self.x_val) else self.example
        reps = -(-self.config.batch_size // len(x))
        return np.ascontiguousarray(np.concatenate([x] * reps)[: self.config.batch_size])

    def _typical_input(self) -> np.ndarray:
        """The held-out sample's rows of median length (cycled to the batch size), prepared as
        a batch of their own: padding to the longest validation text would time a length
        no request has."""
        raw = np.asarray(self.example_raw)
        lengths = np.array([len(str(v)) for v in raw.ravel()])
        order = np.argsort(lengths, kind="stable")
        middle = len(order) // 2
        picks = [order[(middle + i) % len(order)] for i in range(self.config.batch_size)]
        return np.ascontiguousarray(apply_preprocessing(raw[picks], self.preprocessing))


def check_target(target: str) -> None:
    if target not in TARGETS:
        raise UsageError(
            f"--target {target!r} is not supported; valid targets: {', '.join(TARGETS)}"
        )


def build_context(
    path: Path | str,
    config: OptimizeConfig,
    started: float | None = None,
    trust_code: bool = False,
) -> SearchContext:
    """Open the parent, load its data (lineage or --data) and its PyTorch model if it has one.

    `started` (time.monotonic()) is when the time budget began: loading counts against it.
    """
    started = time.monotonic() if started is None else started
    check_target(config.target)
    parent = open_package(path)
    package_session(parent)  # a graph ONNX Runtime cannot load is refused here, by name
    task = parent.manifest.task
    splits, label = _load_data(parent, config, task)
    preprocessing = parent.preprocessing
    if SAMPLE in parent.manifest.files:
        example_raw = read_npz(parent, SAMPLE, ("raw",))["raw"]
    else:
        example_raw = splits.test.x[:16]
    if len(example_raw) < 2:
        example_raw = splits.val.x[:16]
    ctx = SearchContext(
        parent=parent,
        config=config,
        splits=splits,
        preprocessing=preprocessing,
        task=task,
        x_val=apply_preprocessing(splits.val.x, preprocessing),
        x_test=apply_preprocessing(splits.test.x, preprocessing),
        example_raw=example_raw,
        example=apply_preprocessing(example_raw, preprocessing),
        data_label=label,
        started=started,
    )
    if parent.has_weights:
        from scaledl.export.reexport import load_module
        from scaledl.models import ModelSpec
        from scaledl.package import MODEL_JSON

        ctx.spec = ModelSpec.from_json(parent.read_json(MODEL_JSON))
        ctx.teacher = load_module(parent, trust_code=trust_code)
        ctx.augment = _parent_augment(parent)
        ctx.train_loss = parent_loss(parent)
    return ctx


def _load_data(parent: Package, config: OptimizeConfig, task: str) -> tuple[DataSplits, str]:
    from scaledl.data import DataConfig
    from scaledl.modalities import load_splits

    lineage = parent.manifest.lineage
    own = lineage.data
    if own is None and config.data is None:
        raise UsageError(
            f"package {parent.source} records no data set in its lineage; "
            "pass --data SOURCE (digits, an image folder, a .csv/.parquet/.npz file)"
        )
    base = DataConfig.from_lineage(own or {}, parent.source)
    data = base if config.data is None else base.with_source(config.data)
    splits = load_splits(data, seed=lineage.split_seed, task=task)
    if len(splits.val) == 0:
        raise UsageError(
            f"data {data.source} has no validation rows; candidates are chosen on the "
            "validation split (set data.val_fraction > 0 when training)"
        )
    return splits, data.source


def recipe_section(parent: Package, key: str, model: Any) -> Any:
    """One section of the parent's recipe.yaml validated as `model` (a pydantic model), or
    None when the package has no recipe or the section does not validate (an old or
    hand-written recipe: whoever asked goes on without it and says so)."""
    if RECIPE not in parent.manifest.files:
        return None
    import yaml

    try:
        recipe = yaml.safe_load(parent.file(RECIPE).read_text()) or {}
        return model.model_validate(recipe.get(key) or {})
    except Exception as exc:
        log.info("parent recipe section %r not usable (%s)", key, exc)
        return None


def parent_loss(parent: Package) -> dict[str, Any]:
    """The regression loss the parent was trained on ({loss, huber_delta} from its recipe's
    `train` section), so that its fine-tunes minimise the same thing; {} when it has none."""
    from scaledl.config.train import TrainConfig

    train = recipe_section(parent, "train", TrainConfig)
    if train is None or parent.manifest.task != "regression":
        return {}
    return {"loss": train.loss, "huber_delta": train.huber_delta}


def _parent_augment(parent: Package) -> Any:
    """The augmentation the parent was trained with (from its recipe.yaml), if any."""
    from scaledl.data.augment import AugmentConfig

    return recipe_section(parent, "augment", AugmentConfig)
