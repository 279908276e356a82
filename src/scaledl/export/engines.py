"""Engines that run an ONNX graph: ONNX Runtime (always) and OpenVINO (where it is installed).

The ONNX graph stays the artifact; the engine is how a machine runs it. `optimize` times the
chosen graph under each installed engine and records the winner in the package
(`manifest.runtime.engine`); `serve` then uses it when it is installed there and its outputs
match ONNX Runtime's on the package's sample, and falls back to ONNX Runtime otherwise.

An OpenVINO session answers the ONNX Runtime calls the project makes (`get_inputs()`,
`get_outputs()`, `run(None, feeds)`), with its input/output metadata taken from an ONNX Runtime
session on the same graph, so the signature has one source. OpenVINO runs the graph at fp32
precision (`INFERENCE_PRECISION_HINT`): its default on some CPUs computes in bf16, which is a
different model.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any

import numpy as np

ONNXRUNTIME = "onnxruntime"
OPENVINO = "openvino"
ENGINES = (ONNXRUNTIME, OPENVINO)


def available_engines() -> list[str]:
    """The engines installed here, ONNX Runtime first."""
    found = [ONNXRUNTIME]
    if importlib.util.find_spec("openvino") is not None:
        found.append(OPENVINO)
    return found


class OpenVinoSession:
    """An OpenVINO compiled model behind ONNX Runtime's session calls (thread-safe runs)."""

    def __init__(self, model: bytes | Path | str, reference: Any, threads: int | None) -> None:
        import openvino as ov

        core = ov.Core()
        source = model if isinstance(model, bytes) else str(model)
        config: dict[str, Any] = {
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1,
            "INFERENCE_PRECISION_HINT": "f32",
        }
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        self._compiled = core.compile_model(core.read_model(source), "CPU", config)
        self._reference = reference
        # Looked up once: per call, ONNX Runtime's metadata calls cost as much as a small model.
        self._output_names = [o.name for o in reference.get_outputs()]
        # One infer request per thread: a request holds buffers and is not shared safely.
        self._local = threading.local()

    def get_inputs(self) -> Any:
        return self._reference.get_inputs()

    def get_outputs(self) -> Any:
        return self._reference.get_outputs()

    def run(self, output_names: list[str] | None, feeds: dict[str, np.ndarray]) -> list[Any]:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self._compiled.create_infer_request()
        # The inputs are read in place (no copy into the request's buffers); the outputs are
        # copied because the request reuses its buffers on the next call.
        result = request.infer(feeds, share_inputs=True, share_outputs=True)
        outputs = [np.array(value, copy=True) for value in result.to_tuple()]
        if output_names is None:
            return outputs
        return [outputs[self._output_names.index(name)] for name in output_names]


def engine_session(
    engine: str, model: bytes | Path | str, reference: Any, threads: int | None = None
) -> Any:
    """A session of `engine` on the graph; `reference` is an ONNX Runtime session on it."""
    if engine == ONNXRUNTIME:
        return reference
    if engine == OPENVINO:
        return OpenVinoSession(model, reference, threads)
    raise ValueError(f"unknown engine {engine!r}; valid engines: {', '.join(ENGINES)}")


def max_difference(a: list[Any], b: list[Any]) -> float:
    """The largest absolute difference between two engines' outputs (inf on a shape mismatch)."""
    worst = 0.0
    for x, y in zip(a, b, strict=True):
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        if x.shape != y.shape:
            return float("inf")
        if x.size:
            worst = max(worst, float(np.max(np.abs(x - y))))
    return worst if np.isfinite(worst) else float("inf")
