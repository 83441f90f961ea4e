"""The report's HTML page: the template files of this package filled with the figures and a table.

`page.html` is the page (style included) with `$title`, `$header` and `$body` placeholders for
`string.Template`; `no_data.html` is the body when there is nothing to show.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Sequence
from datetime import date
from importlib import resources
from string import Template

import plotly.graph_objects as go

from .counts import DailyCounts, Totals, sum_by
from .data import ReportData
from .figures import build_figures

# The package holding the template files (they ship as its package data).
TEMPLATE_PACKAGE = __name__.rpartition(".")[0]
# Days the totals table shows, newest first: one week.
TABLE_DAYS = 7
# Charts fit their container and carry no plotly logo.
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}
# What a reader needs to read the numbers right, listed under the facts.
DEFINITIONS = (
    "Sessions are counted on the day they started in the reporting time zone.",
    "Containment rate = self-service sessions / sessions: the user's need was met by the bot alone.",
    "Drop-off rate = drop-off sessions / sessions: the user left before the need was met.",
    "Agent-transfer rate = agent sessions / sessions: the session was handed over to a human agent.",
    "Totals over several bots, channels or days sum the counts first, then divide.",
)
# Column headings of the totals table, the day first.
TABLE_HEADINGS = (
    "Day",
    "Sessions",
    "Self-service",
    "Drop-off",
    "Agent",
    "Containment",
    "Drop-off rate",
    "Agent-transfer rate",
)
# What a rate without sessions shows: an en dash.
NO_RATE = "\u2013"


def render_report(data: ReportData) -> str:
    """Render the report as one self-contained HTML page.

    plotly.js is inlined (never loaded from a CDN), so the page works offline. Empty data gives
    a valid page that says there is no data.

    Args:
        data: The report's counts.

    Returns:
        The full HTML document.
    """
    figures = build_figures(data)
    sections = [
        _chart_section(
            "Containment trend", _trend_note(data), figures.get("trend"), "trend-chart", first=True
        ),
        _chart_section(
            "Sessions by channel",
            "All bots, whole period; hover a bar for the rates.",
            figures.get("channels"),
            "channels-chart",
            first="trend" not in figures,
        ),
        _table_section(data.daily),
    ]
    body = "\n".join(section for section in sections if section) if figures else _no_data()
    return Template(_template("page.html")).substitute(
        title=html.escape(f"Containment report: {data.dataset}"), header=_header(data), body=body
    )


@functools.cache
def _template(name: str) -> str:
    """The text of a template file of this package."""
    return resources.files(TEMPLATE_PACKAGE).joinpath(name).read_text(encoding="utf-8")


def _no_data() -> str:
    """The body of a page without data: one section, without the file's final line break."""
    return _template("no_data.html").rstrip("\n")


def _trend_note(data: ReportData) -> str:
    """The line under the trend chart's heading."""
    bots = len({row.bot_id for row in data.daily})
    if bots > 1:
        return f"Per day, {bots} bots: pick all bots or one bot in the menu; bars show the sessions."
    return "Per day; bars show the sessions."


def _chart_section(title: str, note: str, figure: go.Figure | None, div_id: str, first: bool) -> str:
    """A heading and one chart (the first chart carries plotly.js), or nothing without a figure."""
    if figure is None:
        return ""
    chart = figure.to_html(
        full_html=False, include_plotlyjs=first, div_id=div_id, config=PLOTLY_CONFIG, default_width="100%"
    )
    heading = f'<h2>{html.escape(title)}</h2><p class="note">{html.escape(note)}</p>'
    return f"<section>{heading}\n{chart}\n</section>"


def _header(data: ReportData) -> str:
    """Dataset, time zone, period, generation time and the definitions."""
    days = sorted({row.day for row in data.daily} | {row.day for row in data.channels})
    period = "no data"
    if days:
        span = (days[-1] - days[0]).days + 1
        period = f"{days[0].isoformat()} to {days[-1].isoformat()} ({span} days)"
    facts = [
        ("Dataset", data.dataset),
        ("Reporting time zone", data.reporting_time_zone or "unknown"),
        ("Sessions counted", data.scope),
        ("Period", period),
        ("Generated at", data.generated_at.isoformat(sep=" ", timespec="seconds")),
    ]
    items = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in facts)
    definitions = "".join(f"<li>{html.escape(line)}</li>" for line in DEFINITIONS)
    return f'<dl class="facts">{items}</dl>\n<ul class="definitions">{definitions}</ul>'


def _percent(value: float | None) -> str:
    """A rate as a percentage with one decimal, or a dash."""
    return NO_RATE if value is None else f"{value:.1%}"


def _table_section(rows: Sequence[DailyCounts]) -> str:
    """All-bots totals of the last days, newest first."""
    per_day = sum_by(rows, lambda row: row.day)
    days = sorted(per_day, reverse=True)[:TABLE_DAYS]
    if not days:
        return ""
    head = "".join(f"<th>{label}</th>" for label in TABLE_HEADINGS)
    body = "".join(_table_row(day, per_day[day]) for day in days)
    return (
        f"<section><h2>Last {len(days)} days, all bots</h2>"
        f'<table class="totals"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></section>'
    )


def _table_row(day: date, totals: Totals) -> str:
    """One day's row of the totals table."""
    cells = [
        f"{totals.sessions:,}",
        f"{totals.self_service:,}",
        f"{totals.drop_off:,}",
        f"{totals.agent:,}",
        _percent(totals.containment_rate),
        _percent(totals.drop_off_rate),
        _percent(totals.agent_transfer_rate),
    ]
    numbers = "".join(f"<td>{cell}</td>" for cell in cells)
    return f'<tr><th scope="row">{day.strftime("%a %Y-%m-%d")}</th>{numbers}</tr>'
