"""`bench_packages`: latency percentiles, throughput, peak memory and file size of packages.

Every package's ONNX graph runs in ONNX Runtime; a package that carries PyTorch weights also runs
as PyTorch eager fp32, so the speed-up is a ratio measured in one run. All contenders of a batch
size are timed interleaved (see latency.interleaved) with the same fixed thread count. Peak
memory is measured per model and runtime in a fresh process (see probe.py).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scaledl.bench.cpu import cpu_info
from scaledl.bench.latency import LatencyStats, interleaved_rounds
from scaledl.bench.probe import probe_memory
from scaledl.errors import PackageError, ScaledlError, UsageError
from scaledl.package import SAMPLE, Package, open_package

log = logging.getLogger(__name__)
Runner = Callable[[np.ndarray], Any]
ORT = "onnxruntime"
EAGER = "pytorch-eager-fp32"


@dataclass
class RuntimeBench:
    runtime: str
    latency: dict[int, LatencyStats] = field(default_factory=dict)
    memory: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "runtime": self.runtime,
            "latency": {str(b): s.to_json() for b, s in sorted(self.latency.items())},
            "memory": self.memory,
        }


@dataclass
class PackageBench:
    path: str
    name: str
    precision: str
    transforms: list[str]
    model_file_bytes: int
    package_bytes: int
    runtimes: list[RuntimeBench]

    def runtime(self, name: str) -> RuntimeBench | None:
        return next((r for r in self.runtimes if r.runtime == name), None)

    def speedups(self) -> dict[str, float]:
        """PyTorch eager p50 / ONNX Runtime p50 per batch size (packages with weights)."""
        ort, eager = self.runtime(ORT), self.runtime(EAGER)
        if ort is None or eager is None:
            return {}
        return {
            str(b): eager.latency[b].p50_ms / ort.latency[b].p50_ms
            for b in ort.latency
            if b in eager.latency and ort.latency[b].p50_ms > 0
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "name": self.name,
            "precision": self.precision,
            "transforms": self.transforms,
            "model_file_bytes": self.model_file_bytes,
            "package_bytes": self.package_bytes,
            "runtimes": [r.to_json() for r in self.runtimes],
            "speedup_vs_eager_p50": {k: round(v, 3) for k, v in self.speedups().items()},
        }


def sample_inputs(pkg: Package) -> np.ndarray:
    """The package's own normalized sample inputs (every package written by scaledl has one)."""
    from scaledl.package_files import read_npz

    if SAMPLE not in pkg.manifest.files:
        raise UsageError(f"package {pkg.source} has no {SAMPLE}; cannot build benchmark inputs")
    x = read_npz(pkg, SAMPLE, ("input",))["input"]
    if len(x) == 0:
        raise UsageError(f"package {pkg.source}: {SAMPLE} holds no inputs to benchmark with")
    dtype = np.int64 if x.dtype.kind in "iu" else np.float32  # token ids (text) stay integers
    return np.ascontiguousarray(x, dtype=dtype)


def tile_batch(x: np.ndarray, batch_size: int) -> np.ndarray:
    reps = -(-batch_size // len(x))
    return np.ascontiguousarray(np.concatenate([x] * reps)[:batch_size])


def ort_runner(onnx: bytes | Path, threads: int) -> Runner:
    from scaledl.export.runtime import create_session

    session = create_session(onnx, threads=threads)
    name = session.get_inputs()[0].name
    outputs = [session.get_outputs()[0].name]
    return lambda x: session.run(outputs, {name: x})


def eager_runner(pkg: Package, threads: int, trust_code: bool = False) -> Runner:
    import torch

    from scaledl.export.rebuild import load_module

    torch.set_num_threads(threads)
    module = load_module(pkg, trust_code=trust_code).eval()

    def run(x: np.ndarray) -> Any:
        with torch.inference_mode():
            return module(torch.from_numpy(x))

    return run


def _bind(runner: Runner, x: np.ndarray) -> Callable[[], Any]:
    return lambda: runner(x)


def bench_packages(
    paths: Sequence[Path | str],
    batch_sizes: Sequence[int] = (1, 8, 64),
    threads: int = 1,
    rounds: int = 5,
    seconds_per_round: float = 0.2,
    eager: bool = True,
    trust_code: bool = False,
) -> list[PackageBench]:
    """Benchmark every package at every batch size, all contenders interleaved per batch size.

    A package whose model.json names a custom class gets no eager row unless `trust_code`.
    """
    from scaledl.export.rebuild import custom_class

    if threads < 1:
        raise UsageError(f"--threads {threads}: expected a positive integer")
    if eager:
        import torch

        torch.set_num_threads(threads)
    results: list[PackageBench] = []
    # key "index/runtime" → (runner, sample inputs, the RuntimeBench it fills)
    contenders: dict[str, tuple[Runner, np.ndarray, RuntimeBench]] = {}
    for index, path in enumerate(paths):
        pkg = open_package(path)
        x = sample_inputs(pkg)
        makers: dict[str, Callable[[], Runner]] = {
            ORT: functools.partial(ort_runner, pkg.onnx_path, threads)
        }
        if eager and pkg.has_weights:
            code = custom_class(pkg)
            if code is None or trust_code:
                makers[EAGER] = functools.partial(eager_runner, pkg, threads, trust_code)
            else:
                log.warning(
                    "%s: no PyTorch eager timing: its model.json names a custom class (%s) "
                    "that only --trust-code imports",
                    pkg.source,
                    code,
                )
        runtimes = []
        for runtime, make in makers.items():
            try:
                runner = make()
            except ScaledlError:
                raise
            except Exception as exc:  # ONNX Runtime's own types for a graph it refuses
                engine = "ONNX Runtime" if runtime == ORT else "PyTorch"
                raise PackageError(
                    f"package {pkg.source}: {pkg.onnx_path.name} does not load in {engine} "
                    f"({str(exc)[:300]})"
                ) from None
            # a fresh process per model: the peak memory of this model alone
            memory = probe_memory(runtime, pkg.path, max(batch_sizes), threads, trust_code)
            bench = RuntimeBench(runtime, memory=memory)
            runtimes.append(bench)
            contenders[f"{index}/{runtime}"] = (runner, x, bench)
        results.append(_describe(pkg, runtimes))
    for batch in batch_sizes:
        calls = {key: _bind(run, tile_batch(x, batch)) for key, (run, x, _) in contenders.items()}
        timed = interleaved_rounds(calls, rounds=rounds, seconds_per_round=seconds_per_round)
        for key, parts in timed.items():
            contenders[key][2].latency[batch] = LatencyStats.from_rounds(parts, batch)
    log.info("benchmarked %d package(s) on %s", len(results), cpu_info().summary())
    return results


def _describe(pkg: Package, runtimes: list[RuntimeBench]) -> PackageBench:
    files = pkg.manifest.files
    return PackageBench(
        path=str(pkg.source),
        name=pkg.name,
        precision=pkg.manifest.precision,
        transforms=list(pkg.manifest.lineage.transforms),
        model_file_bytes=pkg.onnx_path.stat().st_size,
        package_bytes=sum((pkg.path / rel).stat().st_size for rel in files),
        runtimes=runtimes,
    )
