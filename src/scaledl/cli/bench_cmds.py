"""Verb: bench (latency, throughput, memory and size of packages, side by side)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from scaledl.cli.common import (
    console,
    parse_int_list,
    print_table,
    trust_code_option,
    write_json,
)


def bench(
    packages: list[Path] = typer.Argument(..., help="One or more package folders or .zip files."),
    batch_sizes: str = typer.Option(
        "1,8,64", "--batch-sizes", "-b", help="Comma-separated batch sizes to time."
    ),
    threads: int = typer.Option(
        1, "--threads", help="Intra-op threads for ONNX Runtime and PyTorch (fixed for fairness)."
    ),
    rounds: int = typer.Option(
        5, "--rounds", help="Interleaved rounds per batch size (more = steadier on busy machines)."
    ),
    seconds: float = typer.Option(
        0.2, "--seconds", help="Timed seconds per contender in each round."
    ),
    eager: bool = typer.Option(
        True, "--eager/--no-eager", help="Also time PyTorch eager fp32 when a package has weights."
    ),
    json_out: Path | None = typer.Option(None, "--json", help="Write all results to this file."),
    trust_code: bool = trust_code_option(),
) -> None:
    """p50/p95/p99 latency and throughput per batch size, peak memory and file size."""
    from scaledl.bench.api import bench_packages
    from scaledl.bench.cpu import cpu_info
    from scaledl.errors import UsageError

    sizes = parse_int_list(batch_sizes, "--batch-sizes")
    if rounds < 1 or seconds <= 0:
        raise UsageError("--rounds must be ≥ 1 and --seconds > 0")
    results = bench_packages(
        packages,
        sizes,
        threads=threads,
        rounds=rounds,
        seconds_per_round=seconds,
        eager=eager,
        trust_code=trust_code,
    )
    for result in results:
        print_table(_table(result))
    console.print(
        f"ort = ONNX Runtime, eager = PyTorch eager fp32; peak MB = extra resident memory of "
        f"loading and running the model; CPU: {cpu_info().summary()}; {threads} thread(s)",
        highlight=False,
    )
    write_json(
        json_out,
        {
            "cpu": cpu_info().to_json(),
            "threads": threads,
            "batch_sizes": sizes,
            "packages": [r.to_json() for r in results],
        },
    )


SHORT = {"onnxruntime": "ort", "pytorch-eager-fp32": "eager"}


def _table(result: Any) -> Any:
    from rich import box
    from rich.table import Table

    title = f"{result.name} ({result.precision}, {result.model_file_bytes / 1e6:.3f} MB model file)"
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    columns = ("runtime", "batch", "p50 ms", "p95 ms", "p99 ms", "samples/s", "peak MB", "× eager")
    for name in columns:
        table.add_column(name, justify="left" if name == "runtime" else "right", no_wrap=True)
    speedups = result.speedups()
    for runtime in result.runtimes:
        memory = runtime.memory.get("extra_peak_mb")
        for batch, stats in sorted(runtime.latency.items()):
            ratio = speedups.get(str(batch)) if runtime.runtime == "onnxruntime" else None
            table.add_row(
                SHORT.get(runtime.runtime, runtime.runtime),
                str(batch),
                f"{stats.p50_ms:.3f}",
                f"{stats.p95_ms:.3f}",
                f"{stats.p99_ms:.3f}",
                f"{stats.throughput:,.0f}",
                "-" if memory is None else f"{memory:.1f}",
                f"{ratio:.1f}×" if ratio else "",
            )
    return table


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
