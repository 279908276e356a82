"""Verb: maintain (drift check → fine-tune → re-optimize → canary/shadow → promote/roll back)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from scaledl.cli.common import console, print_table, shown, trust_code_option, write_json


def maintain(
    repository: Path = typer.Argument(..., help="Model repository folder REPO/<model>/<version>/."),
    model: str = typer.Option(..., "--model", "-m", help="Model name (a folder of REPOSITORY)."),
    new_data: str = typer.Option(
        ...,
        "--new-data",
        "-d",
        help="New labelled data in the raw training form (.npz with x/y, image folder, IDX, "
        "table); split deterministically into train/val/test.",
    ),
    policy: str = typer.Option(
        "canary", "--policy", help="How the new version meets traffic: canary | shadow."
    ),
    server: str | None = typer.Option(
        None,
        "--server",
        help="Base URL of the running server (admin API); without it only the repository "
        "folder is changed.",
    ),
    api_key: str | None = typer.Option(
        None,
        "--api-key",
        envvar="SCALEDL_API_KEY",
        help="Admin API key for --server (default: $SCALEDL_API_KEY).",
    ),
    cacert: Path | None = typer.Option(None, "--cacert", help="CA certificate for https URLs."),
    force: bool = typer.Option(
        False, "--force", help="Retrain even when no drift or accuracy drop is detected."
    ),
    canary_weight: float = typer.Option(
        0.1, "--canary-weight", help="Share of the model's traffic the canary gets, in (0, 1]."
    ),
    soak_seconds: float = typer.Option(
        0.0, "--soak-seconds", help="Let the canary/shadow serve live traffic this long first."
    ),
    alpha: float = typer.Option(0.05, "--alpha", help="False-alarm rate of the drift check."),
    max_accuracy_drop: float = typer.Option(
        0.05,
        "--max-accuracy-drop",
        help="Retrain when accuracy on the new data is this far below the reference.",
    ),
    min_gain: float = typer.Option(
        0.01,
        "--min-gain",
        help="Promote only if the new version beats the live one by this on the new held-out "
        "rows (0: as good is enough).",
    ),
    max_regression: float = typer.Option(
        0.02,
        "--max-regression",
        help="Promote only if the new version loses at most this on the old test rows.",
    ),
    eval_data: str | None = typer.Option(
        None,
        "--eval-data",
        help="Trusted labelled rows to compare on instead of the new data's held-out split.",
    ),
    live_version: str | None = typer.Option(
        None,
        "--live-version",
        help="Without --server: the version in service (default: the newest).",
    ),
    set_: list[str] | None = typer.Option(
        None,
        "--set",
        help="Any setting, e.g. --set finetune.epochs=3, --set optimize.time_budget_min=5, "
        "--set split.test_fraction=0.3 (repeatable).",
    ),
    log_file: Path | None = typer.Option(
        None,
        "--log",
        help="Decision log, JSON lines, appended (default REPO/<model>/.maintain/log.jsonl).",
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Work folder (default runs/maintain-<model>/<run id>)."
    ),
    json_out: Path | None = typer.Option(
        None, "--json", help="Also write this run's records and outcome as JSON."
    ),
    trust_code: bool = trust_code_option(),
) -> None:
    """Retrain on old + new data when the model degrades; canary, measure, promote or roll back."""
    from scaledl.maintain.config import build_config
    from scaledl.maintain.loop import MaintainRequest, ServerOptions, run_maintain

    config = build_config(
        {
            "detect": {"alpha": alpha, "max_accuracy_drop": max_accuracy_drop, "force": force},
            "rollout": {
                "policy": policy,
                "canary_weight": canary_weight,
                "soak_seconds": soak_seconds,
            },
            "decide": {"min_gain": min_gain, "max_regression": max_regression},
        },
        list(set_ or []),
    )
    request = MaintainRequest(
        repository=repository,
        model=model,
        new_data=new_data,
        config=config,
        server=ServerOptions(server, api_key, cacert) if server else None,
        eval_data=eval_data,
        live_version=live_version,
        log_path=log_file,
        work_dir=out,
        trust_code=trust_code,
    )
    result = run_maintain(request)
    _print(result)
    write_json(
        json_out,
        {
            "outcome": result.outcome,
            "model": result.model,
            "live_version": result.live_version,
            "new_version": result.new_version,
            "serving": result.serving,
            "run": result.run_id,
            "log": str(result.log_path),
            "records": result.records,
        },
    )


def _print(result: Any) -> None:
    from rich.table import Table

    from scaledl.maintain.summary import accuracy_rows, step_rows

    steps = Table(title=f"maintain {result.model} (run {result.run_id})")
    for name in ("step", "result", "numbers"):
        steps.add_column(name, overflow="fold")
    steps.add_column("s", justify="right")
    for step_row in step_rows(result.records):
        steps.add_row(*step_row)
    print_table(steps)
    compared = accuracy_rows(result.records)
    if compared:
        table = Table(title="accuracy on labelled held-out rows")
        for name in ("set", "measured", "rows", f"live v{result.live_version}", "new", "Δ"):
            table.add_column(name, justify="right" if name not in ("set", "measured") else "left")
        for row in compared:
            table.add_row(*row)
        print_table(table)
    verdict = {
        "promoted": "[bold green]promoted[/]",
        "rolled-back": "[bold yellow]rolled back[/]",
        "nothing-to-do": "[bold]nothing to do[/]",
    }[result.outcome]
    version = f" version {result.new_version}" if result.new_version else ""
    console.print(f"{verdict}{version}; log: {shown(result.log_path)}", highlight=False)
    for line in result.next_steps:
        console.print(line, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("maintain")(maintain)
