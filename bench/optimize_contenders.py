"""The contenders bench/optimize.py times side by side: a name, a batch-1 call, test accuracy.

ONNX Runtime sessions are made the way scaledl makes them (`make_session`). OpenVINO models (a
peer's IR runs nowhere else) are compiled with the settings of scaledl's OpenVINO engine (LATENCY
hint, 1 stream, f32 precision, the same thread count) but called directly, without that engine's
ONNX-Runtime-shaped wrapper, which costs a few hundredths of a millisecond per call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from optimize_nncf import nncf_notes

THREADS = 1  # every contender, every engine: the same thread count
NNCF = "nncf-accuracy-aware-int8"


@dataclass
class Contender:
    name: str
    run: Any  # callable(normalized batch) -> outputs
    test_accuracy: float
    file_bytes: int | None
    notes: list[str] = field(default_factory=list)


def ort_contender(
    name: str,
    onnx: bytes,
    x: np.ndarray,
    y: np.ndarray,
    config: dict[str, str] | None = None,
    **kw: Any,
) -> Contender:
    from scaledl.optimize.candidate import Candidate
    from scaledl.optimize.evaluation import make_session

    graph = Candidate(id=name, transforms=[], onnx=onnx, session_config=dict(config or {}))
    session = make_session(graph, THREADS)
    iname = session.get_inputs()[0].name
    outputs = np.concatenate(
        [session.run(None, {iname: x[i : i + 512]})[0] for i in range(0, len(x), 512)]
    )
    accuracy = float((outputs.argmax(1) == y).mean())
    return Contender(name, lambda b: session.run(None, {iname: b}), accuracy, len(onnx), **kw)


def eager_contender(name: str, module: Any, x: np.ndarray, y: np.ndarray) -> Contender:
    import torch

    module = module.eval()
    with torch.inference_mode():
        outputs = torch.cat(
            [module(torch.from_numpy(x[i : i + 512])) for i in range(0, len(x), 512)]
        )
    accuracy = float((outputs.argmax(1).numpy() == y).mean())

    def run(batch: np.ndarray) -> Any:
        with torch.inference_mode():
            return module(torch.from_numpy(batch))

    return Contender(name, run, accuracy, None)


def openvino_contender(
    name: str, model: bytes | Path, x: np.ndarray, y: np.ndarray, **kw: Any
) -> Contender:
    """A graph in OpenVINO, compiled with scaledl's OpenVINO settings and called the leanest
    documented way (`compiled_model(x)`: OpenVINO copies the outputs out of its buffers)."""
    import openvino as ov

    core = ov.Core()
    config = {
        "PERFORMANCE_HINT": "LATENCY",
        "NUM_STREAMS": 1,
        "INFERENCE_PRECISION_HINT": "f32",  # the default on some CPUs is bf16: another model
        "INFERENCE_NUM_THREADS": THREADS,
    }
    source = core.read_model(model if isinstance(model, bytes) else str(model))
    compiled = core.compile_model(source, "CPU", config)
    outputs = np.concatenate([compiled(x[i : i + 512])[0] for i in range(0, len(x), 512)])
    accuracy = float((outputs.argmax(1) == y).mean())
    kw.setdefault("file_bytes", len(model) if isinstance(model, bytes) else None)
    return Contender(name, lambda b: compiled(b)[0], accuracy, **kw)


def nncf_contenders(
    result: dict[str, Any], onnx: bytes, x: np.ndarray, y: np.ndarray
) -> list[Contender]:
    """NNCF's int8 IR, and the parent in the same engine: what OpenVINO itself costs here."""
    ours = openvino_contender(
        NNCF, Path(result["xml"]), x, y, file_bytes=result["file_bytes"], notes=[]
    )
    ours.notes = nncf_notes(result, ours.test_accuracy, THREADS)
    fp32 = openvino_contender(
        "openvino-fp32", onnx, x, y, notes=["the parent's model.onnx read by OpenVINO"]
    )
    return [ours, fp32]
