"""`kore-sessions report`: one self-contained HTML file with the containment charts.

The report reads the containment marts (`fct_containment_daily` and
`fct_containment_daily_by_channel`), sums their counts and computes every rate from the sums,
so an "all bots" rate is never an average of per-bot rates. plotly.js is inlined, so the file
opens in any browser without a server or a network.

One concern a module: `data` reads the marts, `counts` sums them into rates, `figures` draws
the plotly charts and `page` fills the HTML template `page.html` with them.
"""

from __future__ import annotations

from pathlib import Path

import dlt

from .counts import ChannelCounts, DailyCounts, Totals, total
from .data import ReportData, ReportError, read_report_data
from .figures import ALL_BOTS, build_figures
from .page import render_report

__all__ = [
    "ALL_BOTS",
    "ChannelCounts",
    "DailyCounts",
    "ReportData",
    "ReportError",
    "Totals",
    "build_figures",
    "read_report_data",
    "render_report",
    "total",
    "write_report",
]


def write_report(pipeline: dlt.Pipeline, path: Path, days: int = 30) -> Path:
    """Read the marts, render the report and write it as UTF-8.

    Args:
        pipeline: The `kore_sessions` pipeline whose dataset holds the marts.
        path: The HTML file to write (its folder is created if needed).
        days: Number of days to report.

    Returns:
        The resolved path of the written file.

    Raises:
        ReportError: When the containment models are not built in the dataset.
    """
    page = render_report(read_report_data(pipeline, days))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path.resolve()
