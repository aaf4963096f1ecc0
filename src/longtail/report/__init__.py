"""The project report: one self-contained HTML file (plotly's JavaScript inlined, no
network), rendered from `longtail.engine.report.report_data`."""

from longtail.report.html import render

__all__ = ["render"]
