"""The report's plotly figures: the daily containment trend and the split by channel."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import plotly.graph_objects as go

from .counts import ChannelCounts, DailyCounts, Totals, ratio, sum_by
from .data import ReportData

# Name of the series summing every bot; the trend shows it first.
ALL_BOTS = "All bots"
# The outcomes a session can end in: count attribute, legend label, colour.
OUTCOMES = (
    ("self_service", "Self-service", "#2a9d8f"),
    ("drop_off", "Drop-off", "#e9c46a"),
    ("agent", "Agent transfer", "#e76f51"),
)
# Sessions outside the three outcomes: only drawn when some channel has any.
OTHER_OUTCOME = ("other", "Other", "#adb5bd")
# The rates of the trend, in OUTCOMES' order: rate attribute, legend label, colour.
RATES = (
    ("containment_rate", "Containment rate", "#2a9d8f"),
    ("drop_off_rate", "Drop-off rate", "#e9a23b"),
    ("agent_transfer_rate", "Agent-transfer rate", "#e76f51"),
)
# Light grey, so the session bars stay behind the rate lines.
SESSIONS_COLOR = "#ced4da"
# Milliseconds in a day: plotly's date axes count ticks in milliseconds.
DAY_MS = 86_400_000
# At most about this many date ticks, so the labels do not overlap.
MAX_DAY_TICKS = 10


def build_figures(data: ReportData) -> dict[str, go.Figure]:
    """Build the report's plotly figures.

    Args:
        data: The report's counts.

    Returns:
        `{"trend": ..., "channels": ...}`, each only when there is data for it. The trend has,
        per series ("All bots" first, then each bot when there are several), four traces:
        sessions (bars), containment, drop-off and agent-transfer rates (lines); a dropdown
        switches between series. The channel figure stacks the period's sessions by outcome.
    """
    figures: dict[str, go.Figure] = {}
    if data.daily:
        figures["trend"] = _trend_figure(data.daily)
    if data.channels:
        figures["channels"] = _channel_figure(data.channels)
    return figures


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


def _trend_traces(name: str, days: list[date], per_day: dict[date, Totals], visible: bool) -> list[Any]:
    """Sessions bars and the three rate lines of one series."""
    totals = [per_day.get(day, Totals()) for day in days]
    traces: list[Any] = [
        go.Bar(
            x=days,
            y=[t.sessions for t in totals],
            name="Sessions",
            visible=visible,
            marker={"color": SESSIONS_COLOR},
            opacity=0.6,
            meta=name,
            hovertemplate="%{y:,} sessions<extra></extra>",
        )
    ]
    for (attribute, label, color), (count, _, _) in zip(RATES, OUTCOMES, strict=True):
        traces.append(
            go.Scatter(
                x=days,
                y=[getattr(t, attribute) for t in totals],
                name=label,
                mode="lines+markers",
                visible=visible,
                meta=name,
                yaxis="y2",
                line={"color": color, "width": 2.5},
                marker={"size": 5},
                customdata=[[getattr(t, count), t.sessions] for t in totals],
                connectgaps=False,
                hovertemplate=f"{label}: %{{y:.1%}} (%{{customdata[0]:,}} of %{{customdata[1]:,}})"
                "<extra></extra>",
            )
        )
    return traces


def _trend_figure(rows: Sequence[DailyCounts]) -> go.Figure:
    """Daily rates per series, with a dropdown to pick the series."""
    days = _all_days(rows)
    series = _series(rows)
    figure = go.Figure()
    for index, (name, series_rows) in enumerate(series.items()):
        per_day = sum_by(series_rows, lambda row: row.day)
        figure.add_traces(_trend_traces(name, days, per_day, visible=index == 0))
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
            "range": [0, 1.02],
            "gridcolor": "#eee",
        },
        xaxis={"type": "date", "tickformat": "%b %d", "hoverformat": "%a %Y-%m-%d", "dtick": _day_tick(days)},
        legend={"orientation": "h", "y": -0.15},
        margin={"t": 60 if len(series) > 1 else 20, "r": 60, "l": 60, "b": 40},
    )
    if len(series) > 1:
        figure.update_layout(updatemenus=[_series_menu(list(series), traces_per_series=len(RATES) + 1)])
    return figure


def _day_tick(days: Sequence[date]) -> int:
    """Milliseconds between date ticks: whole days, at most about ten ticks."""
    return DAY_MS * max(1, -(-len(days) // MAX_DAY_TICKS))


def _series_menu(names: list[str], traces_per_series: int) -> dict[str, Any]:
    """A dropdown showing one series' traces at a time."""
    positions = range(len(names) * traces_per_series)
    buttons = [
        {
            "label": name,
            "method": "restyle",
            "args": [{"visible": [position // traces_per_series == index for position in positions]}],
        }
        for index, name in enumerate(names)
    ]
    return {"buttons": buttons, "direction": "down", "x": 0, "xanchor": "left", "y": 1.1, "yanchor": "bottom"}


def _channel_figure(rows: Sequence[ChannelCounts]) -> go.Figure:
    """The period's sessions per channel, stacked by outcome."""
    per_channel = sum_by(rows, lambda row: row.channel)
    channels = sorted(per_channel, key=lambda channel: (-per_channel[channel].sessions, channel))
    totals = [per_channel[channel] for channel in channels]
    outcomes = list(OUTCOMES)
    if any(t.other for t in totals):
        outcomes.append(OTHER_OUTCOME)
    figure = go.Figure()
    for attribute, label, color in outcomes:
        counts = [getattr(t, attribute) for t in totals]
        shares = [ratio(count, t.sessions) for count, t in zip(counts, totals, strict=True)]
        figure.add_trace(
            go.Bar(
                x=channels,
                y=counts,
                name=label,
                marker={"color": color},
                customdata=[
                    [share, t.sessions, t.containment_rate] for share, t in zip(shares, totals, strict=True)
                ],
                hovertemplate=f"<b>%{{x}}</b><br>{label}: %{{y:,}} of %{{customdata[1]:,}} sessions "
                "(%{customdata[0]:.1%})<br>containment rate: %{customdata[2]:.1%}<extra></extra>",
            )
        )
    figure.update_layout(
        _base_layout(),
        barmode="stack",
        yaxis={"title": "sessions", "gridcolor": "#eee", "tickformat": ",d"},
        legend={"orientation": "h", "y": -0.15, "traceorder": "normal"},
        margin={"t": 20, "r": 20, "l": 60, "b": 40},
    )
    return figure


def _base_layout() -> dict[str, Any]:
    """Layout shared by the figures."""
    return {
        "template": "plotly_white",
        "height": 420,
        "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 13},
        "hoverlabel": {"namelength": -1},
    }
