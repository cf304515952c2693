"""HTML reports of runs and comparisons of two runs (``devopsim report``, ``devopsim compare``).

A report is one self-contained HTML page: tables of the summary and charts of
the scraped series, with the chart library inlined, so it opens offline.
"""

from __future__ import annotations

from devopsim.report.html import render_comparison, render_report, write_html
from devopsim.report.run import RunData, from_result, load_run

__all__ = ["RunData", "from_result", "load_run", "render_comparison", "render_report", "write_html"]
