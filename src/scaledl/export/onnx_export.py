"""ONNX export as one file, a symbolic batch dimension, and a parity check against PyTorch."""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from scaledl.errors import ExportError

log = logging.getLogger(__name__)
# torch warns four times per export that torchvision ops are unavailable; we never use them.
logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
INPUT_NAME = "input"
OUTPUT_NAME = "output"
BATCH_DIM = "batch"


@dataclass
class ExportResult:
    onnx_bytes: bytes
    exporter: str
    opset: int
    max_abs_error: float
    parity_inputs: np.ndarray
    parity_outputs: np.ndarray


def has_recurrent_layers(model: Any) -> bool:
    import torch

    return any(isinstance(m, torch.nn.RNNBase) for m in model.modules())


def export_onnx(
    model: Any,
    example: np.ndarray,
    opset: int = 18,
    exporter: str = "auto",
    tolerance: float = 1e-4,
    error_scale: Any = None,
    dynamic_axes: dict[int, str] | None = None,
) -> ExportResult:
    """Export `model` (eval mode) to ONNX bytes and check parity on `example` (batch ≥ 2).

    A batch-1 example can silently freeze the batch dimension, so the example must hold at
    least two samples and the exported input's first dimension must come out symbolic.
    With `error_scale` (a regressor's per-target scale, e.g. a forecast in original units) the
    differences are measured on that scale: float32 keeps ~7 digits, so a forecast of 1,000 kW
    cannot agree to 1e-4 kW, but it does to 1e-4 of its standard deviation.
    `dynamic_axes` names other input axes that stay symbolic (text: {1: "sequence"}); integer
    examples (token ids) keep their dtype, anything else is fed as float32.
    """
    import torch

    if len(example) < 2:
        raise ExportError(
            "export needs at least 2 example inputs (batch-1 can freeze the batch dim)"
        )
    model = model.eval()
    choice = exporter
    if choice == "auto":
        choice = "legacy" if has_recurrent_layers(model) else "dynamo"
    example = graph_array(example)
    x = torch.from_numpy(example)
    axes = {0: BATCH_DIM, **(dynamic_axes or {})}
    try:
        data = _export_bytes(model, x, opset, choice, axes)
    except ExportError:
        raise
    except Exception as exc:
        if choice == "dynamo" and exporter == "auto":
            log.warning("dynamo export failed (%s); retrying with the legacy exporter", exc)
            choice = "legacy"
            data = _export_bytes(model, x, opset, choice, axes)
        else:
            raise ExportError(f"ONNX export ({choice}) failed: {exc}") from exc
    check_symbolic_batch(data, sorted(axes))
    with torch.no_grad():
        expected = model(x).numpy()
    actual = run_onnx(data, example)
    err = parity_error(actual, expected, error_scale)
    if not np.isfinite(err) or err > tolerance:
        raise ExportError(
            f"ONNX output differs from PyTorch by {err:.3g} (tolerance {tolerance:g}); "
            "the exported graph is not faithful"
        )
    return ExportResult(data, choice, opset, err, example, expected)


def parity_error(actual: np.ndarray, expected: np.ndarray, error_scale: Any = None) -> float:
    """Largest absolute difference, divided by `error_scale` (broadcast on the last axis)."""
    if not expected.size:
        return 0.0
    diff = np.abs(np.asarray(actual, np.float64) - np.asarray(expected, np.float64))
    if error_scale is not None:
        diff = diff / np.asarray(error_scale, np.float64)
    return float(np.max(diff))


def graph_array(x: np.ndarray) -> np.ndarray:
    """A batch as the graph takes it: integer arrays (token ids) as int64, others float32."""
    array = np.asarray(x)
    dtype = np.int64 if array.dtype.kind in "iu" else np.float32
    return np.ascontiguousarray(array, dtype=dtype)


def _export_bytes(
    model: Any, x: Any, opset: int, choice: str, axes: dict[int, str] | None = None
) -> bytes:
    import torch

    axes = axes or {0: BATCH_DIM}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if choice == "dynamo":
            program = torch.onnx.export(
                model,
                (x,),
                dynamo=True,
                opset_version=opset,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes=({i: torch.export.Dim(name) for i, name in axes.items()},),
                external_data=False,
                verbose=False,
            )
            if program is None:
                raise ExportError("dynamo exporter returned no program")
            program.optimize()
            return _model_bytes(program.model_proto)
        torch.onnx.export(
            model,
            (x,),
            buffer,  # type: ignore[arg-type]
            dynamo=False,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: dict(axes), OUTPUT_NAME: {0: BATCH_DIM}},
        )
    return buffer.getvalue()


def _model_bytes(proto: Any) -> bytes:
    data = proto.SerializeToString()
    if len(data) > 2**31 - 1:
        raise ExportError("model is over 2 GB; single-file ONNX export is not possible")
    return bytes(data)


def check_symbolic_batch(onnx_bytes: bytes, input_axes: list[int] | None = None) -> None:
    """The batch dimension of every graph input and output (and `input_axes` of the inputs)
    must be symbolic."""
    import onnx

    model = onnx.load_from_string(onnx_bytes)
    for tensor in list(model.graph.input) + list(model.graph.output):
        dims = tensor.type.tensor_type.shape.dim
        if not dims or dims[0].HasField("dim_value"):
            fixed = dims[0].dim_value if dims else "missing"
            raise ExportError(
                f"exported {tensor.name!r} has a fixed batch dimension ({fixed}); expected symbolic"
            )
    for tensor in model.graph.input:
        dims = tensor.type.tensor_type.shape.dim
        for axis in input_axes or []:
            if axis < len(dims) and dims[axis].HasField("dim_value"):
                raise ExportError(
                    f"exported {tensor.name!r} has a fixed dimension {axis} "
                    f"({dims[axis].dim_value}); expected symbolic"
                )


def run_onnx(onnx_bytes: bytes, x: np.ndarray) -> np.ndarray:
    from scaledl.export.runtime import create_session

    session = create_session(onnx_bytes, threads=1)
    name = session.get_inputs()[0].name
    return np.asarray(session.run(None, {name: graph_array(x)})[0])
