"""`kore-sessions report`: one self-contained HTML file with the containment views.

The report reads the marts (containment per day, week, month, channel, language and tag,
`fct_session_behaviour_daily` for the session behaviour, `fct_dropoff_points` for where users
leave, `dim_bots`) with
`kore_model_settings` and `_dlt_loads`. Each measure is the mart's: a number that is one mart
row (one bot's day, week or month) is read from the mart's column; a number over several rows
(all bots, several days, a channel over bots) sums the mart's counts, which add up, and divides
the sums, so an "all bots" rate is never an average of per-bot rates. The one exception is what
no mart has and no sum gives: the means and duration percentiles of the sessions of several
days or bots, computed over `fct_sessions` (see `behaviour`). plotly.js is inlined, so the file
opens in any browser without a server or a network. It never shows a user id, caller number,
call id or session id: it reads aggregates only, and tag values pass `privacy.select_tags`.

One concern a module: `queries` reads the containment marts into `report_data`'s records,
`behaviour` the behaviour mart, `leaving` the last bot messages of drop-off and agent sessions,
`freshness` says how recent they are and which day is partial,
`counts` sums them and gives their rates, `names` gives channels and languages readable names,
`privacy` picks the tag values that may be shown, `figures` draws the plotly trend, `tables`
and `sections` write the HTML, and `page` fills the template `page.html` with them; `console`
is the last days' table the commands print.
"""

from __future__ import annotations

from pathlib import Path

import dlt
from kore_sessions.report.counts import DailyCounts, Rates, SliceCounts, TagCounts, Totals, total
from kore_sessions.report.figures import ALL_BOTS, build_figures
from kore_sessions.report.page import render_report
from kore_sessions.report.queries import ReportError, read_report_data
from kore_sessions.report.report_data import Behaviour, BotSpan, ReportData, Shares

__all__ = [
    "ALL_BOTS",
    "DEFAULT_REPORT_FILE",
    "Behaviour",
    "BotSpan",
    "DailyCounts",
    "Rates",
    "ReportData",
    "ReportError",
    "Shares",
    "SliceCounts",
    "TagCounts",
    "Totals",
    "build_figures",
    "read_report_data",
    "render_report",
    "total",
    "write_report",
]

# File `kore-sessions report` (and the demo) writes when no --output is given.
DEFAULT_REPORT_FILE = "kore_containment_report.html"


def write_report(pipeline: dlt.Pipeline, path: Path, days: int = 30) -> Path:
    """Read the marts, render the report and write it as UTF-8.

    Args:
        pipeline: The `kore_sessions` pipeline whose dataset holds the marts.
        path: The HTML file to write (its folder is created if needed).
        days: Number of days to report.

    Returns:
        The resolved path of the written file.

    Raises:
        ReportError: When the models are not built in the dataset.
    """
    page = render_report(read_report_data(pipeline, days))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path.resolve()
