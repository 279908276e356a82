"""Open Inference Protocol (V2) request bodies and metric readings, shared by the tests."""

from __future__ import annotations

from typing import Any

import numpy as np

# numpy dtype → V2 datatype, for the tensors tests send
V2_DATATYPES = {
    "float32": "FP32",
    "float64": "FP64",
    "float16": "FP16",
    "int64": "INT64",
    "int32": "INT32",
    "int8": "INT8",
    "uint8": "UINT8",
    "bool": "BOOL",
}


def v2_tensor(name: str, x: Any, datatype: str | None = None) -> dict[str, Any]:
    """One V2 input tensor (JSON), its shape and datatype taken from the array."""
    array = np.asarray(x)
    return {
        "name": name,
        "shape": list(array.shape),
        "datatype": datatype or V2_DATATYPES[str(array.dtype)],
        "data": array.ravel().tolist(),
    }


def infer_body(x: Any, name: str = "input", **extra: Any) -> dict[str, Any]:
    """A V2 infer request with one FP32 input tensor (extra top-level fields as given)."""
    return {"inputs": [v2_tensor(name, np.asarray(x, np.float32))], **extra}


def metric_value(text: str, sample: str, **labels: str) -> float:
    """The sum of the samples named `sample` whose labels include `labels`, in Prometheus
    text (0 when none)."""
    from prometheus_client.parser import text_string_to_metric_families

    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())
    )
