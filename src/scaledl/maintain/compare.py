"""Accuracy of the live and the new version on labelled rows, offline in ONNX Runtime."""

from __future__ import annotations

from typing import Literal

import numpy as np

from scaledl.evaluate import predict_raw
from scaledl.maintain.datasets import EvalSet
from scaledl.maintain.decision import Measured
from scaledl.package import Package


def predictions(pkg: Package, x_raw: np.ndarray) -> np.ndarray:
    return np.asarray(predict_raw(pkg, x_raw)).argmax(axis=1)


def offline(live: Package, candidate: Package, sets: list[EvalSet]) -> list[Measured]:
    out = []
    for s in sets:
        if not len(s):
            continue
        live_acc = float((predictions(live, s.x) == s.y).mean())
        cand_acc = float((predictions(candidate, s.x) == s.y).mean())
        out.append(Measured(_name(s.name), "offline", len(s), live_acc, cand_acc))
    return out


def _name(name: str) -> Literal["new", "reference"]:
    return "new" if name == "new" else "reference"
