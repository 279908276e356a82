"""`scaledl ensemble`: packages trained on the same data, averaged into one served package.

Averaging models that err differently is the most reliable accuracy gain there is (a GRU and a
linear forecaster on ETTh1: 0.428 and 0.430 test MSE apart, 0.420 together). The result is an
ordinary package — one ONNX graph (`export.ensemble_graph`), a parity sample, test metrics, a
monitoring profile — so `verify`, `serve`, `monitor` and `optimize` (graph methods: the
ensemble has no PyTorch weights) take it as they take any model.

What members must share, checked before anything is built (a package is untrusted input; the
message names the member and the field): the task, the classes, the preprocessing (forecasters
may differ in look-back: the ensemble reads the longest, each member its newest steps; text
members must use the same tokenizer) and the data set and its splits, so that the ensemble is
scored on the test rows none of its members saw. The members' own test and validation figures
are recorded beside the ensemble's, so the gain is shown, not assumed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scaledl.contract import SpecBase
from scaledl.errors import PackageError, UsageError
from scaledl.export.ensemble_graph import PROBABILITY_FLOOR, Combine, Member, merge_graphs
from scaledl.package import (
    MANIFEST,
    MODEL_ONNX,
    PROFILE,
    SAMPLE,
    Package,
    open_package,
    write_package,
)

log = logging.getLogger(__name__)
MAX_MEMBERS = 16
MAX_GRAPH_BYTES = 2_000_000_000  # protobuf's limit for one serialized ONNX model, with room
SAMPLE_SIZE = 16
PARITY_TOLERANCE = 1e-4
# Data settings that shape how a member was trained, not which rows are its test rows; the
# split seed is compared as the seed each split really used (`lineage.split_seed`), and the
# tokenizer as the file itself (`preprocessing.tokenizer`, with its sha256).
TRAINING_ONLY_DATA = {
    ("series", "lookback"),
    ("series", "train_stride"),
    ("cache_dir",),
    ("split_seed",),
    *(
        ("text", key)
        for key in (
            "tokenizer",
            "tokenizer_from",
            "vocab_size",
            "min_frequency",
            "lowercase",
            "split_punctuation",
        )
    ),
}


@dataclass
class EnsembleResult:
    path: Path
    metrics: dict[str, Any]
    members: list[dict[str, Any]]


def ensemble_packages(
    members: Sequence[Path | str],
    out: Path,
    *,
    name: str | None = None,
    weights: Sequence[float] | None = None,
    version: str = "1",
) -> EnsembleResult:
    """Merge `members` (package folders or .zip) into one package at `out`."""
    from scaledl.export.runtime import create_session
    from scaledl.modalities import modality_of

    if not 2 <= len(members) <= MAX_MEMBERS:
        raise UsageError(f"an ensemble takes 2 to {MAX_MEMBERS} packages, got {len(members)}")
    if name is not None:
        _check_name(name)
    packages = [open_package(path) for path in members]
    _check_out(Path(out), packages)
    shares = _normalised_weights(weights, len(packages))
    base = _check_compatible(packages)
    spec = base.preprocessing
    task = base.manifest.task
    combine: Combine = "probability" if task == "classification" else "value"
    steps = _lookback(spec)
    graph_members = [
        Member(
            name=f"{pkg.name}:{pkg.version}",
            model=pkg.onnx_path.read_bytes(),
            weight=share,
            steps=_lookback(pkg.preprocessing) if steps is not None else None,
        )
        for pkg, share in zip(packages, shares, strict=True)
    ]
    merged = merge_graphs(graph_members, combine, steps)

    splits = _splits(base)
    _trained_on(base, splits.fingerprint)
    if spec.kind == "series":
        for pkg in packages:
            if pkg is not base:
                _trained_on(pkg, _splits(pkg).fingerprint)
    unit = modality_of(spec)
    scale = unit.error_scale(spec) if task == "regression" else None
    session = create_session(merged)
    member_sessions = [create_session(m.model) for m in graph_members]

    def members_average(raw: np.ndarray) -> np.ndarray:
        """The ensemble computed member by member in NumPy: what the merged graph must equal."""
        from scaledl.evaluate import run_session
        from scaledl.metrics import softmax
        from scaledl.preprocess import apply_preprocessing

        x = apply_preprocessing(raw, spec)
        total: np.ndarray | None = None
        for member, member_session in zip(graph_members, member_sessions, strict=True):
            view = x[:, -member.steps :] if member.steps is not None else x
            out = run_session(member_session, np.ascontiguousarray(view)).astype(np.float64)
            part = member.weight * (softmax(out) if combine == "probability" else out)
            total = part if total is None else total + part
        assert total is not None
        if combine == "probability":
            return np.log(np.maximum(total, PROBABILITY_FLOOR)).astype(np.float32)
        return total.astype(np.float32)

    metrics, per_member = _score(
        splits, spec, task, scale, session, packages, member_sessions, steps
    )
    held_out = splits.test.x[:SAMPLE_SIZE]
    files, parity = _parity_sample(held_out, spec, session, members_average, scale)
    files[MODEL_ONNX] = merged
    monitoring = None
    if any(pkg.has_file(PROFILE) for pkg in packages):
        from scaledl.evaluate import run_session
        from scaledl.monitor.reference import profile_for_splits

        built = profile_for_splits(splits, spec, lambda x: run_session(session, x), task)
        files[PROFILE], monitoring = built.to_bytes(), built.manifest_entry(PROFILE)
    described = [
        {
            "name": pkg.name,
            "version": pkg.version,
            "family": pkg.manifest.family,
            "precision": pkg.manifest.precision,
            "weight": round(share, 6),
            "model_sha256": pkg.manifest.files[pkg.manifest.model_file],
            "source": str(pkg.source),
            **({"lookback": _lookback(pkg.preprocessing)} if steps is not None else {}),
            **per_member[i],
        }
        for i, (pkg, share) in enumerate(zip(packages, shares, strict=True))
    ]
    for pkg in packages:
        if pkg.manifest.decision is not None:  # chosen for that model's probabilities alone
            log.warning(
                "%s decides with a threshold of %.3f; the ensemble decides by argmax",
                pkg.source,
                pkg.manifest.decision.threshold,
            )
    precisions = {pkg.manifest.precision for pkg in packages}
    lineage = base.manifest.lineage.model_dump(mode="json")
    lineage.update(
        {
            "parent": None,
            "transforms": [],
            "optimize": None,
            "maintain": None,
            "ensemble": {"combine": combine, "members": described},
        }
    )
    manifest: dict[str, Any] = {
        "name": name or f"{base.name}-ensemble",
        "version": str(version),
        "task": task,
        "family": "ensemble",
        "knobs": {"members": len(packages), "combine": combine},
        "signature": base.manifest.signature.model_dump(),
        **(
            {"graph_signature": base.manifest.graph_signature.model_dump()}
            if base.manifest.graph_signature is not None
            else {}
        ),
        "labels": base.labels,
        "preprocessing": spec.model_dump(mode="json"),
        "precision": precisions.pop() if len(precisions) == 1 else "mixed",
        "metrics": metrics,
        "parity": parity,
        "export": {"exporter": "ensemble", "opset": base.manifest.export.opset},
        "lineage": lineage,
        "environment": _environment(),
        "monitoring": monitoring,
    }
    path = write_package(out, manifest, files)
    return EnsembleResult(path=path, metrics=metrics, members=described)


def _check_out(out: Path, packages: Sequence[Package]) -> None:
    """`--out` is replaced as a whole: never a member, never a folder that is not a package."""
    target = out.resolve()
    for pkg in packages:
        if target in (pkg.source.resolve(), pkg.path.resolve()):
            raise UsageError(f"--out {out} is the member package {pkg.source}; choose a new folder")
    if out.exists() and not (
        out.is_dir() and (not any(out.iterdir()) or (out / MANIFEST).is_file())
    ):
        raise UsageError(
            f"--out {out} exists and is not a package folder (it would be replaced); choose a "
            "new folder"
        )
    total = sum(pkg.onnx_path.stat().st_size for pkg in packages)
    if total > MAX_GRAPH_BYTES:
        raise PackageError(
            f"the members' graphs hold {total / 2**30:.1f} GiB together; one ONNX file holds at "
            f"most {MAX_GRAPH_BYTES / 2**30:.1f} GiB"
        )


def _check_name(name: str) -> None:
    """Checked before any work: the name ends up in URLs, metric labels and folder names."""
    from pydantic import TypeAdapter, ValidationError

    from scaledl.contract.manifest import Name

    try:
        TypeAdapter(Name).validate_python(name)
    except ValidationError:
        raise UsageError(
            f"--name {name[:80]!r} is not a model name: 1 to 128 letters, digits, '.', '_' or "
            "'-', starting with a letter or digit"
        ) from None


def _normalised_weights(weights: Sequence[float] | None, count: int) -> list[float]:
    if weights is None:
        return [1.0 / count] * count
    values = [float(w) for w in weights]
    if len(values) != count:
        raise UsageError(
            f"--weights gives {len(values)} weights for {count} packages; give one each"
        )
    if any(not math.isfinite(w) or w < 0 for w in values) or sum(values) <= 0:
        raise UsageError(f"--weights must be finite and ≥ 0 with a positive sum, got {values}")
    total = sum(values)
    return [w / total for w in values]


def _lookback(spec: SpecBase) -> int | None:
    return spec.raw_shape[0] if spec.kind == "series" else None


def _check_compatible(packages: Sequence[Package]) -> Package:
    """The member whose preprocessing and data the ensemble takes (the longest look-back for
    forecasters, else the first); PackageError naming the first member that does not fit."""
    first = packages[0]
    digests: dict[str, Path] = {}
    for pkg in packages:
        if pkg.manifest.preprocessing is None:
            raise PackageError(
                f"package {pkg.source} has no preprocessing, so its inputs cannot be matched "
                "with the other members'"
            )
        digest = pkg.manifest.files[pkg.manifest.model_file]
        if digest in digests:
            raise PackageError(
                f"packages {digests[digest]} and {pkg.source} hold the same graph; an ensemble "
                "of a model with itself is that model (use --weights to weigh members)"
            )
        digests[digest] = pkg.source
    for pkg in packages[1:]:
        _same(first, pkg, "task", first.manifest.task, pkg.manifest.task)
        _same(first, pkg, "labels", first.labels, pkg.labels)
        _same(
            first,
            pkg,
            "output",
            first.manifest.signature.output.shape,
            pkg.manifest.signature.output.shape,
        )
        ours, theirs = _comparable_spec(first.preprocessing), _comparable_spec(pkg.preprocessing)
        for key in sorted(set(ours) | set(theirs)):
            _same(first, pkg, f"preprocessing.{key}", ours.get(key), theirs.get(key))
        _same_data(first, pkg)
    if first.preprocessing.kind == "series":
        return max(packages, key=lambda pkg: pkg.preprocessing.raw_shape[0])
    return first


def _comparable_spec(spec: SpecBase) -> dict[str, Any]:
    """The preprocessing as members must share it: a forecaster's look-back may differ, and a
    text model's own representation table (the monitor watches the first member's)."""
    raw = spec.model_dump(mode="json")
    if spec.kind == "series":
        raw["raw_shape"] = raw["raw_shape"][1:]
    raw.pop("representation", None)
    return dict(raw)


def _same_data(first: Package, pkg: Package) -> None:
    a, b = first.manifest.lineage, pkg.manifest.lineage
    if first.preprocessing.kind != "series":
        # A forecaster's split is chronological, whatever the seed, and its fingerprint covers
        # its windows, so it differs with the look-back: each forecaster is checked against
        # the file as it is now instead (`_trained_on`), so seeds and look-backs can join.
        _same(first, pkg, "lineage.split_seed", a.split_seed, b.split_seed)
        _same(first, pkg, "lineage.data_fingerprint", a.data_fingerprint, b.data_fingerprint)
    ours, theirs = _flat(_data_config(first)), _flat(_data_config(pkg))
    for key in sorted(set(ours) | set(theirs)):
        if key not in TRAINING_ONLY_DATA:
            _same(first, pkg, "lineage.data." + ".".join(key), ours.get(key), theirs.get(key))


def _data_config(pkg: Package) -> dict[str, Any]:
    """The data section as validated (with today's defaults filled in), so that packages
    written by versions that record more or fewer default fields still compare equal."""
    from scaledl.data import DataConfig

    config = DataConfig.from_lineage(pkg.manifest.lineage.data or {}, pkg.source)
    return dict(config.model_dump(mode="json"))


def _splits(pkg: Package) -> Any:
    from scaledl.data import DataConfig
    from scaledl.modalities import load_splits

    lineage = pkg.manifest.lineage
    config = DataConfig.from_lineage(lineage.data or {}, pkg.source)
    return load_splits(config, seed=lineage.split_seed, task=pkg.manifest.task)


def _trained_on(pkg: Package, fingerprint: str) -> None:
    """The data set as it is now must be the one the member was trained on: the ensemble is
    scored on its test rows, which must be rows no member trained on."""
    recorded = pkg.manifest.lineage.data_fingerprint
    if recorded is not None and recorded != fingerprint:
        source = (pkg.manifest.lineage.data or {}).get("source")
        raise PackageError(
            f"package {pkg.source} was trained on other contents of {source} than it holds "
            f"now (data fingerprint {recorded}, now {fingerprint}); retrain it on this data, "
            "or ensemble models of the same data"
        )


def _flat(data: dict[str, Any], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    flat: dict[tuple[str, ...], Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flat(value, (*prefix, str(key))))
        else:
            flat[(*prefix, str(key))] = value
    return flat


def _same(first: Package, pkg: Package, field: str, ours: Any, theirs: Any) -> None:
    if ours != theirs:
        shown = [str(v)[:80] for v in (ours, theirs)]
        raise PackageError(
            f"package {pkg.source} cannot join {first.source} in an ensemble: {field} differs "
            f"({shown[0]} vs {shown[1]}); members must be trained on the same data with "
            "the same inputs and outputs"
        )


def _score(
    splits: Any,
    spec: SpecBase,
    task: str,
    scale: np.ndarray | None,
    session: Any,
    packages: Sequence[Package],
    member_sessions: Sequence[Any],
    steps: int | None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The ensemble's test metrics (plus val_*), and each member's test and validation figure
    on the same rows, from its own graph."""
    from scaledl.evaluate import confusion_matrix, run_session
    from scaledl.metrics import evaluate_outputs
    from scaledl.modalities import modality_of
    from scaledl.preprocess import apply_preprocessing

    x = {part: apply_preprocessing(getattr(splits, part).x, spec) for part in ("val", "test")}
    y = {part: getattr(splits, part).y for part in ("val", "test")}
    key = "accuracy" if task == "classification" else "loss"
    test_out = run_session(session, x["test"])
    metrics: dict[str, Any] = dict(evaluate_outputs(test_out, y["test"], task, scale))
    if len(y["val"]):
        val = evaluate_outputs(run_session(session, x["val"]), y["val"], task, scale)
        metrics.update({f"val_{k}": v for k, v in val.items()})
    metrics.update(modality_of(spec).evaluation_extras(spec, splits.test.x, y["test"], test_out))
    metrics["test_samples"] = len(y["test"])
    if task == "classification" and splits.labels:
        predicted = test_out.argmax(axis=1)
        metrics["confusion_matrix"] = confusion_matrix(y["test"], predicted, len(splits.labels))
    train_seconds = [pkg.manifest.metrics.get("train_seconds") for pkg in packages]
    if all(isinstance(s, int | float) for s in train_seconds):
        metrics["train_seconds"] = round(float(sum(train_seconds)), 3)
    per_member = []
    for pkg, member_session in zip(packages, member_sessions, strict=True):
        own: dict[str, Any] = {}
        for part in ("test", "val"):
            if not len(y[part]):
                continue
            view = x[part]
            own_steps = _lookback(pkg.preprocessing)
            if steps is not None and own_steps is not None:
                view = np.ascontiguousarray(view[:, -own_steps:])
            figures = evaluate_outputs(run_session(member_session, view), y[part], task, scale)
            own[f"{part}_{key}"] = figures[key]
        per_member.append(own)
    return metrics, per_member


def _parity_sample(
    held_out: np.ndarray, spec: SpecBase, session: Any, members_average: Any, scale: Any
) -> tuple[dict[str, bytes | Path], dict[str, Any]]:
    """sample.npz (raw texts/windows, graph inputs, the members' average computed member by
    member) and the manifest's parity: the merged graph must reproduce that average."""
    from scaledl.evaluate import run_session
    from scaledl.export.onnx_export import parity_error
    from scaledl.export.packaging import sample_npz
    from scaledl.preprocess import apply_preprocessing

    x = apply_preprocessing(held_out, spec)
    expected = members_average(held_out)
    err = parity_error(run_session(session, x), expected, scale)
    if not err <= PARITY_TOLERANCE:
        raise PackageError(
            f"the merged ensemble graph differs from its members' average by {err:.3g} "
            f"(tolerance {PARITY_TOLERANCE:g}); the members cannot be combined in one graph"
        )
    parity = {
        "reference": "members-average (each member's own ONNX Runtime session)",
        "max_abs_error": err,
        "tolerance": PARITY_TOLERANCE,
        "samples": len(x),
        **({"scale": "error_scale"} if scale is not None else {}),
    }
    return {SAMPLE: sample_npz(held_out, x, expected)}, parity


def _environment() -> dict[str, str]:
    import platform

    import onnxruntime

    return {
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "machine": platform.machine(),
    }
