"""The report's HTML page: the template files of this package filled with the sections.

`page.html` is the page (style included) with `$title`, `$header` and `$body` placeholders for
`string.Template`; `no_data.html` is the body when there is nothing to show. Sections, top to
bottom: at a glance, the daily trend with the last days, weeks, months, bots, channels,
languages, tags, session behaviour, where users leave, and how to read the numbers.
"""

from __future__ import annotations

import functools
import html
from importlib import resources
from string import Template

import plotly.graph_objects as go
from kore_sessions.report.counts import sum_by, total
from kore_sessions.report.figures import build_figures
from kore_sessions.report.freshness import Period
from kore_sessions.report.report_data import ReportData
from kore_sessions.report.sections import (
    ALL_BOTS,
    behaviour_section,
    bots_section,
    channels_section,
    day_text,
    languages_section,
    leaving_section,
    periods_section,
    plural,
    section,
    tags_section,
    totals_note,
)
from kore_sessions.report.tables import TableRow, outcome_table, percent

# The package holding the template files (they ship as its package data).
TEMPLATE_PACKAGE = __name__.rpartition(".")[0]
# Days the daily table shows, newest first: one week.
TABLE_DAYS = 7
# Charts fit their container and carry no plotly logo or tool bar (nothing to click in print).
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True, "displayModeBar": False}
# What a reader needs to read the numbers right, listed at the end of the page.
DEFINITIONS = (
    "Sessions are counted on the day they started in the reporting time zone.",
    "Containment rate = self-service sessions / sessions: the user's need was met by the bot alone.",
    "Drop-off rate = drop-off sessions / sessions: the user left before the need was met.",
    "Agent-transfer rate = agent sessions / sessions: the session was handed over to a human agent.",
    "Totals over several bots, channels, days, weeks or months sum the counts first, then divide.",
    "Data as of: the newest successful load of the dataset; the current day is the day that "
    "contains it. A day, week or month that had not ended by then is partial ('to date'): its "
    "numbers will still grow. Period totals leave the partial day out.",
    "No user id, caller number, call id or session id is shown anywhere in this report.",
)


def render_report(data: ReportData) -> str:
    """Render the report as one self-contained HTML page.

    plotly.js is inlined (never loaded from a CDN), so the page works offline. Empty data gives
    a valid page that says there is no data.

    Args:
        data: The report's counts.

    Returns:
        The full HTML document.
    """
    period = data.period
    if period is None:
        body = _no_data()
    else:
        sections = [
            _glance_section(data, period),
            _trend_section(data, period, build_figures(data)["trend"]),
            periods_section(data, "week"),
            periods_section(data, "month"),
            bots_section(data, period),
            channels_section(data, period),
            languages_section(data, period),
            tags_section(data, period),
            behaviour_section(data, period),
            leaving_section(data, period),
            _definitions(),
        ]
        body = "\n".join(part for part in sections if part)
    return Template(_template("page.html")).substitute(
        title=html.escape(f"Containment report: {data.dataset}"), header=_header(data, period), body=body
    )


@functools.cache
def _template(name: str) -> str:
    """The text of a template file of this package."""
    return resources.files(TEMPLATE_PACKAGE).joinpath(name).read_text(encoding="utf-8")


def _no_data() -> str:
    """The body of a page without data: one section, without the file's final line break."""
    return _template("no_data.html").rstrip("\n")


def _header(data: ReportData, period: Period | None) -> str:
    """The data-as-of line, then dataset, time zone, scope, period and generation time."""
    span = "no data"
    if period is not None:
        span = (
            f"{period.first_day.isoformat()} to {period.last_day.isoformat()} ({plural(period.days, 'day')})"
        )
    facts = [
        ("Dataset", data.dataset),
        ("Reporting time zone", data.reporting_time_zone or "unknown"),
        ("Sessions counted", data.scope),
        ("Period", span),
        ("Generated at", data.generated_at.isoformat(sep=" ", timespec="seconds")),
    ]
    items = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in facts)
    return f'{_as_of_line(data, period)}\n<dl class="facts">{items}</dl>'


def _as_of_line(data: ReportData, period: Period | None) -> str:
    """When the data is from, and which day is partial."""
    freshness = data.freshness
    zone = data.reporting_time_zone or "UTC"
    if freshness.as_of is None:
        return '<p class="as-of"><strong>Data as of: unknown</strong> (no load and no session recorded).</p>'
    newest = f"newest session started {freshness.stamp(data.newest_session_at)}"
    source = f"last load; {newest}" if data.last_load_at else f"{newest}; no load recorded in _dlt_loads"
    line = f"<strong>Data as of {freshness.stamp(freshness.as_of)} ({html.escape(zone)})</strong> ({source})."
    if period is not None and period.partial_day is not None:
        line += (
            f' <span class="partial-flag">{day_text(period.partial_day)} is a partial day</span>: '
            "marked in the chart and the tables, left out of period totals."
        )
    return f'<p class="as-of">{line}</p>'


def _glance_section(data: ReportData, period: Period) -> str:
    """The period totals (complete days) in four figures, and the partial day so far."""
    totals = total(row for row in data.daily if period.in_totals(row.day))
    tiles = [
        ("sessions", f"{totals.sessions:,}", "sessions"),
        ("ss", percent(totals.containment_rate), f"containment ({totals.self_service:,})"),
        ("do", percent(totals.drop_off_rate), f"drop-off ({totals.drop_off:,})"),
        ("ag", percent(totals.agent_transfer_rate), f"agent transfer ({totals.agent:,})"),
    ]
    content = '<div class="tiles">' + "".join(
        f'<div class="tile {css}"><span class="tile-value">{value}</span>'
        f'<span class="tile-label">{html.escape(label)}</span></div>'
        for css, value, label in tiles
    )
    content += "</div>"
    partial = period.partial_day
    if partial is not None and not period.totals_partial:
        so_far = total(row for row in data.daily if row.day == partial)
        content += (
            f'<p class="partial-so-far">So far on {day_text(partial)} (partial, as of '
            f"{html.escape(data.freshness.as_of_on(partial))}): {so_far.sessions:,} sessions, "
            f"containment {percent(so_far.containment_rate)}.</p>"
        )
    return section("glance", "At a glance", totals_note(period, data.freshness), content)


def _trend_section(data: ReportData, period: Period, figure: go.Figure) -> str:
    """The daily chart (carrying plotly.js) and the last days' all-bots table."""
    bots = len(data.bot_ids)
    note = "Per day; bars show the sessions, labels the rates."
    if bots > 1:
        note = (
            f"Per day, {bots} bots: pick all bots or one bot in the menu; "
            "bars show the sessions, labels the rates."
        )
    if period.partial_day is not None:
        note += f" The hatched, shaded day ({day_text(period.partial_day)}) is partial."
    chart = figure.to_html(
        full_html=False,
        include_plotlyjs=True,
        div_id="trend-chart",
        config=PLOTLY_CONFIG,
        default_width="100%",
    )
    return section("trend", "Daily trend", note, f"{chart}\n{_daily_table(data, period)}")


def _daily_table(data: ReportData, period: Period) -> str:
    """All-bots counts of the last days, newest first, the partial day marked."""
    per_day = sum_by(data.daily, lambda row: row.day)
    days = sorted(per_day, reverse=True)[:TABLE_DAYS]
    rows = []
    for day in days:
        if day == period.partial_day:
            note = f"partial, as of {data.freshness.as_of_on(day)}"
            rows.append(TableRow(day_text(day), per_day[day], note=note, css="partial"))
        else:
            rows.append(TableRow(day_text(day), per_day[day]))
    complete = [day for day in days if day != period.partial_day]
    footer = None
    if len(complete) > 1:
        label = plural(len(complete), "complete day" if period.partial_day in days else "day")
        footer = TableRow(label, total(per_day[day] for day in complete), css="total")
    count = plural(len(days), "day") if len(days) > 1 else "day"
    heading = f"<h3>Last {count}, {ALL_BOTS.lower()}</h3>"
    return heading + outcome_table("totals", "Day", rows, footer=footer)


def _definitions() -> str:
    """How to read the numbers."""
    items = "".join(f"<li>{html.escape(line)}</li>" for line in DEFINITIONS)
    return section("definitions", "How to read this report", "", f'<ul class="definitions">{items}</ul>')
