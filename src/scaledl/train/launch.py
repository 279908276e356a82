"""`scaledl train --nproc N`: start N training processes through torch's own launcher.

This is `torchrun` (torch.distributed.run) called in-process: standalone rendezvous on one
machine, or c10d rendezvous at `--rdzv-endpoint` when `--nnodes` spans several. The workers run
`python -m scaledl train ...` again, see RANK/WORLD_SIZE, and join the group. The elastic agent
restarts the whole group up to `max_restarts` times when a worker dies; the restarted workers
resume from the last checkpoint.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from scaledl.errors import UsageError
from scaledl.train.distributed import DistributedError

log = logging.getLogger(__name__)


@dataclass
class LaunchSpec:
    nproc: int
    nnodes: str = "1"
    rdzv_endpoint: str | None = None
    rdzv_id: str = "scaledl"
    max_restarts: int = 0
    rdzv_timeout: float = 120.0


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def max_nodes(nnodes: str) -> int:
    try:
        parts = [int(p) for p in nnodes.split(":")]
    except ValueError:
        raise UsageError(f"--nnodes {nnodes!r}: expected a count (2) or a range (1:4)") from None
    if not 1 <= len(parts) <= 2 or min(parts) < 1 or parts[0] > parts[-1]:
        raise UsageError(f"--nnodes {nnodes!r}: expected a count (2) or a range (1:4)")
    return parts[-1]


def check_nproc(nproc: int, device: str) -> str:
    """The device the processes will use; a clear error when `nproc` does not fit it."""
    import torch

    if nproc < 1:
        raise UsageError(f"--nproc {nproc}: expected at least 1 process")
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device == "cuda" or (device == "auto" and gpus):
        if gpus == 0:
            raise UsageError("--device cuda: no CUDA GPU is visible here (use --device cpu)")
        if nproc > gpus:
            raise UsageError(
                f"--nproc {nproc} is more than the {gpus} GPU(s) here: training runs one process "
                f"per GPU (use --nproc {gpus} or fewer; add machines with --nnodes)"
            )
        return "cuda"
    cores = available_cores()
    if nproc > cores:
        raise UsageError(
            f"--nproc {nproc} is more than the {cores} CPU core(s) available here: each training "
            f"process needs a core of its own, more only slow training down (use --nproc {cores} "
            "or fewer; to scale further, add machines with --nnodes and --rdzv-endpoint)"
        )
    return "cpu"


def torchrun_argv(spec: LaunchSpec, worker_args: list[str]) -> list[str]:
    argv: list[str] = []
    if spec.rdzv_endpoint is None:
        if max_nodes(spec.nnodes) > 1:
            raise UsageError(
                f"--nnodes {spec.nnodes} needs --rdzv-endpoint HOST:PORT "
                "(an address every machine reaches)"
            )
        argv.append("--standalone")
    else:
        timeout = int(spec.rdzv_timeout)
        argv += ["--nnodes", spec.nnodes, "--rdzv-backend", "c10d"]
        argv += ["--rdzv-endpoint", spec.rdzv_endpoint, "--rdzv-id", spec.rdzv_id]
        argv += ["--rdzv-conf", f"join_timeout={timeout},read_timeout={timeout}"]
    argv += ["--nproc-per-node", str(spec.nproc), "--max-restarts", str(spec.max_restarts)]
    return [*argv, "--module", "scaledl", *worker_args]


def launch(spec: LaunchSpec, worker_args: list[str], device: str) -> None:
    """Run the workers to completion through torch.distributed.run; map its failures."""
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.elastic.rendezvous.api import RendezvousError

    kind = check_nproc(spec.nproc, device)
    if kind == "cpu":  # split the cores between the processes instead of oversubscribing
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, available_cores() // spec.nproc)))
    args = torchrun.get_args_parser().parse_args(torchrun_argv(spec, worker_args))
    log.info("launching %d process(es) per machine: torchrun %s", spec.nproc, args)
    try:
        torchrun.run(args)
    except ChildFailedError as exc:
        raise _child_failure(exc, spec) from None
    except RendezvousError as exc:
        error = DistributedError(
            f"rendezvous at {spec.rdzv_endpoint or 'localhost'} did not complete within "
            f"{spec.rdzv_timeout:.0f} s ({type(exc).__name__}{f': {exc}' if str(exc) else ''}); "
            f"--nnodes {spec.nnodes} "
            "machines must each start the same command with the same --rdzv-endpoint and "
            "--rdzv-id (or lower --nnodes, or raise --rdzv-timeout)"
        )
        error.exit_code = 2  # the machines given do not match the command: a usage problem
        raise error from None


def _child_failure(exc: object, spec: LaunchSpec) -> DistributedError:
    failures = getattr(exc, "failures", {})
    codes = sorted({f.exitcode for f in failures.values()})
    ranks = ", ".join(str(r) for r in sorted(failures))
    error = DistributedError(
        f"training worker(s) {ranks} failed with exit code(s) {codes} after "
        f"{spec.max_restarts} restart(s) allowed (their errors are printed above; "
        "--max-restarts K restarts the group from its last checkpoint)"
    )
    if codes == [2]:  # a bad recipe or flag seen by the workers: a usage error, not a crash
        error.exit_code = 2
    return error
