"""Graph methods: int8 static (QDQ), int8 dynamic, bf16 — each a config + a handler."""

from __future__ import annotations

import platform
from typing import Literal

from pydantic import Field

from scaledl.optimize import quantize
from scaledl.optimize.candidate import Candidate
from scaledl.optimize.context import SearchContext
from scaledl.optimize.evaluation import ensure_onnx
from scaledl.optimize.registry import MethodConfig, MethodSkipped, MethodSpace, register_method

Calibration = Literal["minmax", "entropy", "percentile"]


def _fp32_graph(candidate: Candidate, ctx: SearchContext) -> Candidate:
    if candidate.precision != "fp32":
        raise MethodSkipped(f"candidate is already {candidate.precision}")
    return ensure_onnx(candidate, ctx)


# -- static int8 (QDQ) ---------------------------------------------------------------------------


class StaticInt8Config(MethodConfig):
    calibration: Calibration = "minmax"
    per_channel: bool = True
    reduce_range: bool = False
    samples: int = Field(256, ge=8)
    percentile: float = Field(99.999, gt=50.0, le=100.0)

    def tag(self) -> str:
        parts = ["int8", "static", self.calibration]
        if self.reduce_range:
            parts.append("reduce-range")
        if not self.per_channel:
            parts.append("per-tensor")
        return ":".join(parts)


def _all_calibrations() -> list[Calibration]:
    return ["minmax", "percentile", "entropy"]


class StaticInt8Space(MethodSpace):
    calibrations: list[Calibration] = Field(
        default_factory=_all_calibrations,
        description="calibration methods to try, most promising first",
    )
    reduce_range: bool | Literal["auto", "both"] = Field(
        "auto",
        description="7-bit weights (true/false/both); auto: both on CPUs without VNNI, where "
        "AVX2's u8s8 kernels can saturate",
    )
    per_channel: bool = True
    samples: int = Field(256, ge=8, description="training rows used for calibration")
    percentile: float = Field(99.999, gt=50.0, le=100.0)
    min_weight_share: float = Field(
        0.5, ge=0.0, le=1.0, description="skip unless ops static QDQ covers hold this share"
    )

    def unavailable(self, ctx: SearchContext) -> str | None:
        graph = ctx.parent.onnx_path.read_bytes()
        share = quantize.weight_share(graph, quantize.STATIC_OPS)
        if share < self.min_weight_share:
            kept = sorted(set(quantize.op_counts(graph)) & {"GRU", "LSTM", "RNN"})
            why = f" ({', '.join(kept)} stays fp32 in static QDQ)" if kept else ""
            return (
                f"only {share:.0%} of the weights are in Conv/MatMul/Gemm{why}: static int8 "
                "would add quantize/dequantize steps around a small part of the model"
            )
        return None

    def configs(self, ctx: SearchContext) -> list[MethodConfig]:
        choice = self.reduce_range
        if choice == "auto":
            choice = False if ctx.cpu.has_vnni else "both"
        # 7-bit weights first: they are safe on every CPU, and full range is the alternative
        # that can saturate (both run the same kernels here, so neither is faster).
        ranges = [True, False] if choice == "both" else [bool(choice)]
        return [
            StaticInt8Config(
                calibration=c,
                per_channel=self.per_channel,
                reduce_range=r,
                samples=self.samples,
                percentile=self.percentile,
            )
            for r in ranges
            for c in dict.fromkeys(self.calibrations)
        ]


@register_method(
    "int8-static", config=StaticInt8Config, space=StaticInt8Space, kind="graph", default=True
)
def static_int8(candidate: Candidate, config: StaticInt8Config, ctx: SearchContext) -> Candidate:
    """ONNX Runtime static int8 QDQ (QInt8 per-channel weights × QUInt8 activations), calibrated."""
    base = _fp32_graph(candidate, ctx)
    assert base.onnx is not None
    graph = quantize.quantize_static_int8(
        base.onnx,
        ctx.calibration_inputs(config.samples),
        calibration=config.calibration,
        per_channel=config.per_channel,
        reduce_range=config.reduce_range,
        percentile=config.percentile,
    )
    if not quantize.is_quantized(graph):
        raise MethodSkipped("no operator of this graph can be quantized statically")
    return base.derive(
        config.tag(),
        onnx=graph,
        precision="int8",
        quantization={"mode": "static", "format": "QDQ", **config.model_dump()},
    )


# -- dynamic int8 ----------------------------------------------------------------------------------


class DynamicInt8Config(MethodConfig):
    per_channel: bool = False
    reduce_range: bool = False
    unroll_gru: bool = False
    embeddings: bool = False

    def tag(self) -> str:
        return (
            "int8:dynamic"
            + (":gru-unrolled" if self.unroll_gru else "")
            + (":embeddings" if self.embeddings else "")
        )


class DynamicInt8Space(MethodSpace):
    per_channel: bool = False
    reduce_range: bool = False
    embeddings: bool | Literal["auto"] = Field(
        "auto",
        description="also int8 token-embedding tables (Gather): 4× smaller; auto: tried when "
        "looked-up tables hold ≥ 20% of the weights",
    )
    min_weight_share: float = Field(
        0.5, ge=0.0, le=1.0, description="skip unless MatMul/Gemm/LSTM/GRU hold this share"
    )

    def _shares(self, ctx: SearchContext) -> tuple[float, bool]:
        graph = ctx.parent.onnx_path.read_bytes()
        # unrolling writes out a fixed number of steps: not for inputs of free length (text)
        has_gru = "GRU" in quantize.op_counts(graph) and not ctx.dynamic_axes
        ops = (
            (*quantize.DYNAMIC_OPS, "GRU") if has_gru and ctx.has_weights else quantize.DYNAMIC_OPS
        )
        return quantize.weight_share(graph, ops), has_gru

    def _tables(self, ctx: SearchContext) -> bool:
        if self.embeddings != "auto":
            return bool(self.embeddings)
        return quantize.embedding_share(ctx.parent.onnx_path.read_bytes()) >= 0.2

    def unavailable(self, ctx: SearchContext) -> str | None:
        share, _ = self._shares(ctx)
        if share < self.min_weight_share and not self._tables(ctx):
            return (
                f"only {share:.0%} of the weights are in MatMul/Gemm/LSTM/Attention; dynamic int8 "
                "never quantizes Conv (ConvInteger runs 6-8x slower than fp32)"
            )
        return None

    def configs(self, ctx: SearchContext) -> list[MethodConfig]:
        share, has_gru = self._shares(ctx)
        # the arithmetic's int8 only where it holds the weights; embedding tables for size
        variants = ([False] if share >= self.min_weight_share else []) + (
            [True] if self._tables(ctx) else []
        )
        return [
            DynamicInt8Config(
                per_channel=self.per_channel,
                reduce_range=self.reduce_range,
                unroll_gru=has_gru and ctx.has_weights,
                embeddings=e,
            )
            for e in variants
        ]


@register_method(
    "int8-dynamic", config=DynamicInt8Config, space=DynamicInt8Space, kind="graph", default=True
)
def dynamic_int8(candidate: Candidate, config: DynamicInt8Config, ctx: SearchContext) -> Candidate:
    """ONNX Runtime dynamic int8 of MatMul/Gemm/LSTM/Attention (GRU: unrolled into MatMuls)."""
    notes: list[str] = []
    if config.unroll_gru:
        if candidate.precision != "fp32" or candidate.module is None:
            raise MethodSkipped("unrolling a GRU needs the fp32 PyTorch model")
        from scaledl.optimize.recurrent import unroll_grus

        unrolled = candidate.derive("gru-unrolled", module=unroll_grus(candidate.module), onnx=None)
        base = ensure_onnx(unrolled, ctx, exporter="legacy")
        base.transforms = candidate.transforms
        base.module = candidate.module  # the package keeps the original (GRU) weights
        notes.append("GRU layers unrolled into per-step MatMuls so that they can be quantized")
    else:
        base = _fp32_graph(candidate, ctx)
        assert base.onnx is not None
        if "GRU" in quantize.op_counts(base.onnx):
            notes.append("ONNX Runtime has no dynamic int8 GRU: the GRU layers stay fp32")
    assert base.onnx is not None
    graph = quantize.quantize_dynamic_int8(
        base.onnx,
        per_channel=config.per_channel,
        reduce_range=config.reduce_range,
        embeddings=config.embeddings,
    )
    if not quantize.is_quantized(graph):
        raise MethodSkipped("no MatMul/Gemm/LSTM/Attention with constant weights to quantize")
    child = base.derive(
        config.tag(),
        onnx=graph,
        precision="int8",
        quantization={"mode": "dynamic", "ops": list(quantize.DYNAMIC_OPS), **config.model_dump()},
    )
    child.notes.extend(notes)
    return child


# -- bf16 ------------------------------------------------------------------------------------------

ARM_BF16_OPTION = "mlas.enable_gemm_fastmath_arm64_bfloat16"


class Bf16Config(MethodConfig):
    def tag(self) -> str:
        return "bf16:fastmath"


class Bf16Space(MethodSpace):
    min_batch: int = Field(
        16, ge=1, description="below this batch, bf16 casts cost more than they save"
    )

    def unavailable(self, ctx: SearchContext) -> str | None:
        cpu = ctx.cpu
        if not cpu.has_bf16:
            return (
                f"{cpu.model} has no bf16 instructions (no AMX-BF16 / AVX512-BF16 in "
                "/proc/cpuinfo): bf16 would be emulated and slower than fp32"
            )
        if ctx.config.batch_size < self.min_batch:
            return (
                f"batch size {ctx.config.batch_size} < {self.min_batch}: at small batches the "
                "fp32↔bf16 conversions cost more than bf16 arithmetic saves"
            )
        if platform.machine().lower() not in ("aarch64", "arm64"):
            return (
                "ONNX Runtime's CPU provider has no bf16 kernels on x86 (bf16 MatMul/Gemm/Add "
                "are not implemented); its only bf16 path is the ARM64 fast-math GEMM"
            )
        return None

    def configs(self, ctx: SearchContext) -> list[MethodConfig]:
        return [Bf16Config()]


@register_method("bf16", config=Bf16Config, space=Bf16Space, kind="graph", default=True)
def bf16(candidate: Candidate, config: Bf16Config, ctx: SearchContext) -> Candidate:
    """bf16 GEMMs where the CPU and ONNX Runtime have them (ARM64 fast-math), for large batches."""
    base = _fp32_graph(candidate, ctx)
    return base.derive(
        config.tag(),
        precision="bf16-fastmath",
        session_config={ARM_BF16_OPTION: "1"},
        quantization={"mode": "bf16-fastmath", "session_config": {ARM_BF16_OPTION: "1"}},
    )
