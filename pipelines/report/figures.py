"""The report's plotly figure: the daily containment trend, rates labelled, the partial day marked."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

import plotly.graph_objects as go
from kore_sessions.report.counts import DailyCounts, Totals, sum_by
from kore_sessions.report.report_data import ReportData

# Name of the series summing every bot; the trend shows it first.
ALL_BOTS = "All bots"
# The rates of the trend: rate attribute, legend label, colour, outcome count attribute, where
# the labels go (the lowest line's below its points, away from the drop-off labels).
RATES = (
    ("containment_rate", "Containment rate", "#2a9d8f", "self_service", "top center"),
    ("drop_off_rate", "Drop-off rate", "#c98a0b", "drop_off", "top center"),
    ("agent_transfer_rate", "Agent-transfer rate", "#e76f51", "agent", "bottom center"),
)
# Light grey, so the session bars stay behind the rate lines.
SESSIONS_COLOR = "#ced4da"
# The partial day's bar is hatched, so it reads as "not all there" even printed in grey.
PARTIAL_PATTERN = "/"
# Its rate points are open circles: the same rates, still moving.
PARTIAL_SYMBOL = "circle-open"
# A light amber band behind it, the colour of the page's "partial" badges.
PARTIAL_BAND = "rgba(255, 193, 7, 0.14)"
# Milliseconds in a day: plotly's date axes count ticks in milliseconds.
DAY_MS = 86_400_000
# Bars a little narrower than a day, also when there is only one (plotly cannot infer it then).
BAR_WIDTH_MS = DAY_MS * 0.8
# At most about this many date ticks, so the labels do not overlap.
MAX_DAY_TICKS = 10
# At most about this many rate labels a line (every n-th day beyond), so they stay legible.
MAX_LABELS = 31
# Traces of one series: the sessions bars and the three rate lines.
TRACES_PER_SERIES = len(RATES) + 1


def build_figures(data: ReportData) -> dict[str, go.Figure]:
    """Build the report's plotly figures.

    Args:
        data: The report's counts.

    Returns:
        `{"trend": ...}` when there are daily rows, else `{}`. The trend has, per series ("All
        bots" first, then each bot when there are several), four traces: sessions (bars) and
        the containment, drop-off and agent-transfer rates (lines, each point labelled); a
        dropdown switches between series. The partial day, if any, is hatched and annotated.
    """
    if not data.daily:
        return {}
    period = data.period
    partial = period.partial_day if period else None
    as_of = data.freshness.as_of_on(partial) if partial else ""
    return {"trend": _trend_figure(data.daily, partial, as_of)}


def _all_days(rows: Sequence[DailyCounts]) -> list[date]:
    """Every calendar day from the first to the last day of `rows`."""
    first, last = min(row.day for row in rows), max(row.day for row in rows)
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]


def _series(rows: Sequence[DailyCounts]) -> dict[str, list[DailyCounts]]:
    """Rows per series: all bots, then each bot (only when there are several)."""
    series: dict[str, list[DailyCounts]] = {ALL_BOTS: list(rows)}
    bots = sorted({row.bot_id for row in rows})
    if len(bots) > 1:
        for bot in bots:
            series[bot] = [row for row in rows if row.bot_id == bot]
    return series


def _labels(values: Sequence[float | None]) -> list[str]:
    """Whole-percent labels for the points, every n-th one when there are many."""
    step = max(1, -(-len(values) // MAX_LABELS))
    last = len(values) - 1
    return [
        "" if value is None or (index % step and index != last) else f"{value:.0%}"
        for index, value in enumerate(values)
    ]


def _trend_traces(
    name: str, days: list[date], per_day: dict[date, Totals], partial: date | None
) -> list[Any]:
    """Sessions bars and the three labelled rate lines of one series."""
    totals = [per_day.get(day, Totals()) for day in days]
    marked = [day == partial for day in days]
    visible = name == ALL_BOTS
    traces: list[Any] = [
        go.Bar(
            x=days,
            y=[t.sessions for t in totals],
            name="Sessions",
            visible=visible,
            marker={
                "color": SESSIONS_COLOR,
                "pattern": {"shape": [PARTIAL_PATTERN if m else "" for m in marked], "fgcolor": "#868e96"},
            },
            opacity=0.7,
            width=BAR_WIDTH_MS,
            meta=name,
            hovertemplate="%{y:,} sessions<extra></extra>",
        )
    ]
    for attribute, label, color, count, position in RATES:
        values = [getattr(t, attribute) for t in totals]
        traces.append(
            go.Scatter(
                x=days,
                y=values,
                name=label,
                mode="lines+markers+text",
                text=_labels(values),
                textposition=position,
                textfont={"size": 10, "color": color},
                visible=visible,
                meta=name,
                yaxis="y2",
                line={"color": color, "width": 2.5},
                marker={
                    "size": [9 if m else 5 for m in marked],
                    "symbol": [PARTIAL_SYMBOL if m else "circle" for m in marked],
                },
                customdata=[[getattr(t, count), t.sessions] for t in totals],
                connectgaps=False,
                cliponaxis=False,
                hovertemplate=f"{label}: %{{y:.1%}} (%{{customdata[0]:,}} of %{{customdata[1]:,}})"
                "<extra></extra>",
            )
        )
    return traces


def _trend_figure(rows: Sequence[DailyCounts], partial: date | None, as_of: str) -> go.Figure:
    """Daily rates per series, with a dropdown to pick the series."""
    days = _all_days(rows)
    series = _series(rows)
    figure = go.Figure()
    for name, series_rows in series.items():
        figure.add_traces(_trend_traces(name, days, sum_by(series_rows, lambda row: row.day), partial))
    figure.update_layout(
        _base_layout(),
        hovermode="x unified",
        # Rates on the overlaying axis, so their lines are drawn over the session bars.
        yaxis={
            "title": "sessions",
            "side": "right",
            "showgrid": False,
            "rangemode": "tozero",
            "tickformat": ",d",
        },
        yaxis2={
            "title": "share of sessions",
            "overlaying": "y",
            "side": "left",
            "tickformat": ".0%",
            "tickmode": "linear",
            "tick0": 0,
            "dtick": 0.2,
            "range": [0, 1.08],
            "gridcolor": "#eee",
        },
        xaxis={
            "type": "date",
            "tickformat": "%b %d",
            "hoverformat": "%a %Y-%m-%d",
            "dtick": _day_tick(days),
            # Half a day either side, so one day alone is a bar, not a point in a wide axis.
            "range": [_noon_before(days[0]), _noon_before(days[-1] + timedelta(days=1))],
        },
        legend={"orientation": "h", "y": -0.15},
        margin={"t": 70, "r": 60, "l": 60, "b": 40},
    )
    if partial is not None:
        _mark_partial(figure, partial, as_of)
    if len(series) > 1:
        figure.update_layout(updatemenus=[_series_menu(list(series))])
    return figure


def _noon_before(day: date) -> datetime:
    """Noon of the day before: where the bar of `day` (centred on its midnight) gets room."""
    return datetime.combine(day, time()) - timedelta(hours=12)


def _mark_partial(figure: go.Figure, day: date, as_of: str) -> None:
    """Shade the partial day and say so above it."""
    middle = datetime.combine(day, time())
    figure.add_vrect(
        x0=_noon_before(day),
        x1=_noon_before(day + timedelta(days=1)),
        fillcolor=PARTIAL_BAND,
        line_width=0,
        layer="below",
    )
    figure.add_annotation(
        x=middle,
        y=1,
        xref="x",
        yref="paper",
        yanchor="bottom",
        text=f"partial day<br>as of {as_of}",
        showarrow=False,
        font={"size": 11, "color": "#7a5b00"},
    )


def _day_tick(days: Sequence[date]) -> int:
    """Milliseconds between date ticks: whole days, at most about ten ticks."""
    return DAY_MS * max(1, -(-len(days) // MAX_DAY_TICKS))


def _series_menu(names: list[str]) -> dict[str, Any]:
    """A dropdown showing one series' traces at a time."""
    positions = range(len(names) * TRACES_PER_SERIES)
    buttons = [
        {
            "label": name,
            "method": "restyle",
            "args": [{"visible": [position // TRACES_PER_SERIES == index for position in positions]}],
        }
        for index, name in enumerate(names)
    ]
    return {
        "buttons": buttons,
        "direction": "down",
        "x": 0,
        "xanchor": "left",
        "y": 1.16,
        "yanchor": "bottom",
    }


def _base_layout() -> dict[str, Any]:
    """Layout of the figure."""
    return {
        "template": "plotly_white",
        "height": 440,
        "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 13},
        "hoverlabel": {"namelength": -1},
    }
