"""Verbs: data preview."""

from __future__ import annotations

from pathlib import Path

import typer

from scaledl.cli.common import console, shown

data_app = typer.Typer(help="Look at data sets and augmentation policies.", no_args_is_help=True)


@data_app.command("preview")
def preview(
    recipe: Path | None = typer.Argument(
        None, help="Recipe YAML (default: the built-in digits CNN)."
    ),
    out: Path = typer.Option(Path("augment-preview.png"), "--out", "-o", help="PNG to write."),
    samples: int = typer.Option(8, "--samples", help="Training samples to show (rows)."),
    views: int = typer.Option(5, "--views", help="Augmented views per sample (one per epoch)."),
    set_: list[str] | None = typer.Option(
        None, "--set", help="Override a recipe value, e.g. --set augment.policy=[hflip]."
    ),
) -> None:
    """Write a grid of original training samples beside their augmented views."""
    from scaledl.errors import UsageError
    from scaledl.recipe import load_recipe
    from scaledl.report.preview import preview_policy

    if not 1 <= samples <= 64 or not 0 <= views <= 16:
        raise UsageError(f"--samples {samples} / --views {views}: expected 1–64 and 0–16")
    parsed = load_recipe(recipe, set_)
    result = preview_policy(parsed, out, samples=samples, views=views)
    policy = ", ".join(result.ops) or "empty policy (no augmentation)"
    console.print(f"policy: {policy}")
    console.print(f"wrote {shown(result.path)} ({result.samples} samples × {result.views} views)")


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
