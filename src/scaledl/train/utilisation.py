"""How much of the machine training uses: FLOPs per sample, achieved FLOP/s, peak, data wait.

FLOPs are counted by torch's `FlopCounterMode` on one forward and one backward pass of a copy
of the model (matrix multiplies and convolutions; a multiply-add is 2 FLOPs, as papers count
them; element-wise work is not counted, so the figure is a lower bound of the work done). The
peak is measured, not looked up: a square matmul probe in the training dtype with the training
threads, cached per machine under the scaledl cache folder (`SCALEDL_CACHE_DIR`).
"""

from __future__ import annotations

import copy
import json
import logging
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from scaledl.fsio import atomic_write_text

log = logging.getLogger(__name__)
PEAK_CACHE = "peak-flops.json"
# 2.1 and 17 GFLOP per matmul (~10 and ~100 ms on 2 cores): the smaller one alone read below
# what a CIFAR-10 conv step reached, so the larger one, whose blocking reaches the FMA units'
# peak, is timed too and the best of both kept
PROBE_SIZES = (1024, 2048)
REPROBE_SECONDS = 24 * 3600  # a day-old probe is re-run (a busy machine may have lowered it)


@dataclass(frozen=True)
class FlopCount:
    forward_per_sample: float
    training_per_sample: float  # forward + backward


def count_flops(model: torch.nn.Module, x: torch.Tensor) -> FlopCount:
    """FLOPs per sample of one training step (forward + backward) of `model` on batch `x`.

    A deep copy runs the pass, so the model's weights, gradients and BatchNorm statistics are
    left as they were.
    """
    from torch.utils.flop_counter import FlopCounterMode

    probe = copy.deepcopy(model).train()
    lstm_calls: dict[str, float] = {}
    hooks = [
        module.register_forward_hook(_lstm_recorder(name, lstm_calls))
        for name, module in probe.named_modules()
        if isinstance(module, torch.nn.LSTM)
    ]
    try:
        with FlopCounterMode(display=False) as counter:
            out = probe(x)
            forward = counter.get_total_flops()
            out.float().sum().backward()
            total = counter.get_total_flops()
    finally:
        for hook in hooks:
            hook.remove()
    # torch's counter sees no matmul inside a fused LSTM (CPU oneDNN, cuDNN): count those
    # analytically, the backward pass as twice the forward (the usual convention)
    counted = counter.get_flop_counts()
    root = type(probe).__name__
    for name, flops in lstm_calls.items():
        if not sum(counted.get(f"{root}.{name}", {}).values()):
            forward += flops
            total += 3 * flops
    n = max(1, len(x))
    return FlopCount(forward / n, total / n)


def lstm_forward_flops(module: torch.nn.LSTM, tokens: int) -> float:
    """Multiply-add FLOPs (2 per multiply-add) of one LSTM forward pass over `tokens` time
    steps in all (batch × length): four gates per layer and direction, plus the projection."""
    out = module.proj_size or module.hidden_size
    directions = 2 if module.bidirectional else 1
    flops = 0.0
    for layer in range(module.num_layers):
        inputs = module.input_size if layer == 0 else out * directions
        step = 2 * 4 * module.hidden_size * (inputs + out)
        if module.proj_size:
            step += 2 * module.hidden_size * module.proj_size
        flops += directions * step
    return flops * tokens


def _lstm_recorder(name: str, calls: dict[str, float]) -> Any:
    def record(module: torch.nn.Module, args: tuple[Any, ...], _output: Any) -> None:
        data = args[0]
        if isinstance(data, torch.nn.utils.rnn.PackedSequence):
            tokens = int(data.data.shape[0])
        else:
            tokens = int(data.shape[0] * data.shape[1]) if data.dim() == 3 else int(data.shape[0])
        assert isinstance(module, torch.nn.LSTM)
        calls[name] = calls.get(name, 0.0) + lstm_forward_flops(module, tokens)

    return record


def try_count_flops(model: torch.nn.Module, x: torch.Tensor) -> FlopCount | None:
    """`count_flops`, or None when a user's module does not run under the counter."""
    try:
        return count_flops(model, x)
    except Exception as exc:  # the figure is informative; training goes on without it
        log.debug("FLOPs not counted: %s", exc)
        return None


def _machine_key(device: torch.device, dtype: torch.dtype, threads: int) -> str:
    if device.type == "cuda":
        where = f"cuda:{torch.cuda.get_device_name(device)}"
    else:
        where = f"cpu:{cpu_model()}:{threads} threads"
    return (
        f"{platform.node()}|{where}|{str(dtype).removeprefix('torch.')}|torch {torch.__version__}"
    )


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def probe_peak(device: torch.device, dtype: torch.dtype, seconds: float = 0.4) -> float:
    """The best FLOP/s of repeated square matmuls in `dtype` over the probe sizes (best, not
    median: on a shared machine the fastest repetition is the one least disturbed)."""
    return max(_probe_size(device, dtype, n, seconds) for n in PROBE_SIZES)


def _probe_size(device: torch.device, dtype: torch.dtype, n: int, seconds: float) -> float:
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    torch.mm(a, b)  # warm-up: first-call allocation and kernel selection
    best, spent, reps = 0.0, 0.0, 0
    while (spent < seconds or reps < 3) and reps < 50:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        torch.mm(a, b)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        elapsed = time.perf_counter() - t0
        spent, reps = spent + elapsed, reps + 1
        best = max(best, 2.0 * n**3 / max(elapsed, 1e-9))
    return best


def measured_peak(device: torch.device, dtype: torch.dtype, cache_dir: Path | None = None) -> float:
    """This machine's matmul peak in `dtype` with the current thread count, probed and then
    read from the cache file (machine key → best FLOP/s and when it was probed) for a day."""
    from scaledl.data.images import default_cache_dir

    path = (cache_dir or default_cache_dir()) / PEAK_CACHE
    key = _machine_key(device, dtype, torch.get_num_threads())
    cached = _read_cache(path)
    entry = cached.get(key)
    earlier, probed = 0.0, 0.0
    if isinstance(entry, dict):
        earlier, probed = _number(entry.get("flops")), _number(entry.get("probed"))
    if earlier > 0 and time.time() - probed < REPROBE_SECONDS:
        return earlier
    # other processes' load only ever lowers a probe: keep the best one seen on this machine
    peak = max(probe_peak(device, dtype), earlier)
    cached[key] = {"flops": peak, "probed": time.time()}
    try:
        atomic_write_text(path, json.dumps(cached, indent=1, sort_keys=True))
    except OSError as exc:  # a read-only cache only costs a probe next time
        log.debug("could not cache the peak FLOP/s in %s: %s", path, exc)
    return peak


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and value > 0 else 0.0


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


@dataclass
class StepClock:
    """Seconds spent waiting for batches and in whole steps (waiting included), on one rank."""

    data_seconds: float = 0.0
    step_seconds: float = 0.0
    samples: int = 0
    steps: int = 0

    def add(self, data_seconds: float, step_seconds: float, samples: int) -> None:
        self.data_seconds += data_seconds
        self.step_seconds += step_seconds
        self.samples += samples
        self.steps += 1


def summarize(
    clock_totals: list[float],
    world_size: int,
    flops: FlopCount | None,
    peak_per_process: float | None,
    dtype_name: str,
) -> dict[str, Any]:
    """The utilisation figures from the clocks summed over ranks ([data s, step s, samples,
    steps]); the group's rate divides its samples by the mean step time of a rank."""
    data_s, step_s, samples, steps = clock_totals
    if step_s <= 0 or samples <= 0:
        return {}
    rate = samples / (step_s / world_size)
    out: dict[str, Any] = {
        "samples_per_second": round(rate, 1),
        "data_wait_fraction": round(min(max(data_s / step_s, 0.0), 1.0), 4),
        "steps_measured": int(steps / world_size),
        "dtype": dtype_name,
    }
    if flops is not None:
        achieved = flops.training_per_sample * rate
        out["forward_flops_per_sample"] = round(flops.forward_per_sample)
        out["flops_per_sample"] = round(flops.training_per_sample)
        out["achieved_flops_per_second"] = round(achieved)
        if peak_per_process:
            peak = peak_per_process * world_size
            out["peak_flops_per_second"] = round(peak)
            out["utilisation"] = round(achieved / peak, 4)
    return out


def group_utilisation(
    clock_totals: list[float],
    world_size: int,
    flops: FlopCount | None,
    device: torch.device,
    dtype: torch.dtype,
) -> dict[str, Any]:
    """`summarize` with this machine's measured peak for `dtype` (probed when flops are known)."""
    peak = measured_peak(device, dtype) if flops is not None else None
    name = "bf16" if dtype == torch.bfloat16 else "fp32"
    return summarize(clock_totals, world_size, flops, peak, name)


def describe(figures: dict[str, Any]) -> str:
    """One line for the end of training."""
    if "samples_per_second" not in figures:
        return "utilisation: no step was measured (the first step, warm-up, is not timed)"
    text = f"{figures['samples_per_second']:,.0f} samples/s"
    if "achieved_flops_per_second" in figures:
        text += f", {figures['achieved_flops_per_second'] / 1e9:.1f} GFLOP/s"
    if "utilisation" in figures:
        peak = figures["peak_flops_per_second"] / 1e9
        text += f" = {figures['utilisation']:.1%} of the {peak:.0f} GFLOP/s {figures['dtype']} peak"
    return f"{text}; waiting for data {figures['data_wait_fraction']:.1%} of step time"
