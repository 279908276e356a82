"""ONNX Runtime int8 quantization: static QDQ with calibration, dynamic for MatMul-like ops.

- Static: quant_pre_process (shape inference + graph cleanup) first, then QDQ with QInt8 weights
  (per channel) × QUInt8 activations: the u8s8 kernels, the fast path on VNNI/AMX CPUs. Without
  VNNI (AVX2) ORT's u8s8 kernels use VPMADDUBSW, whose 16-bit intermediate sums can saturate;
  `reduce_range` (7-bit weights) avoids that. Normalization layers stay fp32 (precision, and
  ORT would quantize their 1-D weights per channel on a missing axis).
- Dynamic: only MatMul/Gemm/LSTM/Attention with constant weights. Conv is never quantized
  dynamically: ConvInteger runs 6–8× slower than fp32 Conv. ORT has no dynamic GRU.
- A modality front-end inside the graph (its constants are named `frontend.…`, e.g. an audio
  model's DFT basis and mel filterbank) stays fp32: its fixed weights are not learned, and an
  8-bit waveform would drown quiet sounds in quantization noise.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
STATIC_EXCLUDED = frozenset({"LayerNormalization", "InstanceNormalization", "BatchNormalization"})
DYNAMIC_OPS = ("MatMul", "Gemm", "LSTM", "Attention")
STATIC_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")  # where static QDQ puts the weights
FRONTEND_PREFIX = "frontend."  # constants of a modality front-end (models.frontend.WithFrontEnd)
INT8_MARKERS = frozenset(
    {
        "QuantizeLinear",
        "DynamicQuantizeLinear",
        "MatMulInteger",
        "ConvInteger",
        "DynamicQuantizeLSTM",
        "DynamicQuantizeMatMul",
        "QLinearConv",
        "QLinearMatMul",
        "QGemm",
        "DequantizeLinear",
    }
)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """ORT's quantizer prints progress to stdout and warns on the root logger; keep both out."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)


def load(onnx_bytes: bytes) -> Any:
    import onnx

    return onnx.load_from_string(onnx_bytes)


def op_counts(onnx_bytes: bytes) -> Counter[str]:
    return Counter(node.op_type for node in load(onnx_bytes).graph.node)


def weight_share(onnx_bytes: bytes, op_types: tuple[str, ...]) -> float:
    """Fraction of the weight elements (≥ 2-D initializers) that `op_types` consume.

    Tables that are only looked up (Gather: a text model's token embeddings) are left out:
    a run reads a few of their rows, so they say nothing about where the arithmetic is."""
    model = load(onnx_bytes)
    looked_up = {n.input[0] for n in model.graph.node if n.op_type == "Gather" and n.input}
    sizes = {
        t.name: int(np.prod(t.dims))
        for t in model.graph.initializer
        if len(t.dims) >= 2 and t.name not in looked_up
    }
    total = sum(sizes.values())
    if not total:
        return 0.0
    used = sum(
        sizes.get(name, 0) for n in model.graph.node if n.op_type in op_types for name in n.input
    )
    return min(used / total, 1.0)


def preprocess(onnx_bytes: bytes, workdir: Path) -> Path:
    """quant_pre_process (symbolic shape inference + ORT graph optimization) with fallbacks."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    source = workdir / "fp32.onnx"
    source.write_bytes(onnx_bytes)
    target = workdir / "pre.onnx"
    attempts: list[dict[str, bool]] = [
        {},
        {"skip_symbolic_shape": True},
        {"skip_optimization": True},
    ]
    for options in attempts:
        try:
            with _quiet():
                quant_pre_process(str(source), str(target), **options)
            return target
        except Exception as exc:  # some exporter graphs defeat one of the passes
            log.info("quant_pre_process %s failed (%s); retrying", options or "default", exc)
    log.warning("quant_pre_process failed on every setting; quantizing the graph as exported")
    return source


def frontend_nodes(path: Path) -> list[str]:
    """Nodes that read a front-end constant: kept out of quantization."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    constants = {t.name for t in graph.initializer if t.name.startswith(FRONTEND_PREFIX)}
    return [n.name for n in graph.node if constants & set(n.input)]


def _reader(x: np.ndarray, input_name: str, batch_size: int = 32) -> Any:
    """An ORT CalibrationDataReader over normalized rows."""
    from onnxruntime.quantization import CalibrationDataReader

    class Batches(CalibrationDataReader):
        def __init__(self) -> None:
            self._items = iter(
                [{input_name: x[i : i + batch_size]} for i in range(0, len(x), batch_size)]
            )

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._items, None)

    return Batches()


def quantize_static_int8(
    onnx_bytes: bytes,
    calibration_x: np.ndarray,
    *,
    calibration: str = "minmax",
    per_channel: bool = True,
    reduce_range: bool = False,
    percentile: float = 99.999,
) -> bytes:
    """Static QDQ int8 (QInt8 weights × QUInt8 activations) calibrated on `calibration_x`."""
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.registry import QDQRegistry

    methods = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }
    present = set(op_counts(onnx_bytes))
    op_types = sorted((present & set(QDQRegistry)) - STATIC_EXCLUDED)
    input_name = load(onnx_bytes).graph.input[0].name
    from scaledl.export.onnx_export import graph_array

    reader = _reader(graph_array(calibration_x), input_name)
    with tempfile.TemporaryDirectory(prefix="scaledl-q-") as tmp:
        work = Path(tmp)
        source = preprocess(onnx_bytes, work)
        target = work / "int8.onnx"
        with _quiet():
            quantize_static(
                str(source),
                str(target),
                reader,
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=op_types,
                per_channel=per_channel,
                reduce_range=reduce_range,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=methods[calibration],
                nodes_to_exclude=frontend_nodes(source),
                extra_options={"CalibPercentile": percentile},
            )
        return target.read_bytes()


def embedding_share(onnx_bytes: bytes) -> float:
    """Fraction of all weight elements in looked-up tables (Gather): a text model's embeddings."""
    model = load(onnx_bytes)
    looked_up = {n.input[0] for n in model.graph.node if n.op_type == "Gather" and n.input}
    sizes = {t.name: int(np.prod(t.dims)) for t in model.graph.initializer if len(t.dims) >= 2}
    total = sum(sizes.values())
    return sum(v for k, v in sizes.items() if k in looked_up) / total if total else 0.0


def quantize_dynamic_int8(
    onnx_bytes: bytes,
    *,
    per_channel: bool = False,
    reduce_range: bool = False,
    embeddings: bool = False,
) -> bytes:
    """Dynamic int8 of MatMul/Gemm/LSTM/Attention with constant weights (never Conv); with
    `embeddings`, looked-up tables (Gather) too: int8 rows, dequantized after the lookup."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="scaledl-q-") as tmp:
        work = Path(tmp)
        source = preprocess(onnx_bytes, work)
        target = work / "int8.onnx"
        with _quiet():
            quantize_dynamic(
                str(source),
                str(target),
                op_types_to_quantize=[*DYNAMIC_OPS, *(["Gather"] if embeddings else [])],
                per_channel=per_channel,
                reduce_range=reduce_range,
                weight_type=QuantType.QInt8,
                nodes_to_exclude=frontend_nodes(source),
                extra_options={
                    "MatMulConstBOnly": True,
                    "DefaultTensorType": onnx.TensorProto.FLOAT,
                },
            )
        return target.read_bytes()


def is_quantized(onnx_bytes: bytes) -> bool:
    return bool(set(op_counts(onnx_bytes)) & INT8_MARKERS)
