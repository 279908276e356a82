"""Verbs: verify, export, sign."""

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


def register(app: typer.Typer) -> None:
    app.command("verify")(verify)
    app.command("export")(export)
    app.command("sign")(sign)
