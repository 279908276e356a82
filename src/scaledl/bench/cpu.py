"""What the CPU can do, read from /proc/cpuinfo: the int8/bf16 instruction sets that decide
which quantized kernels are fast here (and which are only emulated)."""

from __future__ import annotations

import functools
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CPUINFO = Path("/proc/cpuinfo")
# Flags that change which ONNX Runtime / oneDNN kernels run (x86 names as Linux reports them;
# `bf16` / `i8mm` are the ARM64 names).
INTERESTING = (
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_bf16",
    "amx_int8",
    "amx_tile",
    "bf16",
    "i8mm",
    "asimddp",
)


@dataclass(frozen=True)
class CpuInfo:
    model: str
    machine: str
    logical_cores: int
    flags: frozenset[str] = field(default_factory=frozenset)

    @property
    def has_vnni(self) -> bool:
        """int8 dot products in one instruction (VNNI/AMX on x86, SDOT/I8MM on ARM)."""
        return bool(self.flags & {"avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm"})

    @property
    def has_bf16(self) -> bool:
        """Native bf16 arithmetic (AMX-BF16 / AVX512-BF16 on x86, BF16 on ARM)."""
        return bool(self.flags & {"amx_bf16", "avx512_bf16", "bf16"})

    def summary(self) -> str:
        shown = [f for f in INTERESTING if f in self.flags]
        return (
            f"{self.model} ({self.machine}, {self.logical_cores} cores; {' '.join(shown) or '-'})"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "machine": self.machine,
            "logical_cores": self.logical_cores,
            "flags": [f for f in INTERESTING if f in self.flags],
            "int8_dot_product": self.has_vnni,
            "bf16": self.has_bf16,
        }


def parse_cpuinfo(text: str) -> CpuInfo:
    model, flags = "unknown CPU", set[str]()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "cpu model", "hardware") and model == "unknown CPU":
            model = value.strip() or model
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    return CpuInfo(model, platform.machine(), os.cpu_count() or 1, frozenset(flags))


@functools.cache
def cpu_info() -> CpuInfo:
    try:
        text = CPUINFO.read_text()
    except OSError:
        text = ""
    return parse_cpuinfo(text)
