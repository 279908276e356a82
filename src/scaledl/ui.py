"""Progress bars for long work, shown only when a front end (the CLI) turns them on.

Library code calls `progress(...)`; in a notebook or a server nothing is drawn unless
`enable_progress()` was called, so library code never prints on its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

_console: Any = None


def enable_progress(console: Any = None) -> None:
    """Draw progress bars on `console` (a rich Console; default: stderr)."""
    global _console
    if console is None:
        from rich.console import Console

        console = Console(stderr=True)
    _console = console


def disable_progress() -> None:
    global _console
    _console = None


class ProgressHandle:
    """Advance the bar and show live fields (loss, accuracy, speed…)."""

    def __init__(self, bar: Any = None, task: Any = None) -> None:
        self._bar, self._task = bar, task

    def advance(self, steps: float = 1, description: str | None = None, **fields: Any) -> None:
        if self._bar is not None:
            extra = {"description": description} if description is not None else {}
            self._bar.update(self._task, advance=steps, **extra, **_fmt(fields))

    def update(
        self, completed: float | None = None, total: float | None = None, **fields: Any
    ) -> None:
        if self._bar is not None:
            kwargs: dict[str, Any] = {}
            if completed is not None:
                kwargs["completed"] = completed
            if total is not None:
                kwargs["total"] = total
            description = fields.pop("description", None)
            if description is not None:
                kwargs["description"] = description
            self._bar.update(self._task, **kwargs, **_fmt(fields))


def _fmt(fields: dict[str, Any]) -> dict[str, Any]:
    if not fields:
        return {}
    text = "  ".join(
        f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in fields.items()
    )
    return {"info": text}


@contextlib.contextmanager
def progress(
    description: str, total: float | None, unit: str | None = None
) -> Iterator[ProgressHandle]:
    """A bar with elapsed time and ETA; `unit` (e.g. "s") counts in that unit, not in steps."""
    if _console is None:
        yield ProgressHandle()
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    count = (
        TextColumn(f"{{task.completed:.0f}}/{{task.total:.0f}} {unit}")
        if unit
        else MofNCompleteColumn()
    )
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        count,
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
    )
    with Progress(*columns, console=_console, transient=False) as bar:
        task = bar.add_task(description, total=total, info="")
        yield ProgressHandle(bar, task)


def track(items: list[Any], description: str, on_item: Callable[[Any], Any]) -> list[Any]:
    """Apply `on_item` to each item with a progress bar; returns the results in order."""
    out = []
    with progress(description, len(items)) as bar:
        for item in items:
            out.append(on_item(item))
            bar.advance()
    return out
