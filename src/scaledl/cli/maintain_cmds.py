"""Verb: maintain (drift check → fine-tune → re-optimize → canary/shadow → promote/roll back)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from scaledl.cli.common import console, print_table, shown, trust_code_option, write_json
from scaledl.cli.options import ConfigFlags, merged, read_config_file, with_set_items
from scaledl.config.maintain import MaintainConfig, build_config

FLAGS = ConfigFlags(
    MaintainConfig,
    include=(
        "rollout.policy",
        "detect.force",
        "rollout.canary_weight",
        "rollout.soak_seconds",
        "detect.alpha",
        "detect.max_accuracy_drop",
        "decide.min_gain",
        "decide.max_regression",
    ),
)


@FLAGS.add
def maintain(
    ctx: typer.Context,
    repository: Path = typer.Argument(..., help="Model repository folder REPO/<model>/<version>/."),
    model: str = typer.Option(..., "--model", "-m", help="Model name (a folder of REPOSITORY)."),
    new_data: str = typer.Option(
        ...,
        "--new-data",
        "-d",
        help="New labelled data in the raw training form (.npz with x/y, image folder, IDX, "
        "table); split deterministically into train/val/test.",
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
    config_file: Path | None = typer.Option(
        None,
        "--config",
        help="YAML file of settings by section (detect, split, finetune, rollout, decide, "
        "optimize); flags and --set override it.",
    ),
    set_: list[str] | None = typer.Option(
        None,
        "--set",
        help="Any setting, e.g. --set finetune.epochs=3, --set optimize.time_budget_min=5, "
        "--set split.test_fraction=0.3 (repeatable; wins over --config and flags).",
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
    **flags: Any,
) -> None:
    """Retrain on old + new data when the model degrades; canary, measure, promote or roll back."""
    from scaledl.maintain.loop import MaintainRequest, ServerOptions, run_maintain

    config = maintain_config(ctx)
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


def maintain_config(ctx: typer.Context) -> MaintainConfig:
    """--config FILE, then the flags typed, then --set items, over the config's defaults."""
    params = ctx.params
    values = read_config_file(params["config_file"]) if params["config_file"] else {}
    values = merged(values, FLAGS.given(ctx, params))
    items = list(params["set_"] or [])
    return build_config(values, items, with_set_items(items, FLAGS.names(ctx)))


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
        metric = "error" if "error" in str(compared) else "accuracy"
        table = Table(title=f"{metric} on labelled held-out rows")
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
