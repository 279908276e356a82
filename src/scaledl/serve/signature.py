"""A model's tensor signature and the checks a request must pass before ONNX Runtime sees it.

The package manifest's `signature` is the contract; at load it is compared with what the ONNX
graph really declares, so a package whose manifest lies is refused instead of failing requests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from scaledl.errors import PackageError, PayloadTooLargeError
from scaledl.serve.codec import DTYPES, BadRequest


@dataclass(frozen=True, slots=True)
class TensorSpec:
    name: str
    datatype: str
    shape: tuple[int, ...]  # -1 for a free dimension

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


@dataclass(frozen=True)
class Signature:
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @property
    def batched(self) -> bool:
        """Every tensor has a free leading dimension, so requests can be stacked along it."""
        tensors = self.inputs + self.outputs
        return all(t.shape and t.shape[0] == -1 for t in tensors)

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]

    def to_json(self) -> dict[str, Any]:
        return {
            "inputs": [t.to_json() for t in self.inputs],
            "outputs": [t.to_json() for t in self.outputs],
        }


def parse_signature(raw: dict[str, Any], source: str) -> Signature:
    def specs(key: str) -> tuple[TensorSpec, ...]:
        items = raw.get(key)
        if not isinstance(items, list) or not items:
            raise PackageError(f"{source}: signature.{key} must be a non-empty list")
        out = []
        for t in items:
            try:
                spec = TensorSpec(
                    str(t["name"]), str(t["datatype"]), tuple(int(d) for d in t["shape"])
                )
            except (KeyError, TypeError, ValueError):
                raise PackageError(
                    f"{source}: signature.{key} entries need name, datatype, shape"
                ) from None
            if spec.datatype not in DTYPES:
                raise PackageError(
                    f"{source}: tensor {spec.name!r} has datatype {spec.datatype}, which the "
                    f"server cannot feed to ONNX Runtime (supported: {', '.join(DTYPES)})"
                )
            out.append(spec)
        return tuple(out)

    return Signature(inputs=specs("inputs"), outputs=specs("outputs"))


def check_against_graph(signature: Signature, graph: dict[str, Any], source: str) -> None:
    """Refuse a package whose manifest signature disagrees with its ONNX graph."""
    for key, specs in (("inputs", signature.inputs), ("outputs", signature.outputs)):
        declared = {t["name"]: t for t in graph[key]}
        for spec in specs:
            real = declared.get(spec.name)
            if real is None:
                raise PackageError(
                    f"{source}: manifest names {key[:-1]} {spec.name!r}, the ONNX graph has "
                    f"{', '.join(declared)}"
                )
            if real["datatype"] != spec.datatype or len(real["shape"]) != len(spec.shape):
                raise PackageError(
                    f"{source}: {key[:-1]} {spec.name!r} is {spec.datatype}{list(spec.shape)} in "
                    f"the manifest but {real['datatype']}{real['shape']} in the ONNX graph"
                )


def validate_inputs(
    signature: Signature,
    inputs: dict[str, np.ndarray],
    allow_nonfinite: bool,
    max_samples: int | None = None,
) -> int:
    """Check names, datatypes, shapes, sample count and values; return the batch size (1 if
    unbatched). The sample count is checked before any value is looked at."""
    expected = signature.input_names
    unknown = [n for n in inputs if n not in expected]
    if unknown:
        raise BadRequest(f"unknown input {unknown[0]!r}; the model's inputs are {expected}")
    batch: int | None = None
    for spec in signature.inputs:
        array = inputs.get(spec.name)
        if array is None:
            raise BadRequest(f"input {spec.name!r} is missing; the model's inputs are {expected}")
        _check_tensor(spec, array)
        if signature.batched:
            if batch is not None and array.shape[0] != batch:
                raise BadRequest(
                    f"input {spec.name!r} has batch size {array.shape[0]}, other inputs {batch}"
                )
            batch = array.shape[0]
    if batch == 0:
        raise BadRequest("batch size 0: send at least one sample")
    if max_samples is not None and batch is not None and batch > max_samples:
        raise PayloadTooLargeError(
            f"the request holds {batch} samples; the server takes at most {max_samples} per "
            "request (--max-samples-per-request): split it into several requests"
        )
    if not allow_nonfinite:
        for spec in signature.inputs:
            _check_finite(spec, inputs[spec.name])
    return batch or 1


def _check_finite(spec: TensorSpec, array: np.ndarray) -> None:
    if array.dtype.kind == "f" and not _finite(array):
        raise BadRequest(
            f"input {spec.name!r} contains NaN or Inf values; the server refuses them "
            "(start it with --allow-nonfinite to pass them on)"
        )


def _check_tensor(spec: TensorSpec, array: np.ndarray) -> None:
    want = DTYPES[spec.datatype]
    if array.dtype != want and not (spec.datatype == "BYTES" and array.dtype == object):
        raise BadRequest(
            f"input {spec.name!r} has datatype {_v2(array)}, the model expects {spec.datatype}"
        )
    shape = array.shape
    if len(shape) != len(spec.shape) or any(d != -1 and d != s for d, s in zip(spec.shape, shape)):
        raise BadRequest(
            f"input {spec.name!r} has shape {list(shape)}, the model expects "
            f"{list(spec.shape)} (-1: any size)"
        )


def _finite(array: np.ndarray) -> bool:
    """No NaN/Inf: a sum is finite when every element is (one reduction, the common case)."""
    with np.errstate(over="ignore", invalid="ignore"):
        if math.isfinite(float(array.sum(dtype=np.float64))):
            return True
    return bool(np.isfinite(array).all())  # overflowed, or really not finite


def _v2(array: np.ndarray) -> str:
    for name, dtype in DTYPES.items():
        if array.dtype == dtype:
            return name
    return str(array.dtype)
