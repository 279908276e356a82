"""ONNX Runtime sessions with fixed, explicit thread settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

V2_DATATYPES = {
    "tensor(float)": "FP32",
    "tensor(float16)": "FP16",
    "tensor(bfloat16)": "BF16",
    "tensor(double)": "FP64",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(bool)": "BOOL",
    "tensor(string)": "BYTES",
}


def create_session(
    model: bytes | Path | str,
    threads: int | None = None,
    inter_threads: int = 1,
    providers: list[str] | None = None,
    optimization: str = "all",
    config: dict[str, str] | None = None,
) -> Any:
    """An ORT session; `config` holds session config entries (e.g. spinning off for servers)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    for key, value in (config or {}).items():
        opts.add_session_config_entry(key, value)
    if threads:
        opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = inter_threads
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    levels = {
        "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    opts.graph_optimization_level = levels[optimization]
    opts.log_severity_level = 3
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(
        source, sess_options=opts, providers=providers or ["CPUExecutionProvider"]
    )


def package_session(pkg: Any, threads: int | None = None) -> Any:
    """A session on a package's graph; a graph ONNX Runtime refuses is a PackageError naming it
    (a checksum only proves the file is the one listed, not that it is a model)."""
    from scaledl.errors import PackageError

    try:
        return create_session(pkg.onnx_path, threads=threads)
    except Exception as exc:  # ONNX Runtime raises its own exception types
        raise PackageError(
            f"package {pkg.source}: {pkg.onnx_path.name} does not load in ONNX Runtime "
            f"({str(exc)[:300]})"
        ) from None


def run_checked(session: Any, x: Any, source: object, batch_size: int = 512) -> Any:
    """Run a batch through the first input/output, in chunks; an input the graph does not accept
    (a manifest whose preprocessing does not match its graph) is a PackageError."""
    import numpy as np

    from scaledl.errors import PackageError

    name = session.get_inputs()[0].name
    try:
        outs = [
            session.run(None, {name: x[i : i + batch_size]})[0]
            for i in range(0, len(x), batch_size)
        ]
    except Exception as exc:  # ONNX Runtime raises its own exception types
        raise PackageError(
            f"package {source}: the graph does not accept inputs of shape {list(x.shape[1:])} "
            f"that its manifest's preprocessing produces ({str(exc)[:200]})"
        ) from None
    return np.concatenate(outs) if outs else np.empty((0,), np.float32)


def signature_of(session: Any) -> dict[str, list[dict[str, Any]]]:
    """V2-style signature {inputs, outputs}: name, datatype, shape with -1 for symbolic dims."""

    def describe(args: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": a.name,
                "datatype": V2_DATATYPES.get(a.type, a.type),
                "shape": [d if isinstance(d, int) else -1 for d in a.shape],
            }
            for a in args
        ]

    return {"inputs": describe(session.get_inputs()), "outputs": describe(session.get_outputs())}
