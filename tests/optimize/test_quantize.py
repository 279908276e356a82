"""ONNX Runtime int8 quantization: accuracy kept, the right operators, the GRU path, bf16 rules."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from scaledl.bench.cpu import CpuInfo, parse_cpuinfo
from scaledl.config.optimize import OptimizeConfig
from scaledl.optimize import quantize
from scaledl.optimize.context import SearchContext, build_context
from scaledl.optimize.evaluation import run

AMD_AVX2 = """processor : 0
model name : AMD EPYC 7B13
flags : fpu sse sse2 avx avx2 fma f16c bmi2
"""
SAPPHIRE = """model name : Intel(R) Xeon(R) Platinum 8488C
flags : avx2 fma avx512f avx512bw avx512_vnni avx512_bf16 amx_bf16 amx_int8 amx_tile
"""


@pytest.fixture(scope="module")
def ctx(digits_package: Path) -> SearchContext:
    return build_context(digits_package, OptimizeConfig())


def _session(graph: bytes) -> object:
    from scaledl.export.runtime import create_session

    return create_session(graph, threads=1)


def _accuracy(graph: bytes, ctx: SearchContext) -> float:
    outputs = run(_session(graph), ctx.x_val)
    return float((outputs.argmax(1) == ctx.splits.val.y).mean())


@pytest.mark.parametrize("calibration", ["minmax", "entropy", "percentile"])
def test_static_int8_keeps_accuracy(ctx: SearchContext, calibration: str) -> None:
    fp32 = ctx.parent.onnx_path.read_bytes()
    graph = quantize.quantize_static_int8(
        fp32, ctx.calibration_inputs(128), calibration=calibration, reduce_range=True
    )
    ops = quantize.op_counts(graph)
    assert ops["QuantizeLinear"] > 0 and ops["DequantizeLinear"] > 0
    assert "ConvInteger" not in ops
    import onnx

    weights = [t for t in onnx.load_from_string(graph).graph.initializer if len(t.dims) == 4]
    assert weights and all(t.data_type == onnx.TensorProto.INT8 for t in weights)
    assert len(graph) < 0.7 * len(fp32)  # int8 weights; scales and graph overhead remain
    assert _accuracy(graph, ctx) >= _accuracy(fp32, ctx) - 0.03


def test_dynamic_int8_never_quantizes_conv(ctx: SearchContext) -> None:
    graph = quantize.quantize_dynamic_int8(ctx.parent.onnx_path.read_bytes())
    ops = quantize.op_counts(graph)
    assert "ConvInteger" not in ops and ops["Conv"] > 0
    from scaledl.optimize.handlers.quantization import DynamicInt8Space

    reason = DynamicInt8Space().unavailable(ctx)
    assert reason is not None and "Conv" in reason


def test_reduce_range_follows_the_cpu(ctx: SearchContext) -> None:
    from scaledl.optimize.handlers.quantization import StaticInt8Space

    space = StaticInt8Space(calibrations=["minmax"])
    avx2 = dataclasses.replace(ctx, cpu=parse_cpuinfo(AMD_AVX2))
    vnni = dataclasses.replace(ctx, cpu=parse_cpuinfo(SAPPHIRE))
    assert [c.reduce_range for c in space.configs(avx2)] == [True, False]  # type: ignore[attr-defined]
    assert [c.reduce_range for c in space.configs(vnni)] == [False]  # type: ignore[attr-defined]


def test_bf16_is_skipped_with_the_reason(ctx: SearchContext) -> None:
    from scaledl.optimize.handlers.quantization import Bf16Space

    space = Bf16Space()
    avx2 = dataclasses.replace(ctx, cpu=parse_cpuinfo(AMD_AVX2))
    assert "no bf16 instructions" in str(space.unavailable(avx2))
    amx = parse_cpuinfo(SAPPHIRE)
    small = dataclasses.replace(ctx, cpu=amx)
    assert "batch size 1 < 16" in str(space.unavailable(small))
    large = dataclasses.replace(ctx, cpu=amx, config=OptimizeConfig(batch_size=64))
    reason = space.unavailable(large)
    if amx.machine in ("x86_64", "AMD64"):
        assert reason is not None and "x86" in reason


def test_cpu_flags() -> None:
    amd, intel = parse_cpuinfo(AMD_AVX2), parse_cpuinfo(SAPPHIRE)
    assert amd.model == "AMD EPYC 7B13" and not amd.has_vnni and not amd.has_bf16
    assert intel.has_vnni and intel.has_bf16
    assert "avx512_vnni" in intel.to_json()["flags"]
    assert isinstance(CpuInfo("x", "x86_64", 2).summary(), str)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_unrolled_gru_is_the_same_model_and_quantizes(bidirectional: bool) -> None:
    import torch

    from scaledl.export.onnx_export import export_onnx
    from scaledl.models import create_model
    from scaledl.optimize.recurrent import unroll_grus

    torch.manual_seed(0)
    model = create_model("rnn", (1, 8, 8), 10, cell="gru", hidden=16, bidirectional=bidirectional)
    x = np.random.default_rng(0).normal(size=(6, 1, 8, 8)).astype(np.float32)
    unrolled = unroll_grus(model.eval())
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
        actual = unrolled(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(actual, expected, atol=1e-5)

    fused = export_onnx(model, x, exporter="legacy").onnx_bytes
    assert quantize.op_counts(quantize.quantize_dynamic_int8(fused))["GRU"] == 1  # ORT keeps it
    graph = quantize.quantize_dynamic_int8(export_onnx(unrolled, x, exporter="legacy").onnx_bytes)
    ops = quantize.op_counts(graph)
    assert "GRU" not in ops and ops["MatMulInteger"] > 0
    outputs = run(_session(graph), x)
    assert np.max(np.abs(outputs - expected)) < 0.1 * np.abs(expected).max() + 0.05


@pytest.mark.parametrize("bidirectional", [False, True])
def test_unrolled_gru_starts_from_a_given_state(bidirectional: bool) -> None:
    """A forecaster's segment decoder (`decoder: pmf`) continues from the encoder's state."""
    import torch

    from scaledl.optimize.recurrent import UnrolledGRU, unroll_grus

    torch.manual_seed(0)
    holder = torch.nn.ModuleDict(
        {"gru": torch.nn.GRU(5, 7, batch_first=True, bidirectional=bidirectional)}
    )
    unrolled = unroll_grus(holder)["gru"]
    assert isinstance(unrolled, UnrolledGRU)
    x, h0 = torch.randn(4, 3, 5), torch.randn(2 if bidirectional else 1, 4, 7)
    with torch.no_grad():
        expected, expected_h = holder["gru"](x, h0)
        actual, actual_h = unrolled(x, h0)
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(actual_h, expected_h, atol=1e-5, rtol=1e-5)


def test_static_int8_skips_models_it_barely_covers() -> None:
    import torch

    from scaledl.export.onnx_export import export_onnx
    from scaledl.models import create_model

    torch.manual_seed(0)
    model = create_model("rnn", (1, 8, 8), 10, cell="gru", hidden=32)
    x = np.zeros((2, 1, 8, 8), np.float32)
    graph = export_onnx(model, x, exporter="legacy").onnx_bytes
    assert quantize.weight_share(graph, quantize.STATIC_OPS) < 0.5
    assert quantize.weight_share(graph, (*quantize.STATIC_OPS, "GRU")) == pytest.approx(1.0)
