"""Verb: optimize (search pruning × slimming × quantization under an accuracy budget)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from scaledl.cli.common import console, print_table, shown, trust_code_option
from scaledl.cli.options import ConfigFlags
from scaledl.config.optimize import OptimizeConfig

FLAGS = ConfigFlags(OptimizeConfig, exclude=("settings", "keep"))


@FLAGS.add
def optimize(
    ctx: typer.Context,
    package: Path | None = typer.Argument(None, help="Model package folder or .zip to optimize."),
    set_: list[str] | None = typer.Option(
        None, "--set", help="Method setting, e.g. --set prune.ratios=[0.3,0.5] (repeatable)."
    ),
    keep_all: bool = typer.Option(
        False, "--keep-all", help="Write a package for every candidate, not only the frontier."
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Output folder (default runs/<name>-optimized)."
    ),
    list_methods: bool = typer.Option(
        False, "--list-methods", help="List the registered methods and their settings, then exit."
    ),
    trust_code: bool = trust_code_option(),
    **flags: Any,
) -> None:
    """Find the fastest variant within the accuracy budget; latency measured on this machine."""
    from scaledl.errors import GoalNotMetError, UsageError
    from scaledl.optimize.api import optimize_package
    from scaledl.package import open_package

    if list_methods:
        _print_methods()
        return
    if package is None:
        raise UsageError("missing PACKAGE: the model package folder or .zip to optimize")
    config = optimize_config(ctx)
    out = out or Path("runs") / f"{open_package(package).name}-optimized"
    result = optimize_package(package, config, out, trust_code=trust_code)
    print_table(_table(result))
    for c in result.candidates:
        if c.status == "failed":
            console.print(f"  [red]{c.id} failed[/]: {'; '.join(c.notes)}", highlight=False)
    for item in result.skipped:
        console.print(f"  [dim]skipped {item['method']}: {item['reason']}[/]", highlight=False)
    spent = result.time_summary()
    console.print(
        f"time: {spent['used_s']:.0f} s of the {spent['budget_s']:.0f} s budget; "
        f"{spent['skipped_for_time']} job(s) skipped for time",
        highlight=False,
    )
    console.print(f"frontier: {shown(out / 'frontier.json')}")
    console.print(f"report:   {shown(out / 'report.html')}")
    winner = result.winner
    if result.met and winner is not None:
        from scaledl.optimize.evaluation import headline_metric

        metric = headline_metric(result.ctx.task, result.parent.test or None)
        console.print(
            f"[bold green]chosen {winner.id}[/] → {shown(out / str(winner.package or ''))}\n"
            f"test {metric} {winner.test.get(metric, float('nan')):.4f} "
            f"(parent {result.parent.test.get(metric, float('nan')):.4f})",
            highlight=False,
        )
        console.print(result.choice.reason, highlight=False)
        console.print(result.promise(), highlight=False)
        if winner.engine is not None:
            console.print(engine_line(winner.engine), highlight=False)
        return
    for line in result.choice.diagnosis:
        console.print(f"[red]✗[/] {line}", highlight=False)
    where = (
        f"; best effort {winner.id} written to {out / str(winner.package or '')}" if winner else ""
    )
    raise GoalNotMetError("no candidate meets the budget" + where)


def optimize_config(ctx: typer.Context) -> OptimizeConfig:
    """The config an `optimize` command line gives: its flags over the config's defaults."""
    from scaledl.errors import UsageError
    from scaledl.optimize.context import check_target
    from scaledl.optimize.registry import method_names, resolve_methods
    from scaledl.validation import validate

    raw = FLAGS.given(ctx, ctx.params)
    raw["settings"] = _settings(ctx.params["set_"] or [])
    raw["keep"] = "all" if ctx.params["keep_all"] else "frontier"
    config = validate(OptimizeConfig, raw, "scaledl optimize", UsageError, FLAGS.names(ctx))
    check_target(config.target)
    resolve_methods(config.methods)  # unknown names → exit 2 listing the valid ones
    unknown = sorted(set(config.settings) - set(method_names()))
    if unknown:
        raise UsageError(
            f"--set {unknown[0]}.…: unknown method; valid: {', '.join(method_names())}"
        )
    return config


def _settings(items: list[str]) -> dict[str, dict[str, Any]]:
    from scaledl.config.overrides import apply_override
    from scaledl.errors import UsageError

    raw: dict[str, Any] = {}
    for item in items:
        key = item.partition("=")[0]
        if "." not in key:
            raise UsageError(
                f"--set {item!r}: expected METHOD.SETTING=VALUE, e.g. prune.ratios=[0.5]"
            )
        apply_override(raw, item, UsageError)
    return raw


def _print_methods() -> None:
    from rich.table import Table

    from scaledl.optimize.registry import methods

    table = Table(title="optimize methods (--methods, --set NAME.SETTING=VALUE)")
    for name in ("method", "kind", "default", "what it does", "settings"):
        table.add_column(name)
    for name, method in sorted(methods().items()):
        info = method.describe()
        settings = ", ".join(f"{k}={v}" for k, v in info["settings"].items())
        table.add_row(
            name, method.kind, "yes" if method.default else "no", info["summary"], settings
        )
    print_table(table)


def _table(result: Any) -> Any:
    from rich import box
    from rich.table import Table

    cons = result.constraints
    accuracy = cons.budget == "accuracy"
    table = Table(
        title=f"optimize {result.ctx.parent.name} ({cons.budget}: validation split"
        + (
            f", cross-fitted over {result.cross_fit['folds']} folds ({result.cross_fit['rows']} "
            "rows) where it ran"
            if result.cross_fit
            else ""
        )
        + f"; bounds at {cons.confidence:.0%}; test change with its bounds, for the parent "
        "and the packaged candidates)",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    change = "drop pt" if accuracy else "error +%"
    columns = ("id", "transforms", "val", change, "bounds", "test", "p25 ms", "p50 ms")
    for name in (*columns, "p95 ms", "kB", ""):
        left = name in ("id", "transforms", "")
        table.add_column(
            name,
            justify="left" if left else "right",
            min_width=22 if name == "transforms" else None,
            overflow="fold" if left else "ellipsis",
            no_wrap=not left,
        )
    for c in result.candidates:
        label = "+".join(c.transforms) or "parent"
        if not c.ok or c.latency is None:
            table.add_row(c.id, label, *[""] * 8, f"[red]{c.status}[/]")
            continue
        mark = "[bold green]chosen[/]" if result.choice.chosen is c else ""
        if not mark and not cons.meets(c):
            mark = "[dim]over[/]"
        table.add_row(
            c.id,
            label,
            f"{cons.quality(c) if accuracy else -cons.quality(c):.4f}",
            f"{(cons.drop(c) if accuracy else cons.error_increase(c)) * 100:.2f}",
            _bounds(c.drop),
            c.test_drop.text().replace(" pt", "") if c.test_drop is not None else "",
            f"{c.latency.p25_ms:.4f}",
            f"{c.latency.p50_ms:.4f}",
            f"{c.latency.p95_ms:.4f}",
            f"{c.size_bytes / 1e3:.1f}",
            mark,
        )
    return table


def engine_line(record: dict[str, Any]) -> str:
    """E.g. `engine: onnxruntime (p25 onnxruntime 0.0103 ms, openvino 0.0973 ms)`."""
    timed = ", ".join(f"{name} {ms:.4f} ms" for name, ms in record.get("p25_ms", {}).items())
    notes = "; ".join(record.get("notes", []))
    return (
        f"engine: {record['engine']}"
        + (f" (p25 {timed})" if timed else "")
        + (f"; {notes}" if notes else "")
    )


def _bounds(drop: Any) -> str:
    return "" if drop is None else f"[{drop.lower * 100:.2f}, {drop.upper * 100:.2f}]"


def register(app: typer.Typer) -> None:
    app.command("optimize")(optimize)
