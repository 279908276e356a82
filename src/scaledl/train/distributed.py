"""The process group a training run belongs to, as torchrun describes it in the environment.

`torchrun` (or `scaledl train --nproc N`, which starts torch's own launcher) sets RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; without them training runs as one process.
gloo on CPU, NCCL on GPU; collectives time out after `timeout` seconds (torch's default is
30 minutes) so a dead or stuck peer stops the group in seconds and the launcher can restart it.
"""

from __future__ import annotations

import datetime
import io
import logging
import os
from dataclasses import dataclass, field
from typing import Any

import torch

from scaledl.errors import ScaledlError, UsageError
from scaledl.train.choices import DEVICES, PRECISIONS, launched_by_torchrun

log = logging.getLogger(__name__)
DEFAULT_TIMEOUT = 60.0


class DistributedError(ScaledlError):
    """The process group could not form or broke (exit 1: the job ran and failed)."""

    exit_code = 1


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """auto: the local rank's GPU when CUDA is present, else the CPU."""
    if name not in DEVICES:
        raise UsageError(f"--device {name!r}: valid values are {', '.join(DEVICES)}")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA GPU is visible here (use --device cpu or auto)")
    count = torch.cuda.device_count()
    if local_rank >= count:
        raise UsageError(
            f"local rank {local_rank} has no GPU of its own ({count} visible); start at most "
            f"{count} processes per machine"
        )
    return torch.device("cuda", local_rank)


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """bf16 autocast where the hardware has it: auto turns it on for CUDA GPUs that support it.

    On CPUs auto stays fp32: without native bf16 units autocast only adds casts (slower).
    """
    if precision not in PRECISIONS:
        raise UsageError(f"--precision {precision!r}: valid values are {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


@dataclass
class DistContext:
    """This process's place in the group; the collectives training needs."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    backend: str | None = None
    restart: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum of `values` over all ranks (float64)."""
        if not self.distributed:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=self._comm_device)
        torch.distributed.all_reduce(t)
        return t.cpu().tolist()

    def all_gather_ints(self, values: list[int]) -> list[list[int]]:
        if not self.distributed:
            return [list(values)]
        t = torch.tensor(values, dtype=torch.int64, device=self._comm_device)
        parts = [torch.empty_like(t) for _ in range(self.world_size)]
        torch.distributed.all_gather(parts, t)
        return [p.cpu().tolist() for p in parts]

    def gather_rows(self, local: torch.Tensor, sizes: list[int]) -> torch.Tensor:
        """Concatenate every rank's rows (rank order); `sizes[r]` rows come from rank r."""
        if not self.distributed:
            return local
        padded = torch.zeros(
            (max(sizes), *local.shape[1:]), dtype=local.dtype, device=self._comm_device
        )
        padded[: len(local)] = local.to(self._comm_device)
        parts = [torch.empty_like(padded) for _ in range(self.world_size)]
        torch.distributed.all_gather(parts, padded)
        return torch.cat([p[:n] for p, n in zip(parts, sizes)]).cpu()

    def broadcast_bytes(self, data: bytes | None, src: int) -> bytes:
        """Send `data` from rank `src` to every rank (tensors, no pickling)."""
        if not self.distributed:
            return data or b""
        size = torch.tensor([len(data or b"")], dtype=torch.int64, device=self._comm_device)
        torch.distributed.broadcast(size, src)
        buf = torch.empty(int(size.item()), dtype=torch.uint8, device=self._comm_device)
        if self.rank == src:
            buf.copy_(torch.frombuffer(bytearray(data or b""), dtype=torch.uint8))
        torch.distributed.broadcast(buf, src)
        return buf.cpu().numpy().tobytes()

    def close(self) -> None:
        if self.distributed and torch.distributed.is_initialized():
            if self.backend == "gloo":
                # every rank reaches the end before any tears gloo down: a peer still finishing
                # its last collective otherwise aborts ("terminate called without an active
                # exception"); bounded, so a rank that died cannot hang the others here
                try:
                    torch.distributed.monitored_barrier(timeout=datetime.timedelta(seconds=60))
                except RuntimeError as exc:
                    log.warning("ranks did not all reach the end of training: %s", exc)
            torch.distributed.destroy_process_group()

    @property
    def _comm_device(self) -> torch.device:
        return self.device if self.backend == "nccl" else torch.device("cpu")


def init_distributed(device: str = "auto", timeout: float = DEFAULT_TIMEOUT) -> DistContext:
    """Join the group torchrun set up (or stay a single process when there is none)."""
    restart = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0)
    if not launched_by_torchrun() or int(os.environ["WORLD_SIZE"]) <= 1:
        return DistContext(device=resolve_device(device), restart=restart)
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if not torch.distributed.is_initialized():
        try:
            _join_group(backend, restart, timeout)
        except Exception as exc:  # store / connect errors come in many types
            where = f"{os.environ.get('MASTER_ADDR')}:{os.environ.get('MASTER_PORT')}"
            raise DistributedError(
                f"rank {rank}: could not join the {world}-process group at {where} within "
                f"{timeout:.0f} s ({type(exc).__name__}: {exc})"
            ) from None
    ctx = DistContext(rank, world, local_rank, dev, backend, restart)
    log.info(
        "rank %d of %d (local rank %d) on %s, backend %s%s",
        rank,
        world,
        local_rank,
        dev,
        backend,
        f", restart {restart}" if restart else "",
    )
    return ctx


def _join_group(backend: str, restart: int, timeout: float) -> None:
    """init_process_group on torchrun's store, under a key prefix for this restart.

    torchrun's agent keeps one worker store for the whole job; without a prefix, workers of
    a restarted group can read the connection addresses their dead predecessors left there
    and fail to connect (observed with gloo).
    """
    limit = datetime.timedelta(seconds=timeout)
    store, rank, world = next(torch.distributed.rendezvous("env://", timeout=limit))
    store = torch.distributed.PrefixStore(f"scaledl/restart{restart}", store)
    torch.distributed.init_process_group(
        backend, store=store, rank=rank, world_size=world, timeout=limit
    )


def serialize(state: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def deserialize(data: bytes) -> dict[str, Any]:
    state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise DistributedError("received a training state that is not a checkpoint")
    return state
