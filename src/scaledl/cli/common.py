"""Shared CLI helpers: consoles, option types, JSON output.

The one console set-up: output is often a pipe or a log file, where a wrapped path or metric
line cannot be copied or parsed, so lines never wrap (tables still fit the width), `:name:`
is never turned into an emoji, and paths or other user text go through `shown()` so that
`[brackets]` in them print as they are instead of being read as console markup.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from scaledl.errors import UsageError
from scaledl.fsio import atomic_write_text

console = Console(soft_wrap=True, emoji=False)
err_console = Console(stderr=True, soft_wrap=True, emoji=False)


def shown(value: object) -> str:
    """A path or user text inside a console markup string, printed verbatim."""
    return escape(str(value))


TRUST_CODE_HELP = (
    "Allow importing and running the Python class a custom model names (model.family custom, "
    "class_path); off by default: a package or recipe is data. Only for files you trust."
)


def trust_code_option() -> Any:
    """`--trust-code`, as Hugging Face's `trust_remote_code`: off unless given for this run."""
    import typer

    return typer.Option(False, "--trust-code", help=TRUST_CODE_HELP)


def print_table(table: Table, out: Console | None = None) -> None:
    """A table on a terminal fits its width; in a pipe or a log file it is never cut.

    Off a terminal rich assumes 80 columns and would cut or fold cells (an id, a number, a
    path) to fit; there, the table is printed at the width its content needs instead.
    """
    from rich.measure import Measurement

    out = out or console
    if out.is_terminal:
        out.print(table)
        return
    wide = out.options.update(max_width=100_000)
    needed = max(Measurement.get(out, wide, table).maximum, out.width)
    # A console's print never goes wider than the console: print through one as wide as needed.
    Console(file=out.file, width=needed, soft_wrap=True, emoji=False).print(table)


def write_json(path: Path | None, data: Any) -> None:
    if path is None:
        return
    if Path(path).is_dir():
        raise UsageError(
            f"--json {path}: is a folder; give a file name, e.g. {Path(path) / 'out.json'}"
        )
    atomic_write_text(path, json.dumps(data, indent=2, default=str))


def metrics_table(title: str, rows: dict[str, Any]) -> Table:
    table = Table(title=title, show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in rows.items():
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    return table


def baselines_table(metrics: dict[str, Any], baselines: dict[str, dict[str, Any]]) -> Table:
    """The model's errors beside the naive forecasts' on the same windows."""
    keys = [k for k in ("mse_standardized", "mae_standardized", "mse", "mae") if k in metrics]
    table = Table(title="forecast errors on the same windows", show_header=True)
    table.add_column("forecast")
    for key in keys:
        table.add_column(key.replace("_standardized", " (std)"), justify="right")
    table.add_row("model", *(f"{metrics[k]:.4f}" for k in keys))
    for name, values in baselines.items():
        table.add_row(name.replace("_", " "), *(f"{values.get(k, float('nan')):.4f}" for k in keys))
    return table


def parse_int_list(text: str, flag: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(
            f"{flag} {text!r}: expected comma-separated integers, e.g. 1,8,64"
        ) from None
    if not values or min(values) < 1:
        raise UsageError(f"{flag} {text!r}: expected positive integers, e.g. 1,8,64")
    return values
