"""Verbs: verify, export, sign, ensemble."""

from __future__ import annotations

from pathlib import Path

import typer

from scaledl.cli.common import console, shown, trust_code_option, write_json


def verify(
    package: Path = typer.Argument(..., help="Model package folder or .zip."),
    json_out: Path | None = typer.Option(
        None, "--json", help="Also write the report to this JSON file."
    ),
) -> None:
    """Check every sha256, the signature (if SCALEDL_SIGNING_KEY is set) and ONNX parity."""
    from scaledl.verify import verify_package

    report = verify_package(package)
    for check in report.checks:
        console.print(f"[green]✓[/] {shown(check)}")
    console.print(f"[bold green]{shown(package)}: OK[/]")
    write_json(json_out, report.to_json())


def export(
    package: Path = typer.Argument(..., help="Model package folder with PyTorch weights."),
    opset: int | None = typer.Option(
        None, "--opset", help="ONNX opset (13–23; default: the package's)."
    ),
    exporter: str = typer.Option("auto", "--exporter", help="auto | dynamo | legacy."),
    trust_code: bool = trust_code_option(),
) -> None:
    """Re-export the package's ONNX graph from its weights and re-check parity."""
    from scaledl.export.reexport import reexport_package

    result = reexport_package(package, opset=opset, exporter=exporter, trust_code=trust_code)
    console.print(
        f"exported with {result['exporter']} (opset {result['opset']}); "
        f"parity max abs error {result['max_abs_error']:.2e}"
    )


def sign(package: Path = typer.Argument(..., help="Model package folder to (re-)sign.")) -> None:
    """Sign the manifest with SCALEDL_SIGNING_KEY (HMAC-SHA256) after checking every checksum."""
    from scaledl.errors import UsageError
    from scaledl.package import open_package, signing_key_from_env, update_package

    key = signing_key_from_env()
    if not key:
        raise UsageError("SCALEDL_SIGNING_KEY is not set; export it to sign packages")
    open_package(package, key=key, require_signature=False)
    update_package(package, key=key)
    console.print(f"signed {shown(package)}")


def ensemble(
    packages: list[Path] = typer.Argument(
        ..., help="Two or more model packages (folders or .zip) trained on the same data."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write the ensemble package to."),
    name: str | None = typer.Option(
        None, "--name", help="The ensemble's model name (default: the first member's + -ensemble)."
    ),
    weights: str | None = typer.Option(
        None,
        "--weights",
        help="Comma-separated weight per package, in order (e.g. 2,1); default: equal.",
    ),
    json_out: Path | None = typer.Option(
        None, "--json", help="Also write the members' and the ensemble's figures to this file."
    ),
) -> None:
    """Average packages into one: classifiers' probabilities, regressors' values, as one graph.

    Members must share the task, classes, preprocessing (forecasters may differ in look-back:
    each reads its newest steps) and data set; the ensemble is scored on their test split
    beside each member.
    """
    from rich.table import Table

    from scaledl.cli.common import print_table
    from scaledl.errors import UsageError
    from scaledl.pipeline.ensemble import ensemble_packages

    shares = None
    if weights is not None:
        try:
            shares = [float(part) for part in weights.split(",")]
        except ValueError:
            raise UsageError(
                f"--weights {weights!r} is not a comma-separated list of numbers (e.g. 2,1)"
            ) from None
    result = ensemble_packages(packages, out, name=name, weights=shares)
    key = "accuracy" if "accuracy" in result.metrics else "loss"
    table = Table(title=f"ensemble vs members: {key} on the test and validation splits")
    for column in ("model", "weight", f"test {key}", f"val {key}"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for member in result.members:
        table.add_row(
            shown(f"{member['name']}:{member['version']}"),
            f"{member['weight']:.3f}",
            f"{member.get('test_' + key, float('nan')):.4f}",
            f"{member.get('val_' + key, float('nan')):.4f}",
        )
    table.add_row(
        "[bold]ensemble[/]",
        "1.000",
        f"[bold]{result.metrics[key]:.4f}[/]",
        f"{result.metrics.get('val_' + key, float('nan')):.4f}",
    )
    print_table(table)
    console.print(f"wrote {shown(result.path)}")
    write_json(json_out, {"metrics": result.metrics, "members": result.members})


def register(app: typer.Typer) -> None:
    app.command("verify")(verify)
    app.command("export")(export)
    app.command("sign")(sign)
    app.command("ensemble")(ensemble)
