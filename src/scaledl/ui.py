"""Progress bars for long work, shown only when a front end (the CLI) turns them on.

Library code calls `progress(...)`; in a notebook or a server nothing is drawn unless
`enable_progress()` was called, so library code never prints on its own. On a console that is
not a terminal (output sent to a log file or a pipe) a live bar cannot be drawn, so progress is
written as plain lines instead, one every `LOG_EVERY_S` seconds and one at the end.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

_console: Any = None
LOG_EVERY_S = 60.0  # how often a log (not a terminal) gets a progress line


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


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


class _LogLines(ProgressHandle):
    """The same handle, written as a line at most every `LOG_EVERY_S` seconds: what a live bar
    shows (done of total, elapsed, time remaining, the live fields), readable with `tail -f`
    in a log of a long run that would otherwise stay silent until it ends."""

    def __init__(self, console: Any, description: str, total: float | None, unit: str | None):
        super().__init__()
        self._console, self._unit = console, unit
        self._description, self._total = description, total
        self._completed, self._info = 0.0, ""
        self._start = self._last = time.monotonic()

    def advance(self, steps: float = 1, description: str | None = None, **fields: Any) -> None:
        self._completed += steps
        self._note(description, fields)

    def update(
        self, completed: float | None = None, total: float | None = None, **fields: Any
    ) -> None:
        if completed is not None:
            self._completed = completed
        if total is not None:
            self._total = total
        self._note(fields.pop("description", None), fields)

    def _note(self, description: str | None, fields: dict[str, Any]) -> None:
        if description is not None:
            self._description = description
        if fields:
            self._info = _fmt(fields)["info"]
        if time.monotonic() - self._last >= LOG_EVERY_S:
            self.write()

    def write(self, final: bool = False) -> None:
        now = time.monotonic()
        self._last, elapsed = now, now - self._start
        unit = f" {self._unit}" if self._unit else ""
        done = (
            f"{self._completed:.0f}/{self._total:.0f}" if self._total else f"{self._completed:.0f}"
        )
        parts = [f"{self._description}: {done}{unit}", f"elapsed {_clock(elapsed)}"]
        if not final and self._total and 0 < self._completed < self._total:
            rest = elapsed / self._completed * (self._total - self._completed)
            parts.append(f"remaining {_clock(rest)}")
        if self._info:
            parts.append(self._info)
        self._console.print("  ".join(parts), markup=False, highlight=False, soft_wrap=True)


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
    if not (_console.is_terminal or _console.is_jupyter):  # a notebook draws live bars too
        lines = _LogLines(_console, description, total, unit)
        yield lines
        lines.write(final=True)
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
