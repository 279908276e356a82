"""The contenders bench/optimize.py times side by side: a name, a batch-1 call, test accuracy.

ONNX Runtime sessions are made the way scaledl makes them (`make_session`); OpenVINO ones are
scaledl's own OpenVINO engine (`OpenVinoSession`: LATENCY hint, 1 stream, f32 precision), so a
peer's model is run the way scaledl would run it in that engine.
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
    name: str, model: bytes | Path, parent_onnx: bytes, x: np.ndarray, y: np.ndarray, **kw: Any
) -> Contender:
    """A graph in OpenVINO, with the session settings scaledl's own OpenVINO engine uses."""
    import onnxruntime as ort

    from scaledl.export.engines import OpenVinoSession

    reference = ort.InferenceSession(parent_onnx, providers=["CPUExecutionProvider"])
    iname = reference.get_inputs()[0].name
    session = OpenVinoSession(model, reference, THREADS)
    outputs = np.concatenate(
        [session.run(None, {iname: x[i : i + 512]})[0] for i in range(0, len(x), 512)]
    )
    accuracy = float((outputs.argmax(1) == y).mean())
    kw.setdefault("file_bytes", len(model) if isinstance(model, bytes) else None)
    return Contender(name, lambda b: session.run(None, {iname: b}), accuracy, **kw)


def nncf_contenders(
    result: dict[str, Any], onnx: bytes, x: np.ndarray, y: np.ndarray
) -> list[Contender]:
    """NNCF's int8 IR, and the parent in the same engine: what OpenVINO itself costs here."""
    ours = openvino_contender(
        NNCF, Path(result["xml"]), onnx, x, y, file_bytes=result["file_bytes"], notes=[]
    )
    ours.notes = nncf_notes(result, ours.test_accuracy, THREADS)
    fp32 = openvino_contender(
        "openvino-fp32", onnx, onnx, x, y, notes=["the parent's model.onnx read by OpenVINO"]
    )
    return [ours, fp32]
