"""The usual hand-written model server, for comparison: FastAPI + the model per request.

Started by bench/serve.py as `uvicorn serve_baseline:create --factory` with BASELINE_PACKAGE
set. It follows FastAPI's tutorial shape: a pydantic body, a sync endpoint (run in FastAPI's
thread pool), JSON in and out. BASELINE_RUNTIME picks what runs the model:
`onnxruntime` (default: the package's ONNX graph with the same session options as
`scaledl serve`, so only the server differs) or `pytorch` (the package's PyTorch weights, eager,
under `torch.inference_mode()`: the runtime's speed mixed with the server's). BASELINE_THREADS
sets ONNX Runtime's intra-op threads.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel

from scaledl.package import open_package


class Item(BaseModel):
    data: list[float]


def onnxruntime_model(package: Path, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    from peers.ort_session import make_session

    session = make_session(str(open_package(package).onnx_path), threads)
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


def pytorch_model(package: Path) -> Callable[[np.ndarray], np.ndarray]:
    import torch

    from scaledl.export.reexport import load_module

    model = load_module(open_package(package)).eval()

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(x)).numpy()

    return run


def create() -> FastAPI:
    package = Path(os.environ["BASELINE_PACKAGE"])
    shape = open_package(package).manifest.signature.input.shape[1:]
    if os.environ.get("BASELINE_RUNTIME", "onnxruntime") == "pytorch":
        model = pytorch_model(package)
    else:
        model = onnxruntime_model(package, int(os.environ.get("BASELINE_THREADS", "1")))
    app = FastAPI()

    @app.post("/predict")
    def predict(item: Item) -> dict[str, list[float]]:
        x = np.asarray(item.data, dtype=np.float32).reshape(1, *shape)
        return {"output": model(x)[0].tolist()}

    return app
