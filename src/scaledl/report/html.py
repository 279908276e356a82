"""Self-contained HTML: sections of text, tables and matplotlib figures as base64 PNGs."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1100px;color:#1d2330;padding:0 1rem}h1{font-size:1.6rem}
h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #dde}
.table-wrap{max-width:100%;overflow-x:auto;margin:.5rem 0}
table{border-collapse:collapse;font-size:.9rem}td.num{white-space:nowrap}
td.text{overflow-wrap:anywhere;min-width:9rem;text-align:left}
th,td{border:1px solid #ccd;padding:.3rem .6rem;text-align:right}th{background:#f0f2f7}
td:first-child,th:first-child{text-align:left}img{max-width:100%}
pre{background:#f6f8fa;padding:.8rem;overflow:auto;font-size:.85rem}.note{color:#555}
.good{color:#176d2c}.bad{color:#a11}.figs{display:flex;flex-wrap:wrap;gap:1rem}
"""


def figure_data_uri(fig: Any, dpi: int = 110) -> str:
    """Render a matplotlib figure to a `data:image/png;base64,…` URI and close it."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


# Text longer than this (a lineage, a path, notes) may wrap anywhere: the table then fits the
# page; numbers never wrap. A table that still cannot fit scrolls inside its own box.
WRAP_AFTER = 24


def _cell(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        text = str(value)
        css = " class='text'" if len(text) > WRAP_AFTER else ""
        return f"<td{css}>{html.escape(text)}</td>"
    shown = f"{value:.4g}" if isinstance(value, float) else str(value)
    return f"<td class='num'>{shown}</td>"


def table_html(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    if not rows:
        return "<p class='note'>(none)</p>"
    columns = list(columns or rows[0].keys())
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(_cell(row.get(c, "")) for c in columns) + "</tr>" for row in rows
    )
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f"<div class='table-wrap'>{table}</div>"


@dataclass
class HtmlReport:
    title: str
    parts: list[str] = field(default_factory=list)

    def heading(self, text: str) -> None:
        self.parts.append(f"<h2>{html.escape(text)}</h2>")

    def paragraph(self, text: str, css: str = "") -> None:
        cls = f" class='{css}'" if css else ""
        self.parts.append(f"<p{cls}>{html.escape(text)}</p>")

    def table(self, rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> None:
        self.parts.append(table_html(rows, columns))

    def figure(self, fig: Any, alt: str) -> None:
        self.parts.append(f"<img alt='{html.escape(alt)}' src='{figure_data_uri(fig)}'>")

    def figures(self, figs: Sequence[tuple[Any, str]]) -> None:
        imgs = "".join(f"<img alt='{html.escape(a)}' src='{figure_data_uri(f)}'>" for f, a in figs)
        self.parts.append(f"<div class='figs'>{imgs}</div>")

    def code(self, text: str) -> None:
        self.parts.append(f"<pre>{html.escape(text)}</pre>")

    def raw(self, fragment: str) -> None:
        self.parts.append(fragment)

    def render(self) -> str:
        body = "\n".join(self.parts)
        return (
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head>"
            f"<body><h1>{html.escape(self.title)}</h1>\n{body}\n</body></html>"
        )
