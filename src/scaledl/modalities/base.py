"""The modality seam: one registered unit per kind of input, used by every stage.

A modality says, for its kind of input (image, table, sequence, …):

- **data** — which sources it reads (`claims`, `read`) into raw arrays;
- **preprocessing** — what it learns from the training split (`fit`, a typed spec from
  `scaledl.contract.preprocessing`, stored in the package manifest) and how a raw batch becomes
  the graph's input (`to_graph`). Training, `evaluate`, the server and the monitor all call the
  same `to_graph`; training splits it around augmentation (`batch_transform`);
- **serving** — what raw input a served package accepts: the V2 tensors (`served_inputs`) and
  the human-facing `/predict` rows (`rows_from_json`) and bodies (`body_types`,
  `rows_from_body`, e.g. images);
- **model** — the torch front-end (if any) that turns the graph input into features one of the
  four families reads (`frontend`);
- **augmentation** — which ops of `scaledl.data.augment` apply (`augment_kind`);
- **monitoring** — the features its drift tests watch (`drift_features`, `channel_axis`).

Stages never branch on the kind of input: they ask its modality. A new modality is one module
that subclasses `Modality`, a spec in `contract/preprocessing.py`, and a `register_modality`
call (see docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from scaledl.contract import Signature, SpecBase, TensorSpec
from scaledl.errors import DataError, UnsupportedMediaTypeError

# a larger share of seen validation rows is warned about (below a fifth, seen rows cannot move
# a measured accuracy by much)
SEEN_WARNING_SHARE = 0.2

if TYPE_CHECKING:
    from scaledl.config.data import DataConfig
    from scaledl.data.dataset import DataSplits, LoadedData


@dataclass(frozen=True)
class BodyLimits:
    """Limits on a decoded `/predict` body (from the server's settings)."""

    max_pixels: int = 16_000_000  # images: refused from the header, before decoding


class BatchTransform:
    """Training's view of `to_graph`, split around augmentation.

    `load(raw)` turns a raw numpy batch into a tensor in the space augmentation works in (for
    images: pixels scaled to [0, 1]); `finish(t)` turns that tensor into the graph input.
    `to(device)` moves any constants once. The default is `to_graph` in one piece.
    """

    scale: float = 1.0

    def load(self, raw: Any) -> Any:
        raise NotImplementedError

    def finish(self, x: Any) -> Any:
        return x

    def to(self, device: Any) -> BatchTransform:
        return self

    def __call__(self, raw: Any) -> Any:
        return self.finish(self.load(raw))


class ServingAdapter:
    """For a package whose clients send other tensors than its graph reads (text: BYTES strings
    in, int64 token ids into the graph): the server checks the served inputs on the event loop
    (`check`: cheap, raises a 4xx `ScaledlError` naming the input) and converts and runs them in
    the batch runner thread (`run`), off the event loop. `served` turns `/predict` raw rows into
    the served inputs."""

    def check(self, inputs: dict[str, np.ndarray]) -> None:
        return None

    def run(self, session: Any, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError

    def served(self, raw: Any) -> dict[str, np.ndarray]:
        raise NotImplementedError


class Modality:
    """Base class of a modality unit; see the module docstring for what each part is for."""

    kind: ClassVar[str]
    spec_type: ClassVar[type[SpecBase]]
    augment_kind: ClassVar[str] = ""  # ops whose `kinds` name this apply ("" = the kind)

    def augmentation_kind(self) -> str:
        """The `kinds` tag of the augmentation ops that apply to this modality's data."""
        return self.augment_kind or self.kind

    # ---- data ---------------------------------------------------------------------------
    def claims(self, path: Path, config: DataConfig) -> bool:
        """True when this modality reads the source at `path` (after `config.kind`)."""
        return False

    def read(self, path: Path, config: DataConfig, task: str) -> LoadedData:
        raise DataError(f"{self.kind} data cannot be read from {path}")

    def split(self, loaded: LoadedData, config: DataConfig, seed: int, task: str) -> DataSplits:
        """Train/validation/test splits (default: stratified by class, shuffled with `seed`;
        whole groups when `row_groups` gives them)."""
        from scaledl.data.dataset import make_splits

        groups = self.row_groups(loaded, config)
        return make_splits(
            loaded,
            config.val_fraction,
            config.test_fraction,
            seed,
            classification=task == "classification",
            allow_small_classes=config.allow_small_classes,
            group=groups[0] if groups is not None else None,
            grouped=groups[1] if groups is not None else None,
        )

    def row_groups(self, loaded: LoadedData, config: DataConfig) -> tuple[np.ndarray, str] | None:
        """Rows that must stay on one side of the split: (the row heading each row's group,
        what the groups are), or None to split row by row (the default)."""
        return None

    # ---- preprocessing ------------------------------------------------------------------
    def fit(self, splits: DataSplits) -> SpecBase:
        """What preprocessing learns from the training split (never validation or test rows)."""
        raise NotImplementedError

    def to_graph(self, spec: Any, raw: Any) -> np.ndarray:
        """A raw batch (N, *raw_shape) → the graph's input batch (numpy, no torch)."""
        raise NotImplementedError

    def batch_transform(self, spec: Any) -> BatchTransform:
        raise NotImplementedError

    def check_raw(self, spec: SpecBase, raw: Any) -> None:
        """Refuse a raw batch whose sample shape is not the one the model was trained on."""
        shape = tuple(np.shape(raw)[1:])
        if shape != spec.sample_shape:
            raise DataError(
                f"raw input has sample shape {shape}, expected {spec.sample_shape} "
                "(the shape the model was trained on)"
            )

    def error_scale(self, spec: Any) -> np.ndarray | None:
        """Per-target scale regression errors are standardised by, broadcast over the output's
        last axis (None: errors stay in the targets' own units). Training minimises, and the
        regression budgets compare, the error on this scale."""
        return None

    def evaluation_extras(
        self, spec: Any, x_raw: Any, y: np.ndarray, outputs: np.ndarray
    ) -> dict[str, Any]:
        """Figures reported beside a model's test metrics (e.g. naive baselines)."""
        return {}

    # what to do when most validation rows were seen in training (`seen_in_training`)
    seen_fix: ClassVar[str] = "a validation split of data the model has not seen"

    def seen_in_training(self, splits: DataSplits) -> float | None:
        """The share of validation rows whose content the model was trained on (e.g. a text
        row that occurs inside a training row), where the modality can tell; None elsewhere.
        A budget judged on such rows holds for seen data, not necessarily for new data."""
        return None

    def finish(self, spec: Any, model: Any) -> SpecBase:
        """The spec as packaged, once the model is trained (default: unchanged). Text adds a
        table from the model's embedding that the monitor watches."""
        return spec

    # ---- package files ------------------------------------------------------------------
    def package_files(self, spec: Any) -> dict[str, bytes]:
        """Files the package must carry for `to_graph` to work (text: the tokenizer)."""
        return {}

    def bind_package(self, spec: Any, read: Callable[[str], bytes]) -> None:
        """Load what `package_files` wrote, when a package is opened (`read(name)` → bytes)."""
        return None

    # ---- the exported graph -------------------------------------------------------------
    def graph_signature(self, spec: Any, default: Signature) -> Signature:
        """The graph's own inputs/outputs; `default` is float32 (N, *sample_shape) → outputs
        with the exporter's names (text: int64 token ids (N, L) instead)."""
        return default

    def dynamic_axes(self) -> dict[int, str]:
        """Graph-input axes besides the batch that stay symbolic in ONNX (text: the length)."""
        return {}

    # ---- serving ------------------------------------------------------------------------
    body_types: ClassVar[tuple[str, ...]] = ()  # media types /predict decodes besides JSON

    def format_values(self, spec: Any, outputs: np.ndarray) -> list[dict[str, Any]]:
        """A regressor's `/predict` answer, one entry per row."""
        return [{"value": row.tolist()} for row in outputs.reshape(len(outputs), -1)]

    def served_inputs(self, spec: Any, graph_inputs: list[TensorSpec]) -> list[TensorSpec]:
        """The V2 inputs a client sends (default: the graph's own inputs)."""
        return graph_inputs

    def serving_adapter(self, spec: Any) -> ServingAdapter | None:
        """How served inputs reach the graph when they differ from its own (None: as sent)."""
        return None

    def rows_from_json(self, spec: SpecBase, rows: Any) -> np.ndarray:
        """`/predict` JSON rows (the server parsed `[[…], …]` or `{"instances": […]}` into a
        float64 array when they are numbers, else the list) → raw rows (N, *raw_shape)."""
        try:
            array = np.asarray(rows, dtype=np.float64)
        except (ValueError, TypeError, OverflowError):
            raise DataError("rows must be lists of numbers of the same length") from None
        per_row = int(np.prod(spec.sample_shape))
        count = len(array) if array.ndim else 0
        if array.ndim < 1 or count == 0 or array.size != count * per_row:
            raise DataError(
                f"each row must hold {per_row} numbers (raw shape {list(spec.sample_shape)}); "
                f"got {array.size} number(s) for {count} row(s)"
            )
        out = array.reshape(count, *spec.sample_shape).astype(np.float32)
        if not np.isfinite(out).all():
            raise DataError("rows contain NaN or Inf values (or numbers too large for float32)")
        return out

    def rows_from_body(
        self, spec: SpecBase, body: bytes, media_type: str, limits: BodyLimits
    ) -> np.ndarray:
        """A `/predict` body of one of `body_types` (an image, a sound file) → raw rows."""
        raise UnsupportedMediaTypeError(f"{self.kind} models read no {media_type} bodies")

    # ---- model --------------------------------------------------------------------------
    def frontend(self, spec: Any, family: str) -> dict[str, Any] | None:
        """The JSON config of the torch front-end between the graph input and `family` (None:
        the family reads the graph input as it is). It is stored in `model.json`, so the model
        can be rebuilt from the package alone; it must include `"kind": self.kind`."""
        return None

    def build_frontend(self, config: dict[str, Any]) -> tuple[Any, Any]:
        """(front-end nn.Module, the feature form a family reads) from `frontend`'s config: a
        shape tuple, or an object with a `form` name (e.g. a forecast's window geometry) that
        the model registry dispatches on."""
        raise NotImplementedError(f"the {self.kind} modality has no front-end")

    # ---- monitoring ---------------------------------------------------------------------
    def channel_axis(self) -> int:
        """Axis of a graph-input batch that per-channel (per-feature) statistics run along."""
        return -1

    def drift_features(self, spec: Any, graph_x: np.ndarray) -> np.ndarray:
        """What the drift tests project and compare: by default the graph input itself."""
        return graph_x

    def drift_feature_names(self, spec: Any) -> list[str] | None:
        """Names of readable drift features: the monitor then tests each one as it is
        (standardized) instead of PCA components, and reports name them (None: PCA of the
        features, numbered channels)."""
        return None


__all__ = ["BatchTransform", "BodyLimits", "Modality", "ServingAdapter"]
