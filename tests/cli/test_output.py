"""What the CLI prints stays copyable when stdout is a pipe: no wrapped paths, no markup eaten."""

from __future__ import annotations

import io
import re
import shutil
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import quick_recipe, run_cli

pytestmark = pytest.mark.e2e


def long_folder(base: Path) -> Path:
    """A path far wider than any console, with characters rich would read as markup/emoji."""
    folder = base / ("deep-" * 12) / ("x" * 120) / "[exp]:smile:"
    folder.mkdir(parents=True)
    return folder


def test_long_paths_print_on_one_line_through_a_pipe(digits_package: Path, tmp_path: Path) -> None:
    where = long_folder(tmp_path)
    pkg = Path(shutil.copytree(digits_package, where / "pkg"))
    result = run_cli("verify", str(pkg), "--json", str(where / "report.json"))  # stdout: a pipe
    assert result.returncode == 0, result.stderr
    assert f"{pkg}: OK" in result.stdout.splitlines()[-1]
    assert (where / "report.json").is_file()

    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(quick_recipe(train={"epochs": 1, "batch_size": 64})))
    out = where / "run"
    result = run_cli("train", str(recipe), "--out", str(out), env={"COLUMNS": "60"})
    assert result.returncode == 0, result.stderr
    assert f"package: {out / 'package'}" in result.stdout.splitlines()
    # stderr is a pipe too: the training bar is written as plain lines, not redrawn in place
    assert any(
        re.match(r"epoch 1/1: (\d+)/\1  elapsed \d:\d\d:\d\d", line)
        for line in result.stderr.splitlines()
    )


def test_the_training_summary_reports_the_best_epochs_score() -> None:
    """The package holds the best epoch's weights: its validation score is the one reported,
    with the last epoch's beside it when early stopping or a later decline made them differ."""
    from scaledl.cli.scale import epoch_summary

    history = [
        {"epoch": 1, "val_accuracy": 0.7948},
        {"epoch": 2, "val_accuracy": 0.7901},
        {"epoch": 3, "val_accuracy": 0.7764},
    ]
    assert epoch_summary(history, 1) == "best epoch 1, val accuracy 0.7948 (last epoch: 0.7764)"
    assert epoch_summary(history, 3) == "best epoch 3, val accuracy 0.7764"
    assert epoch_summary([{"epoch": 1, "val_loss": 0.3}], 1) == "best epoch 1"  # regression
    assert epoch_summary([], -1) == "best epoch -1"


def test_progress_in_a_log_is_written_as_lines_with_the_time_remaining(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A long run sent to a log file says where it is while it runs, not only when it ends."""
    from rich.console import Console

    from scaledl import ui

    log = io.StringIO()
    monkeypatch.setattr(ui, "LOG_EVERY_S", 0.0)  # a line on every step
    ui.enable_progress(Console(file=log, force_terminal=False, width=40))
    try:
        with ui.progress("search", 4, unit="s") as bar:
            bar.advance(1, loss=0.25)
            bar.update(completed=3, total=6, description="second chances")
            time.sleep(0.01)
    finally:
        ui.disable_progress()
    lines = log.getvalue().splitlines()
    assert lines[0].startswith("search: 1/4 s  elapsed 0:00:00  remaining 0:00:00  loss 0.25")
    assert lines[1].startswith("second chances: 3/6 s  elapsed 0:00:00  remaining")
    assert lines[-1].startswith("second chances: 3/6 s  elapsed")  # the line at the end
    assert "remaining" not in lines[-1] and len(lines) == 3
    assert all("\x1b" not in line and "━" not in line for line in lines)  # no bar drawing


def test_a_terminal_still_gets_a_live_bar() -> None:
    from rich.console import Console

    from scaledl import ui

    screen = io.StringIO()
    ui.enable_progress(Console(file=screen, force_terminal=True, width=80))
    try:
        with ui.progress("search", 2) as bar:
            bar.advance(2)
    finally:
        ui.disable_progress()
    assert "━" in screen.getvalue() and "elapsed" not in screen.getvalue()
