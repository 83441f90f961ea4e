"""`kore-sessions report`: one self-contained HTML file with the containment charts.

The report reads the containment marts (`fct_containment_daily` and
`fct_containment_daily_by_channel`), sums their counts and computes every rate from the sums,
so an "all bots" rate is never an average of per-bot rates. plotly.js is inlined, so the file
opens in any browser without a server or a network.
"""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dlt
import plotly.graph_objects as go
from dlt.destinations.exceptions import DatabaseUndefinedRelation

from .models import SETTINGS_TABLE, ModelSettings

DAILY_TABLE = "fct_containment_daily"
CHANNEL_TABLE = "fct_containment_daily_by_channel"
ALL_BOTS = "All bots"
TABLE_DAYS = 7
OUTCOMES = (
    ("self_service", "Self-service", "#2a9d8f"),
    ("drop_off", "Drop-off", "#e9c46a"),
    ("agent", "Agent transfer", "#e76f51"),
)
RATES = (
    ("containment_rate", "Containment rate", "#2a9d8f"),
    ("drop_off_rate", "Drop-off rate", "#e9a23b"),
    ("agent_transfer_rate", "Agent-transfer rate", "#e76f51"),
)
SESSIONS_COLOR = "#ced4da"
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}
# What the marts count unless kore_model_settings says otherwise (the models' defaults).
DEFAULT_SCOPE = ModelSettings().describe()
DEFINITIONS = (
    "Sessions are counted on the day they started in the reporting time zone.",
    "Containment rate = self-service sessions / sessions: the user's need was met by the bot alone.",
    "Drop-off rate = drop-off sessions / sessions: the user left before the need was met.",
    "Agent-transfer rate = agent sessions / sessions: the session was handed over to a human agent.",
    "Totals over several bots, channels or days sum the counts first, then divide.",
)


class ReportError(Exception):
    """The report cannot be made from what is in the warehouse."""


@dataclass(frozen=True)
class DailyCounts:
    """Session outcomes of one bot on one day."""

    day: date
    bot_id: str
    sessions: int
    self_service: int
    drop_off: int
    agent: int


@dataclass(frozen=True)
class ChannelCounts:
    """Session outcomes of one bot on one channel on one day."""

    day: date
    bot_id: str
    channel: str
    sessions: int
    self_service: int
    drop_off: int
    agent: int


@dataclass(frozen=True)
class ReportData:
    """Everything the report shows."""

    dataset: str
    reporting_time_zone: str
    generated_at: datetime
    daily: list[DailyCounts]
    channels: list[ChannelCounts]
    scope: str = DEFAULT_SCOPE


@dataclass(frozen=True)
class Totals:
    """Summed outcome counts, with the rates computed from them."""

    sessions: int = 0
    self_service: int = 0
    drop_off: int = 0
    agent: int = 0

    def __add__(self, other: Totals | DailyCounts | ChannelCounts) -> Totals:
        """The sum of two sets of counts."""
        return Totals(
            self.sessions + other.sessions,
            self.self_service + other.self_service,
            self.drop_off + other.drop_off,
            self.agent + other.agent,
        )

    @property
    def other(self) -> int:
        """Sessions with none of the three outcomes."""
        return self.sessions - self.self_service - self.drop_off - self.agent

    @property
    def containment_rate(self) -> float | None:
        """Self-service share of the sessions, None without sessions."""
        return _ratio(self.self_service, self.sessions)

    @property
    def drop_off_rate(self) -> float | None:
        """Drop-off share of the sessions, None without sessions."""
        return _ratio(self.drop_off, self.sessions)

    @property
    def agent_transfer_rate(self) -> float | None:
        """Agent-transfer share of the sessions, None without sessions."""
        return _ratio(self.agent, self.sessions)


def _ratio(part: int, whole: int) -> float | None:
    """part / whole, or None when whole is zero."""
    return part / whole if whole else None


def total(rows: Iterable[Totals | DailyCounts | ChannelCounts]) -> Totals:
    """Sum the counts of `rows`.

    Args:
        rows: Daily or channel counts (or totals) to add up.

    Returns:
        The summed counts; their rates are computed from the sums.
    """
    result = Totals()
    for row in rows:
        result = result + row
    return result


# ---------------------------------------------------------------------------------------------
# Reading the marts
# ---------------------------------------------------------------------------------------------


def read_report_data(pipeline: dlt.Pipeline, days: int = 30) -> ReportData:
    """Read the last `days` days of the containment marts.

    The period ends on the latest day present in `fct_containment_daily` and covers `days`
    calendar days up to it. Works on any SQL destination of dlt (DuckDB, PostgreSQL).

    Args:
        pipeline: The `kore_sessions` pipeline whose dataset holds the marts.
        days: Number of days to report, at least 1.

    Returns:
        The counts of the period, ready for `render_report`.

    Raises:
        ValueError: When `days` is below 1.
        ReportError: When the containment models are not built in the dataset.
    """
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    generated_at = datetime.now(UTC)
    dataset = pipeline.dataset_name
    with pipeline.sql_client() as client:
        try:
            if not client.has_dataset():
                raise _not_built(dataset)
            daily_table = client.make_qualified_table_name(DAILY_TABLE)
            channel_table = client.make_qualified_table_name(CHANNEL_TABLE)
            latest = client.execute_sql(
                f"SELECT day, reporting_time_zone FROM {daily_table} ORDER BY day DESC LIMIT 1"
            )
            client.execute_sql(f"SELECT 1 FROM {channel_table} WHERE 1 = 0")
            if not latest:
                return ReportData(dataset, "", generated_at, [], [])
            last_day, time_zone = _as_date(latest[0][0]), str(latest[0][1] or "")
            first_day = last_day - timedelta(days=days - 1)
            daily = client.execute_sql(_period_sql(daily_table, "day, bot_id"), first_day)
            channels = client.execute_sql(_period_sql(channel_table, "day, bot_id, channel"), first_day)
            scope = _scope(client)
        except DatabaseUndefinedRelation as exc:
            raise _not_built(dataset) from exc
    return ReportData(
        dataset=dataset,
        reporting_time_zone=time_zone,
        generated_at=generated_at,
        daily=[_daily_row(row) for row in daily or []],
        channels=[_channel_row(row) for row in channels or []],
        scope=scope,
    )


def _scope(client: Any) -> str:
    """What the marts counted, from the settings they were built with."""
    settings_table = client.make_qualified_table_name(SETTINGS_TABLE)
    rows = client.execute_sql(
        f"SELECT reporting_time_zone, include_active, include_non_interactive, include_developer "
        f"FROM {settings_table}"
    )
    if not rows:
        return DEFAULT_SCOPE
    zone, active, non_interactive, developer = rows[0]
    return ModelSettings(str(zone), bool(active), bool(non_interactive), bool(developer)).describe()


def _not_built(dataset: str) -> ReportError:
    """The error for a dataset without the containment marts."""
    return ReportError(
        f"the containment models are not built in dataset {dataset}: run `kore-sessions models` first"
    )


def _period_sql(table: str, keys: str) -> str:
    """Rows of a mart from a first day on (one `%s` parameter, which dlt's clients all take)."""
    return (
        f"SELECT {keys}, sessions, self_service, drop_off, agent FROM {table} WHERE day >= %s ORDER BY {keys}"
    )


def _as_date(value: Any) -> date:
    """A DATE column's value as a date, whatever the driver returned."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _counts(values: Sequence[Any]) -> tuple[int, int, int, int]:
    """Four count columns as ints (NULL counts as 0)."""
    sessions, self_service, drop_off, agent = (int(value or 0) for value in values)
    return sessions, self_service, drop_off, agent


def _daily_row(row: Sequence[Any]) -> DailyCounts:
    """A `fct_containment_daily` row."""
    return DailyCounts(_as_date(row[0]), str(row[1]), *_counts(row[2:6]))


def _channel_row(row: Sequence[Any]) -> ChannelCounts:
    """A `fct_containment_daily_by_channel` row."""
    channel = "(none)" if row[2] is None else str(row[2])
    return ChannelCounts(_as_date(row[0]), str(row[1]), channel, *_counts(row[3:7]))


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------


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


def _by_day(rows: Iterable[DailyCounts]) -> dict[date, Totals]:
    """Summed counts per day."""
    days: dict[date, Totals] = defaultdict(Totals)
    for row in rows:
        days[row.day] = days[row.day] + row
    return days


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
        figure.add_traces(_trend_traces(name, days, _by_day(series_rows), visible=index == 0))
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
    return 86_400_000 * max(1, -(-len(days) // 10))


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
    per_channel: dict[str, Totals] = defaultdict(Totals)
    for row in rows:
        per_channel[row.channel] = per_channel[row.channel] + row
    channels = sorted(per_channel, key=lambda channel: (-per_channel[channel].sessions, channel))
    totals = [per_channel[channel] for channel in channels]
    outcomes = list(OUTCOMES)
    if any(t.other for t in totals):
        outcomes.append(("other", "Other", "#adb5bd"))
    figure = go.Figure()
    for attribute, label, color in outcomes:
        counts = [getattr(t, attribute) for t in totals]
        shares = [_ratio(count, t.sessions) for count, t in zip(counts, totals, strict=True)]
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


# ---------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------


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
    body = "\n".join(section for section in sections if section) if figures else _NO_DATA
    return _PAGE.format(
        title=html.escape(f"Containment report: {data.dataset}"),
        style=_STYLE,
        header=_header(data),
        body=body,
    )


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
    return "\u2013" if value is None else f"{value:.1%}"


def _table_section(rows: Sequence[DailyCounts]) -> str:
    """All-bots totals of the last days, newest first."""
    per_day = _by_day(rows)
    days = sorted(per_day, reverse=True)[:TABLE_DAYS]
    if not days:
        return ""
    head = "".join(
        f"<th>{label}</th>"
        for label in (
            "Day",
            "Sessions",
            "Self-service",
            "Drop-off",
            "Agent",
            "Containment",
            "Drop-off rate",
            "Agent-transfer rate",
        )
    )
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


_NO_DATA = (
    '<section class="empty"><h2>No data</h2><p>The containment models hold no sessions for this '
    "dataset yet. Load sessions, build the models, then make the report again.</p></section>"
)

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #212529;
       background: #fafafa; margin: 0; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 28px 48px; background: #fff; }
h1 { font-size: 1.6rem; margin: 0 0 12px; }
h2 { font-size: 1.2rem; margin: 32px 0 4px; }
.note { color: #6c757d; margin: 0 0 8px; font-size: 0.9rem; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0 0 12px; }
.facts dt { color: #6c757d; }
.facts dd { margin: 0; font-weight: 600; }
.definitions { color: #495057; font-size: 0.88rem; margin: 0; padding-left: 18px; }
table.totals { border-collapse: collapse; width: 100%; font-size: 0.9rem;
               font-variant-numeric: tabular-nums; }
table.totals th, table.totals td { padding: 5px 10px; border-bottom: 1px solid #e9ecef; text-align: right; }
table.totals thead th { border-bottom: 2px solid #adb5bd; }
table.totals tbody th, table.totals thead th:first-child { text-align: left; font-weight: 500; }
.empty { padding: 24px; background: #f8f9fa; border-radius: 6px; margin-top: 24px; }
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
<main>
<h1>{title}</h1>
{header}
{body}
</main>
</body>
</html>
"""


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
