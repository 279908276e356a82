"""Verbs: run, train, evaluate."""

from __future__ import annotations

from pathlib import Path

import typer

from scaledl.cli.common import console, metrics_table, write_json

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
) -> None:
    """Train, export, verify, evaluate and report: the whole job for one recipe."""
    from scaledl.pipeline import run_recipe
    from scaledl.recipe import load_recipe

    parsed = load_recipe(recipe, set_)
    output = run_recipe(parsed, out or _default_out(parsed.name), resume=resume)
    console.print(metrics_table(f"{parsed.name}: test split (ONNX Runtime)", output.metrics))
    for check in output.checks:
        console.print(f"  [green]✓[/] {check}")
    console.print(f"package: {output.package}")
    console.print(f"report:  {output.report}")
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
) -> None:
    """Train a recipe and write its model package (ONNX export and parity check included)."""
    from scaledl.recipe import load_recipe
    from scaledl.train.api import train_recipe

    parsed = load_recipe(recipe, set_)
    output = train_recipe(parsed, out or _default_out(parsed.name), resume=resume)
    final = output.history[-1] if output.history else {}
    console.print(
        f"trained {len(output.history)} epoch(s) in {output.seconds:.1f} s "
        f"({output.samples_per_second:.0f} samples/s); best epoch {output.best_epoch}"
        + (f", val accuracy {final.get('val_accuracy', 0):.4f}" if "val_accuracy" in final else "")
    )
    console.print(f"package: {output.package}")


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
        metrics_table(f"{package} on {data or 'its own ' + split + ' split'}", result.metrics)
    )
    console.print(f"{result.samples} samples")
    write_json(json_out, result.to_json())


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("train")(train)
    app.command("evaluate")(evaluate)
