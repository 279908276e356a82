"""Console tables: fitted to a terminal, never cut in a pipe or a log file."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table

from scaledl.cli.common import print_table
from scaledl.report.html import table_html


def _wide_table() -> Table:
    table = Table(title="candidates")
    for name in ("id", "transforms", "val", "drop pt", "bounds", "p25 ms", "package"):
        table.add_column(name, no_wrap=True, overflow="ellipsis")
    table.add_row(
        "c14",
        "slim:w0.5:d0.5+distill+int8:static:entropy:reduce-range",
        "0.9721",
        "0.56",
        "[-0.56, 1.12]",
        "0.0312",
        "packages/c14-slim-w0.5-d0.5_distill_int8-static-entropy-reduce-range",
    )
    return table


def test_a_table_in_a_log_file_keeps_every_cell_whole() -> None:
    log = io.StringIO()
    print_table(_wide_table(), Console(file=log, width=80, soft_wrap=True))
    text = log.getvalue()
    assert "slim:w0.5:d0.5+distill+int8:static:entropy:reduce-range" in text
    assert "packages/c14-slim-w0.5-d0.5_distill_int8-static-entropy-reduce-range" in text
    assert "[-0.56, 1.12]" in text and "…" not in text


def test_a_table_on_a_terminal_fits_its_width() -> None:
    screen = io.StringIO()
    terminal = Console(file=screen, width=80, force_terminal=True, color_system=None)
    print_table(_wide_table(), terminal)
    assert max(len(line) for line in screen.getvalue().splitlines()) <= 80


def test_html_tables_scroll_in_their_own_box_and_long_text_wraps() -> None:
    html = table_html([{"id": "c01", "transforms": "prune:0.5 → distill → " * 3, "p25 ms": 0.03}])
    assert html.startswith("<div class='table-wrap'><table>") and html.endswith("</table></div>")
    assert "<td class='text'>prune:0.5" in html and "<td class='num'>0.03</td>" in html
