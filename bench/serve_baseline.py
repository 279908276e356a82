"""The usual hand-written model server, for comparison: FastAPI + the PyTorch model per request.

Started by bench/serve.py as `uvicorn serve_baseline:create --factory` with BASELINE_PACKAGE
set. It follows FastAPI's tutorial shape: a pydantic body, a sync endpoint (run in FastAPI's
thread pool), `torch.inference_mode()`, the model's own PyTorch weights, JSON in and out.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from fastapi import FastAPI
from pydantic import BaseModel

from scaledl.export.reexport import load_module
from scaledl.package import open_package


class Item(BaseModel):
    data: list[float]


def create() -> FastAPI:
    package = open_package(Path(os.environ["BASELINE_PACKAGE"]))
    shape = package.manifest.signature.input.shape[1:]
    model = load_module(package).eval()
    app = FastAPI()

    @app.post("/predict")
    def predict(item: Item) -> dict[str, list[float]]:
        x = torch.tensor(item.data, dtype=torch.float32).reshape(1, *shape)
        with torch.inference_mode():
            y = model(x)
        return {"output": y[0].tolist()}

    return app
