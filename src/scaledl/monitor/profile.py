"""The reference profile (`profile.npz`): what "normal" inputs and outputs look like.

Built at packaging time:
- per-channel (images) / per-feature (tables, sequences) statistics of the preprocessed
  training inputs;
- a PCA projection fitted on one part of the training split, and the projected features of
  *another* part as the input reference (a PCA scored on the samples it was fitted on looks
  slightly wider than on new data, a gap that large windows would detect as drift);
- the model's outputs on *held-out* data (validation + test splits): predicted classes,
  top-1 confidence and its tie-free score, mean class probabilities. Outputs on training data
  are over-confident, so they cannot be the reference for live traffic.

Everything is a plain array in an `.npz` (metadata as a JSON string), read with
`allow_pickle=False`.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scaledl.errors import PackageError
from scaledl.monitor.outputs import class_counts, summarize_outputs
from scaledl.monitor.projection import Projection, fit_pca, standardizing_projection

log = logging.getLogger(__name__)
FORMAT = "scaledl.profile/1"
MMD_REFERENCE = 1000  # rows of the input reference the MMD test pools with a window

Predict = Callable[[np.ndarray], np.ndarray]


@dataclass
class ProfileOptions:
    components: int = 32
    max_fit: int = 5000  # training rows the PCA is fitted on
    max_reference: int = 10000  # rows kept as input / output reference
    seed: int = 0
    # Forecasters: "history" (the newest windows through the validation period, calibrated out
    # of sample) or "validation" (that period alone, calibrated in sample); see series_profile.
    series_reference: str = "history"
    # Forecasters: also watch each variable against what the others predict (gaps between
    # sensors, see modalities.series.drift); off: the per-variable features alone.
    series_gaps: bool = True


@dataclass
class ReferenceProfile:
    projection: Projection
    features: np.ndarray  # (n, k) float32 projected input reference, in random order
    task: str
    output_predicted: np.ndarray | None  # (m,) int64, classifiers
    output_score: np.ndarray | None  # (m,) float64 confidence score, classifiers
    output_confidence: np.ndarray | None  # (m,) float32 top-1 probability, classifiers
    output_values: np.ndarray | None  # (m, q) float32, regression
    num_classes: int | None
    channel_stats: dict[str, np.ndarray]  # mean/std/min/max/p01/p99 per channel or feature
    meta: dict[str, Any] = field(default_factory=dict)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def mmd_reference(self) -> np.ndarray:
        return self.features[:MMD_REFERENCE]

    def mmd_reference_kernel(self) -> np.ndarray:
        """The reference's own kernel block, computed once (every window reuses it)."""
        if "mmd_kernel" not in self._cache:
            from scaledl.monitor.stats import gaussian_kernel

            ref = self.mmd_reference
            self._cache["mmd_kernel"] = gaussian_kernel(ref, ref, self.mmd_bandwidth)
        return self._cache["mmd_kernel"]

    @property
    def mmd_bandwidth(self) -> float:
        return float(self.meta["mmd_bandwidth"])

    @property
    def class_histogram(self) -> np.ndarray | None:
        if self.output_predicted is None or self.num_classes is None:
            return None
        return class_counts(self.output_predicted, self.num_classes)

    def to_bytes(self) -> bytes:
        arrays: dict[str, np.ndarray] = {
            "projection_mean": self.projection.mean,
            "projection_components": self.projection.components,
            "projection_variance": self.projection.explained_variance,
            "reference_features": self.features,
            "meta_json": np.array(json.dumps(self.meta, sort_keys=True)),
        }
        optional = {
            "output_predicted": self.output_predicted,
            "output_score": self.output_score,
            "output_confidence": self.output_confidence,
            "output_values": self.output_values,
        }
        arrays.update({k: v for k, v in optional.items() if v is not None})
        arrays.update({f"channel_{k}": v for k, v in self.channel_stats.items()})
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
        return buffer.getvalue()

    def manifest_entry(self, file_name: str = "profile.npz") -> dict[str, Any]:
        """The manifest's `monitoring` key: where the profile is and what it holds."""
        return {
            "profile": file_name,
            "format": FORMAT,
            "projection": {
                "method": "standardized" if self.meta.get("feature_names") else "pca",
                "components": self.projection.k,
                "explained_variance_ratio": self.meta.get("explained_variance_ratio"),
            },
            "reference": self.meta.get("reference", {}),
            "reference_accuracy": self.meta.get("reference_accuracy"),
            "tests": self.meta.get("tests", []),
        }


def load_profile(data: bytes | Any, source: str = "profile.npz") -> ReferenceProfile:
    """Read a profile from bytes or a path (no pickle)."""
    try:
        handle = io.BytesIO(data) if isinstance(data, bytes | bytearray) else data
        with np.load(handle, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        meta = json.loads(str(arrays.pop("meta_json")))
        projection = Projection(
            mean=arrays["projection_mean"],
            components=arrays["projection_components"],
            explained_variance=arrays["projection_variance"],
        )
    except (OSError, ValueError, KeyError) as exc:
        raise PackageError(f"{source} is not a readable monitoring profile ({exc})") from None
    if meta.get("format") != FORMAT:
        raise PackageError(f"{source}: format {meta.get('format')!r}, expected {FORMAT!r}")
    channel = {k[len("channel_") :]: v for k, v in arrays.items() if k.startswith("channel_")}
    return ReferenceProfile(
        projection=projection,
        features=arrays["reference_features"],
        task=str(meta.get("task", "classification")),
        output_predicted=arrays.get("output_predicted"),
        output_score=arrays.get("output_score"),
        output_confidence=arrays.get("output_confidence"),
        output_values=arrays.get("output_values"),
        num_classes=meta.get("num_classes"),
        channel_stats=channel,
        meta=meta,
    )


def channel_statistics(x: np.ndarray, kind: str) -> dict[str, np.ndarray]:
    """Per-channel (images: axis 1) or per-feature (last axis) summary of a batch; the axis is
    the modality's."""
    from scaledl.modalities import modality

    arr = np.asarray(x, dtype=np.float64)
    axis = modality(kind).channel_axis()
    moved = np.moveaxis(arr, axis, 0).reshape(arr.shape[axis], -1)
    return {
        "mean": moved.mean(axis=1).astype(np.float32),
        "std": moved.std(axis=1).astype(np.float32),
        "min": moved.min(axis=1).astype(np.float32),
        "max": moved.max(axis=1).astype(np.float32),
        "p01": np.percentile(moved, 1, axis=1).astype(np.float32),
        "p99": np.percentile(moved, 99, axis=1).astype(np.float32),
    }


def median_distance(features: np.ndarray, limit: int = 1000) -> float:
    """Median pairwise Euclidean distance: the MMD kernel bandwidth (fixed from the reference)."""
    f = np.asarray(features[:limit], dtype=np.float64)
    sq = (f * f).sum(axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * f @ f.T, 0.0)
    upper = d2[np.triu_indices(len(f), k=1)]
    med = float(np.sqrt(np.median(upper))) if upper.size else 1.0
    return med if med > 0 else 1.0


@dataclass
class InputReference:
    """The half of a profile that does not depend on the model: the projection, the projected
    input reference, channel statistics, and the held-out rows (preprocessed, in the order the
    output reference keeps). Candidates of one search share it (`build_profile(inputs=...)`):
    on full CIFAR-10 it is ~150 M preprocessed values, several seconds a package."""

    projection: Projection
    features: np.ndarray
    channel_stats: dict[str, np.ndarray]
    meta: dict[str, Any]
    heldout_x: np.ndarray
    order: np.ndarray  # rows of the caller's held-out arrays kept, in the kept order
    heldout_rows: int  # how many held-out rows the caller had (outputs must match them)


def input_reference(
    fit_x: np.ndarray,
    reference_x: np.ndarray,
    heldout_x: np.ndarray,
    *,
    kind: str = "image",
    options: ProfileOptions | None = None,
    sources: dict[str, str] | None = None,
    feature_names: list[str] | None = None,
) -> InputReference:
    """PCA on `fit_x` (or standardisation, with readable `feature_names`), the input reference
    from `reference_x`, and which of `heldout_x`'s rows the output reference keeps."""
    opts = options or ProfileOptions()
    rng = np.random.default_rng(opts.seed)
    fit_x = fit_x[rng.permutation(len(fit_x))[: opts.max_fit]]
    reference_x = reference_x[rng.permutation(len(reference_x))[: opts.max_reference]]
    order = rng.permutation(len(heldout_x))[: opts.max_reference]
    if feature_names:
        projection = standardizing_projection(fit_x)
    else:
        projection = fit_pca(fit_x, opts.components, seed=opts.seed)
    features = projection.transform(reference_x)
    total_var = float(np.asarray(fit_x, np.float64).reshape(len(fit_x), -1).var(axis=0).sum())
    meta: dict[str, Any] = {
        "format": FORMAT,
        "kind": kind,
        "mmd_bandwidth": median_distance(features),
        **({"feature_names": list(feature_names)} if feature_names else {}),
        "explained_variance_ratio": round(
            float(projection.explained_variance.sum()) / total_var if total_var > 0 else 1.0, 4
        ),
        "reference": {"fit": len(fit_x), "inputs": len(features), "outputs": len(order)},
    }
    if feature_names is not None:
        meta["feature_names"] = list(feature_names)
    meta["reference"].update(sources or {})
    return InputReference(
        projection=projection,
        features=features,
        channel_stats=channel_statistics(fit_x, kind),
        meta=meta,
        heldout_x=heldout_x[order],
        order=order,
        heldout_rows=len(heldout_x),
    )


def build_profile(
    fit_x: np.ndarray | None,
    reference_x: np.ndarray | None,
    heldout_x: np.ndarray | None,
    predict: Predict,
    *,
    task: str = "classification",
    kind: str = "image",
    heldout_y: np.ndarray | None = None,
    heldout_outputs: np.ndarray | None = None,
    labels: list[str] | None = None,
    options: ProfileOptions | None = None,
    sources: dict[str, str] | None = None,
    feature_names: list[str] | None = None,
    inputs: InputReference | None = None,
) -> ReferenceProfile:
    """A profile from preprocessed arrays: PCA on `fit_x`, input reference from `reference_x`,
    output reference from the model's outputs on `heldout_x` (`predict`: batch → outputs, or
    `heldout_outputs` when they were computed already, row for row).

    With `feature_names` (readable drift features, e.g. text's length and unknown-token share)
    the features are only standardized, so each test result names a feature. `inputs`: the
    input side built already (`input_reference`); the three arrays, `kind`, `options`,
    `sources` and `feature_names` are then taken from it and not read."""
    if inputs is None:
        if fit_x is None or reference_x is None or heldout_x is None:
            raise ValueError("build_profile needs fit_x, reference_x and heldout_x, or inputs")
        inputs = input_reference(
            fit_x,
            reference_x,
            heldout_x,
            kind=kind,
            options=options,
            sources=sources,
            feature_names=feature_names,
        )
    order = inputs.order
    if heldout_outputs is not None and len(heldout_outputs) != inputs.heldout_rows:
        raise ValueError(f"{len(heldout_outputs)} held-out outputs for {inputs.heldout_rows} rows")
    meta: dict[str, Any] = {
        "format": FORMAT,
        "task": task,
        "kind": inputs.meta["kind"],
        "labels": labels,
        **{k: v for k, v in inputs.meta.items() if k not in ("format", "kind")},
    }
    meta["reference"] = dict(inputs.meta["reference"])
    if heldout_outputs is not None:
        outputs = np.asarray(heldout_outputs)[order]
    else:
        outputs = np.asarray(predict(inputs.heldout_x))
    profile = ReferenceProfile(
        projection=inputs.projection,
        features=inputs.features,
        task=task,
        output_predicted=None,
        output_score=None,
        output_confidence=None,
        output_values=None,
        num_classes=None,
        channel_stats=inputs.channel_stats,
        meta=meta,
    )
    _add_outputs(profile, outputs, heldout_y[order] if heldout_y is not None else None, labels)
    log.info(
        "reference profile: %d components (%.0f%% of variance), %d input / %d output rows",
        inputs.projection.k,
        100 * meta["explained_variance_ratio"],
        len(inputs.features),
        len(outputs),
    )
    return profile


def _add_outputs(
    profile: ReferenceProfile,
    outputs: np.ndarray,
    y: np.ndarray | None,
    labels: list[str] | None,
) -> None:
    meta = profile.meta
    if profile.task == "classification":
        summary = summarize_outputs(outputs)
        profile.num_classes = int(outputs.shape[1])
        profile.output_predicted = summary.predicted
        profile.output_score = summary.score
        profile.output_confidence = summary.confidence.astype(np.float32)
        meta["num_classes"] = profile.num_classes
        meta["mean_confidence"] = round(float(summary.confidence.mean()), 6)
        meta["mean_probabilities"] = [round(float(v), 6) for v in summary.probabilities.mean(0)]
        meta["tests"] = ["ks_pca", "mmd", "confidence", "classes"]
        if y is not None and len(y):
            meta["reference_accuracy"] = round(float((summary.predicted == y).mean()), 6)
    else:
        profile.output_values = np.asarray(outputs, np.float32).reshape(len(outputs), -1)
        meta["tests"] = ["ks_pca", "mmd", "outputs"]
        if y is not None and len(y):
            from scaledl.metrics import regression_errors

            errors = regression_errors(outputs, np.asarray(y))
            meta["reference_rmse"] = round(errors["rmse"], 6)
            meta["reference_error"] = round(errors["mse"], 6)
    _ = labels
