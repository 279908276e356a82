"""A kept candidate as a model package: graph, sample, weights, and lineage back to its parent.

Parity sample: an fp32 graph exported from PyTorch keeps PyTorch's outputs as its reference (the
parent's tolerance). A quantized graph cannot match PyTorch fp32 to 1e-4, so its reference is the
graph's own ONNX Runtime output on this machine, with a tolerance of a few output quantization
steps (4 × range / 255): a CPU with other int8 kernels (VNNI vs AVX2's saturating VPMADDUBSW)
may round differently, but a runtime that does not compute the same model fails `verify`. How far
the graph is from the parent's fp32 graph is recorded too (`max_abs_diff_vs_parent_fp32`) and,
more to the point, measured as accuracy.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import numpy as np

from scaledl.optimize.candidate import Candidate
from scaledl.optimize.evaluation import make_session, run, scoring_session
from scaledl.optimize.finalize import SearchResult
from scaledl.package import MODEL_JSON, MODEL_ONNX, PROFILE, SAMPLE, WEIGHTS, write_package

QUANT_STEPS = 4.0


def parity_for(candidate: Candidate, result: SearchResult) -> tuple[np.ndarray, dict[str, Any]]:
    """(reference outputs for sample.npz, manifest `parity`)."""
    ctx = result.ctx
    session = make_session(candidate, threads=1)
    own = run(session, ctx.example)
    parity = candidate.parity
    if candidate.precision == "fp32" and parity.get("reference") == "pytorch-fp32":
        from scaledl.export.onnx_export import parity_error
        from scaledl.modalities.scales import parity_scale

        reference = np.asarray(parity["outputs"], dtype=np.float32)
        scale = parity_scale(ctx.parent) if parity.get("scale") else None
        return reference, {
            "reference": "pytorch-fp32",
            "max_abs_error": parity_error(own, reference, scale),
            "tolerance": float(parity["tolerance"]),
            "samples": len(reference),
            **({"scale": parity["scale"]} if scale is not None else {}),
        }
    span = float(own.max() - own.min()) if own.size else 0.0
    tolerance = max(1e-4, QUANT_STEPS * span / 255.0)
    fp32 = run(make_session(result.parent, threads=1), ctx.example)
    return own, {
        "reference": f"onnxruntime-{candidate.precision} (this graph on {ctx.cpu.model})",
        "max_abs_error": 0.0,
        "tolerance": tolerance,
        "tolerance_rule": f"{QUANT_STEPS:g} output quantization steps (range / 255)",
        "max_abs_diff_vs_parent_fp32": float(np.max(np.abs(own.astype(np.float64) - fp32))),
        "samples": len(own),
    }


def write_candidate_package(result: SearchResult, candidate: Candidate, dest: Path) -> Path:
    from scaledl.evaluate import confusion_matrix
    from scaledl.export.packaging import sample_npz, weights_bytes

    ctx = result.ctx
    parent = ctx.parent
    assert candidate.onnx is not None and candidate.latency is not None
    reference, parity = parity_for(candidate, result)
    files: dict[str, bytes | Path] = {
        MODEL_ONNX: candidate.onnx,
        SAMPLE: sample_npz(ctx.example_raw, ctx.example, reference),
    }
    spec = candidate.spec
    if candidate.module is not None and spec is not None:
        files[WEIGHTS] = weights_bytes(candidate.module)
        files[MODEL_JSON] = json.dumps(spec.to_json(), indent=2).encode()
    metrics = _metrics(candidate, result)
    decision = parent.manifest.decision
    if ctx.task == "classification" and parent.labels:
        outputs = outputs_on_test(candidate, ctx)
        predicted = outputs.argmax(axis=1)
        if decision is not None:  # the parent's threshold, kept (chosen on validation)
            from scaledl.metrics import apply_decision

            predicted, at = apply_decision(outputs, ctx.splits.test.y, decision.model_dump())
            metrics.update(at)
        metrics["confusion_matrix"] = confusion_matrix(
            ctx.splits.test.y, predicted, len(parent.labels)
        )
    lineage = parent.manifest.lineage.model_dump(mode="json")
    lineage.update(
        {
            "parent": str(parent.source.resolve()),
            "parent_name": parent.name,
            "parent_version": parent.version,
            "transforms": list(candidate.transforms),
            "optimize": {
                "candidate": candidate.id,
                "chosen": result.choice.chosen is candidate,
                # the budget it was chosen under: `scaledl maintain` re-runs the same search
                "config": ctx.config.model_dump(mode="json"),
            },
        }
    )
    manifest: dict[str, Any] = {
        "name": f"{parent.name}-{candidate.id}",
        "version": parent.version,
        "task": ctx.task,
        "family": spec.family if spec is not None else parent.manifest.family,
        "knobs": spec.knobs if spec is not None else parent.manifest.knobs,
        "signature": parent.manifest.signature.model_dump(),
        "labels": parent.labels,
        "preprocessing": ctx.preprocessing.model_dump(mode="json"),
        "precision": candidate.precision,
        "metrics": metrics,
        "parity": parity,
        "export": {
            **(candidate.export or parent.manifest.export.model_dump(mode="json")),
            **({"quantization": candidate.quantization} if candidate.quantization else {}),
        },
        "lineage": lineage,
        "environment": _environment(parent.manifest.environment, ctx.cpu.model),
    }
    runtime: dict[str, Any] = {}
    if candidate.session_config:
        runtime["session_config"] = dict(candidate.session_config)
    if candidate.engine is not None:  # measured on this machine: which engine runs it fastest
        runtime["engine"] = candidate.engine["engine"]
        runtime["engines"] = candidate.engine
    if runtime:
        manifest["runtime"] = runtime
    if decision is not None:
        manifest["decision"] = decision.model_dump()
    if PROFILE in parent.manifest.files:  # monitoring compares live traffic with this graph
        files[PROFILE], manifest["monitoring"] = _profile(candidate, result)
    return write_package(dest, manifest, files)


def _profile(candidate: Candidate, result: SearchResult) -> tuple[bytes, Any]:
    """The monitoring reference profile, with this candidate's graph as the model."""
    from scaledl.monitor.reference import profile_for_splits

    ctx = result.ctx
    session = scoring_session(candidate, ctx)
    heldout = None
    # Scored already (never for forecasters, whose profile reads other windows): only the
    # validation rows are new.
    if candidate.test_outputs is not None:
        heldout = np.concatenate([run(session, ctx.x_val), candidate.test_outputs])
    built = profile_for_splits(
        ctx.splits,
        ctx.preprocessing,
        lambda x: run(session, x),
        ctx.task,
        heldout_outputs=heldout,
        inputs=ctx.profile_inputs(),
    )
    return built.to_bytes(), built.manifest_entry(PROFILE)


def outputs_on_test(candidate: Candidate, ctx: Any) -> np.ndarray:
    """The graph's outputs on the test split: those the final step kept, else a new pass."""
    if candidate.test_outputs is not None:
        return np.asarray(candidate.test_outputs)
    return run(scoring_session(candidate, ctx), ctx.x_test)


def _metrics(c: Candidate, result: SearchResult) -> dict[str, Any]:
    assert c.latency is not None
    cfg = result.ctx.config
    metrics: dict[str, Any] = dict(c.test)
    metrics.update({f"val_{k}": v for k, v in c.val.items()})
    metrics["accuracy_drop_val"] = result.constraints.drop(c)
    if result.constraints.budget == "error":
        metrics["error_increase_val"] = result.constraints.error_increase(c)
    metrics["latency"] = {
        "target": cfg.target,
        "cpu": result.ctx.cpu.model,
        "threads": cfg.threads,
        "batch_size": c.latency.batch_size,
        "p25_ms": c.latency.p25_ms,
        "p50_ms": c.latency.p50_ms,
        "p95_ms": c.latency.p95_ms,
        "p99_ms": c.latency.p99_ms,
        "throughput": c.latency.throughput,
    }
    metrics["model_bytes"] = c.size_bytes
    for key in ("params_after", "macs_after"):
        if key in c.structure:
            metrics[key.removesuffix("_after")] = c.structure[key]
    return metrics


def _environment(parent_env: dict[str, Any], cpu: str) -> dict[str, Any]:
    import onnxruntime

    return {
        **parent_env,
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "machine": platform.machine(),
        "cpu": cpu,
    }
