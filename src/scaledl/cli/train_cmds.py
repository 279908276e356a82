"""Verbs: run, train, evaluate."""

from __future__ import annotations

from pathlib import Path

import typer

from scaledl.cli.common import (
    console,
    metrics_table,
    print_table,
    shown,
    trust_code_option,
    write_json,
)

SET_HELP = "Override a recipe value, e.g. --set train.epochs=3 (repeatable)."


def _default_out(name: str) -> Path:
    return Path("runs") / name


def run(
    recipe: Path | None = typer.Argument(
        None, help="Recipe YAML (default: the built-in digits CNN)."
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Output folder (default runs/<name>)."
    ),
    set_: list[str] | None = typer.Option(None, "--set", help=SET_HELP),
    resume: bool = typer.Option(
        False, "--resume", help="Continue from the last checkpoint in --out."
    ),
    trust_code: bool = trust_code_option(),
) -> None:
    """Train, export, verify, evaluate and report: the whole job for one recipe."""
    from scaledl.pipeline.run import run_recipe
    from scaledl.recipe import load_recipe

    parsed = load_recipe(recipe, set_)
    output = run_recipe(
        parsed, out or _default_out(parsed.name), resume=resume, trust_code=trust_code
    )
    flat = {k: v for k, v in output.metrics.items() if not isinstance(v, dict)}
    print_table(metrics_table(f"{parsed.name}: test split (ONNX Runtime)", flat))
    if output.metrics.get("baselines"):
        from scaledl.cli.common import baselines_table

        print_table(baselines_table(output.metrics, output.metrics["baselines"]))
    for check in output.checks:
        console.print(f"  [green]✓[/] {shown(check)}")
    console.print(f"package: {shown(output.package)}")
    console.print(f"report:  {shown(output.report)}")
    console.print(f"done in {output.seconds:.1f} s")


def train(
    recipe: Path = typer.Argument(..., help="Recipe YAML (see examples/)."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Output folder (default runs/<name>)."
    ),
    set_: list[str] | None = typer.Option(None, "--set", help=SET_HELP),
    resume: bool = typer.Option(
        False, "--resume", help="Continue from the last checkpoint in --out."
    ),
    nproc: int | None = typer.Option(
        None,
        "--nproc",
        "--nproc-per-node",
        help="Start N training processes on this machine through torch's launcher (torchrun).",
    ),
    nnodes: str = typer.Option(
        "1", "--nnodes", help="Machines in the job (2, or a range 1:4); needs --rdzv-endpoint."
    ),
    rdzv_endpoint: str | None = typer.Option(
        None, "--rdzv-endpoint", help="HOST:PORT every machine reaches, for --nnodes > 1."
    ),
    rdzv_id: str = typer.Option("scaledl", "--rdzv-id", help="Job id shared by all machines."),
    rdzv_timeout: float = typer.Option(
        120.0, "--rdzv-timeout", help="Seconds to wait for all machines to join before failing."
    ),
    max_restarts: int = typer.Option(
        0, "--max-restarts", help="Restart the group from its last checkpoint up to K times."
    ),
    device: str = typer.Option(
        "auto", "--device", help="auto (CUDA when present) | cpu | cuda; gloo on CPU, NCCL on GPU."
    ),
    precision: str = typer.Option(
        "auto", "--precision", help="auto (bf16 autocast on GPUs that have it) | fp32 | bf16."
    ),
    checkpoint_every: int = typer.Option(
        50, "--checkpoint-every", help="Also checkpoint every N optimizer steps (0: epoch ends)."
    ),
    dist_timeout: float = typer.Option(
        60.0, "--dist-timeout", help="Seconds before a collective waiting on a dead peer fails."
    ),
    sample_log: Path | None = typer.Option(
        None, "--sample-log", help="Record the sample indices each rank trains on (JSON lines)."
    ),
    trust_code: bool = trust_code_option(),
) -> None:
    """Train a recipe and write its model package; on N processes or M machines with --nproc."""
    from scaledl.cli import scale

    scale.train_command(
        scale.TrainArgs(
            recipe=recipe,
            out=out,
            set_=set_ or [],
            resume=resume,
            nproc=nproc,
            nnodes=nnodes,
            rdzv_endpoint=rdzv_endpoint,
            rdzv_id=rdzv_id,
            rdzv_timeout=rdzv_timeout,
            max_restarts=max_restarts,
            device=device,
            precision=precision,
            checkpoint_every=checkpoint_every,
            dist_timeout=dist_timeout,
            sample_log=sample_log,
            trust_code=trust_code,
        )
    )


def evaluate(
    package: Path = typer.Argument(..., help="Model package folder or .zip."),
    data: str | None = typer.Option(
        None, "--data", "-d", help="Data source (default: the package's own data set, test split)."
    ),
    split: str = typer.Option(
        "test", "--split", help="Split of the package's own data: train|val|test."
    ),
    json_out: Path | None = typer.Option(
        None, "--json", help="Also write the results to this JSON file."
    ),
) -> None:
    """Accuracy, loss and confusion matrix of the package's ONNX graph on a data set."""
    from scaledl.errors import UsageError
    from scaledl.evaluate import evaluate_package

    if split not in ("train", "val", "test"):
        raise UsageError(f"--split {split!r}: valid values are train, val, test")
    result = evaluate_package(package, data, split=split)
    console.print(
        metrics_table(
            f"{shown(package)} on {shown(data or 'its own ' + split + ' split')}", result.metrics
        )
    )
    if result.extra.get("baselines"):
        from scaledl.cli.common import baselines_table

        print_table(baselines_table(result.metrics, result.extra["baselines"]))
    console.print(f"{result.samples} samples")
    write_json(json_out, result.to_json())


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("train")(train)
    app.command("evaluate")(evaluate)
