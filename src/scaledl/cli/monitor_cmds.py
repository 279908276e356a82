"""Verbs: monitor profile, monitor report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from scaledl.cli.common import console, print_table, shown, write_json
from scaledl.cli.options import ConfigFlags
from scaledl.config.monitor import DriftConfig

monitor_app = typer.Typer(
    help="Reference profiles and offline drift reports for model packages.",
    no_args_is_help=True,
)


@monitor_app.command("profile")
def profile(
    package: Path = typer.Argument(..., help="Model package folder to add a profile to."),
    data: str | None = typer.Option(
        None,
        "--data",
        "-d",
        help="Data source the profile is built from (default: the package's own data set, "
        "split as in training). Another source is treated as held-out data.",
    ),
    components: int = typer.Option(32, "--components", help="PCA components (1–256)."),
    series_reference: str | None = typer.Option(
        None,
        "--series-reference",
        help="Forecasters: 'history' (the newest 10,000 windows through the validation period, "
        "calibrated out of sample: false alarms hold on unseen weeks) or 'validation' (that "
        "period alone, calibrated in sample: more sensitive, but a seasonal series alarms on "
        "weeks it did not hold). Default: history.",
    ),
    series_gaps: bool | None = typer.Option(
        None,
        "--series-gaps/--no-series-gaps",
        help="Forecasters: also watch each variable against what the others predict (a sensor "
        "that leaves its partners; each gap has a tolerance for how far the relation wandered "
        "in the reference). Default: on.",
    ),
) -> None:
    """Build the monitoring reference profile (profile.npz) and add it to the package."""
    from scaledl.errors import UsageError
    from scaledl.monitor.profile import ProfileOptions
    from scaledl.monitor.reference import add_profile
    from scaledl.monitor.series_profile import SERIES_REFERENCES

    if not 1 <= components <= 256:
        raise UsageError(f"--components {components}: expected 1–256")
    if series_reference is not None and series_reference not in SERIES_REFERENCES:
        raise UsageError(
            f"--series-reference {series_reference!r}: expected " + " or ".join(SERIES_REFERENCES)
        )
    series_flags = [
        flag
        for flag, given in (
            ("--series-reference", series_reference is not None),
            ("--series-gaps/--no-series-gaps", series_gaps is not None),
        )
        if given
    ]
    if series_flags:
        from scaledl.package import open_package

        kind = open_package(package).preprocessing.kind
        if kind != "series":
            raise UsageError(
                f"{series_flags[0]} applies to forecasters; {shown(package)} is a {kind} model"
            )
    options = ProfileOptions(
        components=components,
        series_reference=series_reference or SERIES_REFERENCES[0],
        series_gaps=series_gaps is not False,
    )
    built = add_profile(package, data, options)
    ref = built.meta["reference"]
    console.print(
        f"profile added to {shown(package)}: {built.projection.k} PCA components "
        f"({100 * built.meta['explained_variance_ratio']:.0f}% of the variance), "
        f"{ref['inputs']} input and {ref['outputs']} output reference rows"
    )


DRIFT_FLAGS = ConfigFlags(DriftConfig, include=("alpha", "seed", "windows_score"))


@monitor_app.command("report")
@DRIFT_FLAGS.add
def report(
    ctx: typer.Context,
    package: Path = typer.Argument(..., help="Model package folder or .zip (with a profile)."),
    data: str = typer.Option(
        ...,
        "--data",
        "-d",
        help="New data in the raw training form: digits, an image folder, IDX, .csv/.parquet, "
        ".npz (labels optional). The package's own source means its test split.",
    ),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write the HTML report here."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the results as JSON."),
    max_accuracy_drop: float = typer.Option(
        0.05, "--max-accuracy-drop", help="Labelled data: accuracy drop that counts as a failure."
    ),
    **flags: Any,
) -> None:
    """Compare new data with the package's reference; exit 1 when drift (or an accuracy drop)
    is found, 0 otherwise."""
    from scaledl.errors import UsageError
    from scaledl.fsio import atomic_write_text
    from scaledl.monitor.check import check_package
    from scaledl.monitor.reference import package_profile
    from scaledl.monitor.report import build_report
    from scaledl.package import open_package
    from scaledl.validation import validate

    given = DRIFT_FLAGS.given(ctx, flags)
    drift = validate(DriftConfig, given, "monitor report", UsageError, DRIFT_FLAGS.names(ctx))
    pkg = open_package(package)
    assessment = check_package(pkg, data, config=drift, max_accuracy_drop=max_accuracy_drop)
    _print(assessment)
    if out is not None:
        page = build_report(assessment, package_profile(pkg), pkg.name)
        atomic_write_text(out, page.render())
        console.print(f"report: {shown(out)}")
    write_json(json_out, assessment.to_json())
    if assessment.degraded:
        raise typer.Exit(1)


def _print(assessment: object) -> None:
    from rich.table import Table

    from scaledl.monitor.check import Assessment

    assert isinstance(assessment, Assessment)
    drift = assessment.drift
    table = Table(title=f"{assessment.samples} samples from {assessment.source}")
    for column in ("test", "p-value", "score", "drift"):
        table.add_column(column, justify="left" if column == "test" else "right")
    for t in drift.tests:
        table.add_row(t.name, f"{t.p_value:.3g}", f"{t.score:.4g}", "yes" if t.drift else "no")
    table.add_row("combined", f"{drift.p_value:.3g}", "", "yes" if drift.drift else "no")
    print_table(table)
    if assessment.accuracy is not None:
        console.print(
            f"accuracy {assessment.accuracy:.4f} (reference {assessment.reference_accuracy})"
        )
    if assessment.degraded:
        console.print("[bold red]drift found[/]: " + "; ".join(assessment.reasons))
    else:
        console.print("[green]no drift found[/]")


def register(app: typer.Typer) -> None:
    app.add_typer(monitor_app, name="monitor")
