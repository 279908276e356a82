"""Publish a trained nn.Module as a model package: export with a parity check, score the ONNX
graph on the test split, build the monitoring profile, write every file and the manifest.

The orchestration step above the stages it composes (export, evaluation, monitoring, the package
format); training, `scaledl maintain` and a user's own module all publish through it.
"""

from __future__ import annotations

import json
import logging
import platform
from pathlib import Path
from typing import Any

import numpy as np

from scaledl.config.export import ExportConfig
from scaledl.contract import Signature, SpecBase
from scaledl.data.dataset import DataSplits
from scaledl.export.onnx_export import export_onnx
from scaledl.export.packaging import sample_npz, signature, weights_bytes
from scaledl.package import MODEL_JSON, MODEL_ONNX, PROFILE, RECIPE, SAMPLE, WEIGHTS, write_package
from scaledl.preprocess import apply_preprocessing

log = logging.getLogger(__name__)


def package_model(
    model: Any,
    splits: DataSplits,
    preprocessing: SpecBase,
    out: Path,
    *,
    name: str,
    task: str = "classification",
    family: str = "custom",
    model_spec: dict[str, Any] | None = None,
    export: ExportConfig | None = None,
    recipe_yaml: str | None = None,
    lineage: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    extra_files: dict[str, bytes] | None = None,
    version: str = "1",
    profile: bool = True,
    threshold: str | float = "argmax",
) -> Path:
    """Export, check parity, score the ONNX graph on the test split, and write the package.

    With `profile`, the monitoring reference profile (`profile.npz`) is built from the splits and
    the exported graph, unless `extra_files` already brings one.
    """
    from scaledl.evaluate import confusion_matrix, run_session
    from scaledl.export.runtime import create_session
    from scaledl.metrics import evaluate_outputs
    from scaledl.modalities import modality_of

    export = export or ExportConfig()
    model = model.eval()
    unit = modality_of(preprocessing)
    preprocessing = unit.finish(preprocessing, model)
    held_out = splits.test.x[: export.sample_size]
    if len(held_out) < 2:
        held_out = np.concatenate([splits.test.x, splits.val.x])[: max(2, export.sample_size)]

    scale = unit.error_scale(preprocessing) if task == "regression" else None
    example = apply_preprocessing(held_out, preprocessing)
    result = export_onnx(
        model,
        example,
        export.opset,
        export.exporter,
        export.parity_tolerance,
        scale,
        dynamic_axes=unit.dynamic_axes(),
    )
    session = create_session(result.onnx_bytes)
    test_out = run_session(session, apply_preprocessing(splits.test.x, preprocessing))
    test_metrics = evaluate_outputs(test_out, splits.test.y, task, scale)
    output_shape = tuple(int(d) for d in result.parity_outputs.shape[1:])
    all_metrics: dict[str, Any] = {**test_metrics, **(metrics or {})}
    all_metrics.update(
        unit.evaluation_extras(preprocessing, splits.test.x, splits.test.y, test_out)
    )
    all_metrics["test_samples"] = len(splits.test)
    all_metrics["parity_max_abs_error"] = result.max_abs_error
    decision = None
    if task == "classification" and splits.labels:
        from scaledl.metrics import apply_decision

        decision = _decision(session, splits, preprocessing, threshold)
        predicted = test_out.argmax(axis=1)
        if decision is not None:
            predicted, at = apply_decision(test_out, splits.test.y, decision)
            all_metrics.update(at)
        all_metrics["confusion_matrix"] = confusion_matrix(
            splits.test.y, predicted, len(splits.labels)
        )

    files: dict[str, bytes | Path] = {
        MODEL_ONNX: result.onnx_bytes,
        WEIGHTS: weights_bytes(model),
        SAMPLE: sample_npz(held_out, result.parity_inputs, result.parity_outputs),
    }
    if model_spec is not None:
        files[MODEL_JSON] = json.dumps(model_spec, indent=2).encode()
    if recipe_yaml is not None:
        files[RECIPE] = recipe_yaml.encode()
    monitoring = None
    if profile and PROFILE not in (extra_files or {}):
        from scaledl.monitor.reference import profile_for_splits

        built = profile_for_splits(splits, preprocessing, lambda x: run_session(session, x), task)
        files[PROFILE], monitoring = built.to_bytes(), built.manifest_entry(PROFILE)
    files.update(extra_files or {})
    manifest = {
        "name": name,
        "version": str(version),
        "task": task,
        "family": family,
        "knobs": (model_spec or {}).get("knobs", {}),
        **_signatures(unit, preprocessing, splits.sample_shape, output_shape),
        "labels": splits.labels,
        "preprocessing": preprocessing.model_dump(mode="json"),
        "metrics": all_metrics,
        "parity": {
            "reference": "pytorch-fp32",
            "max_abs_error": result.max_abs_error,
            "tolerance": export.parity_tolerance,
            "samples": len(example),
            **({"scale": "error_scale"} if scale is not None else {}),
        },
        "export": {"exporter": result.exporter, "opset": result.opset},
        "lineage": {
            "data_fingerprint": splits.fingerprint,
            "split_seed": splits.split_seed,
            "split_sizes": splits.sizes,
            "parent": None,
            "transforms": [],
            **(lineage or {}),
        },
        "environment": _environment(),
        "monitoring": monitoring,
        **({"decision": decision} if decision is not None else {}),
    }
    path = write_package(out, manifest, files)
    log.info("wrote package %s (test %s)", path, {k: round(v, 4) for k, v in test_metrics.items()})
    return path


def _decision(
    session: Any, splits: DataSplits, preprocessing: SpecBase, threshold: str | float
) -> dict[str, Any] | None:
    """A binary classifier's threshold, chosen on the validation split's graph outputs."""
    from scaledl.evaluate import run_session
    from scaledl.metrics import choose_decision, softmax

    if threshold == "argmax" or not splits.labels or len(splits.val) == 0:
        return None
    val_out = run_session(session, apply_preprocessing(splits.val.x, preprocessing))
    return choose_decision(threshold, softmax(val_out), splits.val.y, splits.labels)


def _signatures(
    unit: Any, preprocessing: SpecBase, sample_shape: tuple[int, ...], output_shape: tuple[int, ...]
) -> dict[str, Any]:
    """The manifest's `signature` (what clients send) and, when the graph reads something else
    (text: token ids for BYTES strings), its `graph_signature`."""
    graph = unit.graph_signature(preprocessing, signature(sample_shape, output_shape))
    served = unit.served_inputs(preprocessing, list(graph.inputs))
    if served == list(graph.inputs):
        return {"signature": graph.model_dump()}
    client = Signature(inputs=served, outputs=graph.outputs)
    return {"signature": client.model_dump(), "graph_signature": graph.model_dump()}


def _environment() -> dict[str, str]:
    import onnxruntime
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "machine": platform.machine(),
    }
