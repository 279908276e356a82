"""HTML reports with embedded PNG plots (one self-contained file, no network)."""

from scaledl.report.html import HtmlReport, figure_data_uri, table_html

__all__ = ["HtmlReport", "figure_data_uri", "table_html"]
