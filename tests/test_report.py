"""The HTML containment report: figures from counts, a self-contained page, and reading the marts."""

from __future__ import annotations

import os
import re
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import dlt
import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from plotly.offline import get_plotlyjs

from pipelines.kore_sessions_pipeline import make_pipeline
from pipelines.model_settings import ModelSettings
from pipelines.models import SETTINGS_TABLE, build_models
from pipelines.report import (
    ALL_BOTS,
    ChannelCounts,
    DailyCounts,
    ReportData,
    ReportError,
    build_figures,
    read_report_data,
    render_report,
    write_report,
)
from sandbox import SandboxServer

CHROMIUM = Path("/usr/bin/chromium")
# Set by `.ci/run`; read at import because an autouse fixture clears KORE_* names during tests.
CHROMIUM_REQUIRED = os.environ.get("KORE_TEST_REQUIRE_CHROMIUM") == "1"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BOT_A = "st-aaaaaaaa-0000-4000-8000-000000000001"
BOT_B = "st-aaaaaaaa-0000-4000-8000-000000000002"
CHANNELS = {"rtm": 5, "msteams": 3, "ivr": 2}
FIRST_DAY = date(2026, 10, 1)
GENERATED_AT = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
COUNT_NAMES = ("sessions", "self_service", "drop_off", "agent")
# The outcome each API containment type counts as (closed sessions only).
OUTCOME_OF_CONTAINMENT = {"selfService": "self_service", "dropOff": "drop_off", "agent": "agent"}
# The outcome behind each rate line of the trend.
RATE_OUTCOMES = {
    "Containment rate": "self_service",
    "Drop-off rate": "drop_off",
    "Agent-transfer rate": "agent",
}
# The outcome of each stacked bar of the channel split, bottom first.
STACKED_OUTCOMES = {"Self-service": "self_service", "Drop-off": "drop_off", "Agent transfer": "agent"}
MART_COLUMNS = (
    "day DATE, bot_id VARCHAR(64), sessions BIGINT, self_service BIGINT, drop_off BIGINT, agent BIGINT, "
    "active_sessions BIGINT, containment_rate DOUBLE PRECISION, drop_off_rate DOUBLE PRECISION, "
    "agent_transfer_rate DOUBLE PRECISION, reporting_time_zone VARCHAR(64)"
)
# A (day, bot, channel) cell of the counts a test works out itself.
Cell = tuple[date, str, str]


def outcome_counts(day: int, bot: int, weight: int) -> tuple[int, int, int, int]:
    """Distinct, uneven counts (sessions, self-service, drop-off, agent) for a day, bot and weight."""
    self_service = weight * (7 + 3 * day + 11 * bot)
    drop_off = weight * (2 + day % 3 + 4 * bot)
    agent = weight * (1 + (day * 5 + bot) % 4)
    return self_service + drop_off + agent, self_service, drop_off, agent


def sample_data() -> ReportData:
    """Two bots over five days on three channels, each bot's daily row the sum of its channels."""
    daily: list[DailyCounts] = []
    channels: list[ChannelCounts] = []
    for offset in range(5):
        day = FIRST_DAY + timedelta(days=offset)
        for bot_index, bot in enumerate((BOT_A, BOT_B)):
            rows = [
                ChannelCounts(day, bot, channel, *outcome_counts(offset, bot_index, weight))
                for channel, weight in CHANNELS.items()
            ]
            channels.extend(rows)
            sums = [sum(getattr(row, name) for row in rows) for name in COUNT_NAMES]
            daily.append(DailyCounts(day, bot, *sums))
    return ReportData("kore_sessions", "Europe/Berlin", GENERATED_AT, daily, channels)


class Tags(HTMLParser):
    """The tags of a page (script contents are not parsed as markup)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str]]] = []

    @property
    def names(self) -> list[str]:
        """Tag names in page order."""
        return [name for name, _ in self.found]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Record a tag with its attributes."""
        self.found.append((tag, {key: value or "" for key, value in attrs}))


def trace(figure: Any, name: str, series: str = ALL_BOTS) -> Any:
    """The one trace of a figure with this name and series (`meta`)."""
    found = [t for t in figure.data if t.name == name and (t.meta is None or t.meta == series)]
    assert len(found) == 1, (name, series, [(t.name, t.meta) for t in figure.data])
    return found[0]


# ---------------------------------------------------------------------------------------------
# Figures and HTML, no browser
# ---------------------------------------------------------------------------------------------


def test_all_bots_rates_are_summed_counts_divided() -> None:
    data = sample_data()
    trend = build_figures(data)["trend"]
    assert len(trend.data) == 3 * 4  # all bots + 2 bots, each sessions bars + 3 rate lines
    days = [FIRST_DAY + timedelta(days=offset) for offset in range(5)]
    for rate, count in (
        ("Containment rate", "self_service"),
        ("Drop-off rate", "drop_off"),
        ("Agent-transfer rate", "agent"),
    ):
        line = trace(trend, rate)
        assert [date.fromisoformat(str(x)[:10]) for x in line.x] == days
        for index, day in enumerate(days):
            rows = [row for row in data.daily if row.day == day]
            expected = sum(getattr(row, count) for row in rows) / sum(row.sessions for row in rows)
            assert line.y[index] == expected
            averaged = sum(getattr(row, count) / row.sessions for row in rows) / len(rows)
            assert line.y[index] != pytest.approx(averaged, abs=1e-9)
        for bot in (BOT_A, BOT_B):
            own = {row.day: getattr(row, count) / row.sessions for row in data.daily if row.bot_id == bot}
            assert list(trace(trend, rate, bot).y) == [own[day] for day in days]
    sessions = trace(trend, "Sessions")
    assert list(sessions.y) == [sum(r.sessions for r in data.daily if r.day == day) for day in days]


def test_only_the_all_bots_series_is_visible_at_first_and_the_menu_switches_series() -> None:
    trend = build_figures(sample_data())["trend"]
    assert [t.meta for t in trend.data if t.visible] == [ALL_BOTS] * 4
    (menu,) = trend.layout.updatemenus
    assert [button.label for button in menu.buttons] == [ALL_BOTS, BOT_A, BOT_B]
    for button in menu.buttons:
        shown = [t.meta for t, visible in zip(trend.data, button.args[0]["visible"], strict=True) if visible]
        assert shown == [button.label] * 4


def test_channel_split_stacks_the_period_by_outcome() -> None:
    data = sample_data()
    channels = build_figures(data)["channels"]
    assert channels.layout.barmode == "stack"
    assert [t.name for t in channels.data] == ["Self-service", "Drop-off", "Agent transfer"]
    assert list(channels.data[0].x) == ["rtm", "msteams", "ivr"]  # most sessions first
    for bar, count in zip(channels.data, ("self_service", "drop_off", "agent"), strict=True):
        for index, channel in enumerate(bar.x):
            rows = [row for row in data.channels if row.channel == channel]
            sessions = sum(row.sessions for row in rows)
            assert bar.y[index] == sum(getattr(row, count) for row in rows)
            share, total, containment = bar.customdata[index]
            assert (share, total) == (bar.y[index] / sessions, sessions)
            assert containment == sum(row.self_service for row in rows) / sessions


def test_outcomes_that_do_not_add_up_show_as_other() -> None:
    row = ChannelCounts(FIRST_DAY, BOT_A, "rtm", 10, 5, 2, 1)
    data = ReportData("d", "UTC", GENERATED_AT, [], [row])
    channels = build_figures(data)["channels"]
    assert [(t.name, list(t.y)) for t in channels.data][-1] == ("Other", [2])


def test_report_is_one_self_contained_page() -> None:
    page = render_report(sample_data())
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    tags = Tags()
    tags.feed(page)
    assert page.count(get_plotlyjs()) == 1  # inlined once, for both charts
    assert not [attrs for name, attrs in tags.found if name == "script" and "src" in attrs]
    assert not [attrs for name, attrs in tags.found if name == "link"]
    assert not [
        (name, attrs)
        for name, attrs in tags.found
        if re.match(r"\s*(https?:)?//", attrs.get("src", "") + attrs.get("href", ""))
    ]
    around_plotly_js = page.replace(get_plotlyjs(), "")
    assert "http://" not in around_plotly_js and "https://" not in around_plotly_js
    assert page.count("Plotly.newPlot(") == 2
    for text in (
        "kore_sessions",
        "Europe/Berlin",
        "2026-10-01 to 2026-10-05 (5 days)",
        "2026-11-01 12:00:00",
    ):
        assert text in page
    assert "self-service sessions / sessions" in page
    assert "closed, interactive sessions, without developer sessions; days in UTC" in page


def test_report_table_shows_the_last_days_totals_newest_first() -> None:
    data = sample_data()
    page = render_report(data)
    table = page[page.index('<table class="totals">') :]
    rows = re.findall(r"<tr><th scope=\"row\">(.*?)</th>(.*?)</tr>", table)
    assert [day for day, _ in rows] == [
        "Mon 2026-10-05",
        "Sun 2026-10-04",
        "Sat 2026-10-03",
        "Fri 2026-10-02",
        "Thu 2026-10-01",
    ]
    day_rows = [row for row in data.daily if row.day == date(2026, 10, 5)]
    sessions = sum(row.sessions for row in day_rows)
    self_service = sum(row.self_service for row in day_rows)
    cells = re.findall(r"<td>(.*?)</td>", rows[0][1])
    assert cells[0] == f"{sessions:,}"
    assert cells[4] == f"{self_service / sessions:.1%}"


def test_empty_data_renders_a_page_saying_so() -> None:
    data = ReportData("kore_sessions", "", GENERATED_AT, [], [])
    assert build_figures(data) == {}
    page = render_report(data)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "No data" in page
    assert "Plotly.newPlot" not in page
    assert "<table" not in page


def test_names_are_escaped() -> None:
    data = ReportData("<b>x</b>", "UTC", GENERATED_AT, [], [])
    page = render_report(data)
    assert "<b>x</b>" not in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page


# ---------------------------------------------------------------------------------------------
# In a real browser
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless system Chromium, once for the module; skips (or fails in CI) without it."""
    if not CHROMIUM.exists():
        reason = f"Chromium not installed at {CHROMIUM}"
        if CHROMIUM_REQUIRED:
            pytest.fail(reason)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class OpenedPage:
    """A report opened in the browser, with what went wrong and what it asked for."""

    def __init__(self, browser: Browser, path: Path) -> None:
        self.context = browser.new_context(viewport={"width": 1200, "height": 900})
        self.page: Page = self.context.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        self.page.on(
            "console",
            lambda message: (
                self.errors.append(f"console: {message.text}") if message.type == "error" else None
            ),
        )
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.goto(path.as_uri(), wait_until="load")

    def charts(self) -> dict[str, dict[str, Any]]:
        """What each plotly chart holds and drew, by chart id."""
        return self.page.evaluate(CHARTS_JS)

    def chart_data(self, chart_id: str) -> list[dict[str, Any]]:
        """The traces plotly holds in one chart: name, series (`meta`), x and y values."""
        return self.page.evaluate(CHART_DATA_JS, chart_id)

    def table(self) -> list[list[str]]:
        """The totals table as the browser shows it: one list of cell texts a row."""
        return self.page.evaluate(TABLE_JS)

    def close(self) -> None:
        """Close the page's context."""
        self.context.close()


CHARTS_JS = """() => Object.fromEntries(
  Array.from(document.querySelectorAll('.js-plotly-plot')).map(el => {
    const svg = el.querySelector('svg.main-svg');
    const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
    return [el.id, {
      traces: el.data.length,
      visible: el.data.filter(t => t.visible !== false).map(t => [t.type, t.name, t.meta || null]),
      width: box.width,
      height: box.height,
      lines: Array.from(el.querySelectorAll('.scatterlayer .trace path.js-line'))
        .map(p => p.getAttribute('d')),
      bars: Array.from(el.querySelectorAll('.barlayer .point path'))
        .map(p => p.getBoundingClientRect()).filter(b => b.width > 0 && b.height > 0).length,
    }];
  }))"""


CHART_DATA_JS = """id => Array.from(document.getElementById(id).data).map(t => ({
  name: t.name, meta: t.meta === undefined ? null : t.meta, x: Array.from(t.x, String), y: Array.from(t.y),
}))"""

TABLE_JS = """() => Array.from(document.querySelectorAll('table.totals tbody tr'))
  .map(row => Array.from(row.cells).map(cell => cell.textContent))"""


@pytest.fixture
def opened(browser: Browser, tmp_path: Path) -> Iterator[Any]:
    """Factory: write a report page to a file and open it in the browser."""
    pages: list[OpenedPage] = []

    def open_report(data: ReportData) -> OpenedPage:
        path = tmp_path / f"report{len(pages)}.html"
        path.write_text(render_report(data), encoding="utf-8")
        pages.append(OpenedPage(browser, path))
        return pages[-1]

    yield open_report
    for page in pages:
        page.close()


def test_charts_render_in_chromium_offline(opened: Any) -> None:
    report = opened(sample_data())
    report.page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 2")
    charts = report.charts()
    assert report.errors == []
    assert all(url.startswith(("file:", "data:", "about:")) for url in report.requests), report.requests
    assert set(charts) == {"trend-chart", "channels-chart"}
    for chart in charts.values():
        assert chart["width"] > 300 and chart["height"] > 200
    trend, channels = charts["trend-chart"], charts["channels-chart"]
    assert trend["traces"] == 12
    assert [meta for _, _, meta in trend["visible"]] == [ALL_BOTS] * 4
    assert len(trend["lines"]) == 3 and all(re.match(r"M[\d.]+,[\d.]+L", d or "") for d in trend["lines"])
    assert trend["bars"] == 5
    assert channels["traces"] == 3
    assert channels["bars"] == 3 * 3
    assert report.page.locator("table.totals tbody tr").count() == 5


def test_the_bot_menu_switches_the_trend_in_chromium(opened: Any) -> None:
    report = opened(sample_data())
    report.page.wait_for_selector("#trend-chart .updatemenu-header-group")
    report.page.locator("#trend-chart .updatemenu-header-group").click()
    report.page.locator("#trend-chart .updatemenu-dropdown-button", has_text=BOT_B).click()
    report.page.wait_for_function(
        f"document.getElementById('trend-chart').data.filter(t => t.visible !== false)[0].meta === '{BOT_B}'"
    )
    trend = report.charts()["trend-chart"]
    assert [meta for _, _, meta in trend["visible"]] == [BOT_B] * 4
    assert len(trend["lines"]) == 3 and all(trend["lines"])
    assert report.errors == []


def test_empty_report_opens_in_chromium(opened: Any) -> None:
    report = opened(ReportData("kore_sessions", "UTC", GENERATED_AT, [], []))
    assert report.page.get_by_role("heading", name="No data").is_visible()
    assert report.charts() == {}
    assert report.errors == []


# ---------------------------------------------------------------------------------------------
# Reading the marts from a real warehouse
# ---------------------------------------------------------------------------------------------


@pytest.fixture(params=["duckdb", "postgres"])
def report_pipeline(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dlt.Pipeline]:
    """A pipeline on DuckDB (a file) or PostgreSQL (own dataset, dropped afterwards), nothing loaded."""
    if request.param == "duckdb":
        yield make_pipeline("duckdb", pipelines_dir=tmp_path / "p", duckdb_path=tmp_path / "w.duckdb")
        return
    dsn = request.getfixturevalue("postgres_dsn")
    pipeline = make_pipeline(
        dlt.destinations.postgres(credentials=dsn),
        dataset_name=f"kore_report_{uuid.uuid4().hex[:10]}",
        pipelines_dir=tmp_path / "p",
    )
    yield pipeline
    with pipeline.sql_client() as client:
        if client.has_dataset():
            client.drop_dataset()


def mart_rows(days: int) -> tuple[list[DailyCounts], list[ChannelCounts]]:
    """Daily and channel rows for two bots over `days` days from FIRST_DAY (BOT_B skips day 2)."""
    daily: list[DailyCounts] = []
    channels: list[ChannelCounts] = []
    for offset in range(days):
        day = FIRST_DAY + timedelta(days=offset)
        for bot_index, bot in enumerate((BOT_A, BOT_B)):
            if bot == BOT_B and offset == 2:
                continue
            rows = [
                ChannelCounts(day, bot, channel, *outcome_counts(offset, bot_index, weight))
                for channel, weight in CHANNELS.items()
            ]
            channels.extend(rows)
            daily.append(DailyCounts(day, bot, *[sum(getattr(r, n) for r in rows) for n in COUNT_NAMES]))
    return daily, channels


def sql_values(row: DailyCounts | ChannelCounts) -> str:
    """A mart row as SQL values (keys, counts, active sessions, rates, time zone)."""
    keys = [f"DATE '{row.day.isoformat()}'", f"'{row.bot_id}'"]
    if isinstance(row, ChannelCounts):
        keys.append(f"'{row.channel}'")
    counts = [row.sessions, row.self_service, row.drop_off, row.agent, 1]
    rates = [row.self_service / row.sessions, row.drop_off / row.sessions, row.agent / row.sessions]
    values = [*keys, *map(str, counts), *map(repr, rates), "'Europe/Berlin'"]
    return f"({', '.join(values)})"


def create_marts(
    pipeline: dlt.Pipeline,
    daily: list[DailyCounts],
    channels: list[ChannelCounts],
    with_channels: bool = True,
) -> None:
    """Create the two marts (or only the daily one) in the pipeline's dataset, with these rows."""
    with pipeline.sql_client() as client:
        if not client.has_dataset():
            client.create_dataset()
        tables = [("fct_containment_daily", MART_COLUMNS, daily)]
        if with_channels:
            columns = MART_COLUMNS.replace("bot_id VARCHAR(64),", "bot_id VARCHAR(64), channel VARCHAR(64),")
            tables.append(("fct_containment_daily_by_channel", columns, channels))
        for name, columns, rows in tables:
            table = client.make_qualified_table_name(name)
            client.execute_sql(f"CREATE TABLE {table} ({columns})")
            if rows:
                client.execute_sql(f"INSERT INTO {table} VALUES {', '.join(map(sql_values, rows))}")
        settings = client.make_qualified_table_name(SETTINGS_TABLE)
        client.execute_sql(
            f"CREATE TABLE {settings} AS SELECT 'Europe/Berlin' AS reporting_time_zone, "
            "TRUE AS include_active, FALSE AS include_non_interactive, TRUE AS include_developer"
        )


def test_read_report_data_takes_the_last_days_present(report_pipeline: dlt.Pipeline) -> None:
    daily, channels = mart_rows(10)
    create_marts(report_pipeline, daily, channels)
    data = read_report_data(report_pipeline, days=3)
    assert data.dataset == report_pipeline.dataset_name
    assert data.reporting_time_zone == "Europe/Berlin"
    scope = "closed and active, interactive sessions, with developer sessions; days in Europe/Berlin"
    assert data.scope == scope
    assert data.generated_at.tzinfo is not None
    cut_off = date(2026, 10, 8)
    key = lambda row: (row.day, row.bot_id, getattr(row, "channel", ""))  # noqa: E731
    assert sorted(data.daily, key=key) == sorted((r for r in daily if r.day >= cut_off), key=key)
    assert sorted(data.channels, key=key) == sorted((r for r in channels if r.day >= cut_off), key=key)
    assert {row.day for row in data.daily} == {cut_off, date(2026, 10, 9), date(2026, 10, 10)}
    assert all(type(value) is int for row in data.channels for value in (row.sessions, row.agent))

    everything = read_report_data(report_pipeline)
    assert len(everything.daily) == len(daily) == 19
    assert len(everything.channels) == len(channels)


def test_write_report_writes_the_page(report_pipeline: dlt.Pipeline, tmp_path: Path) -> None:
    daily, channels = mart_rows(4)
    create_marts(report_pipeline, daily, channels)
    written = write_report(report_pipeline, Path("out/report.html"), days=2)
    assert written == (tmp_path / "out" / "report.html").resolve()
    page = written.read_text(encoding="utf-8")
    assert "2026-10-03 to 2026-10-04 (2 days)" in page
    assert page.count("Plotly.newPlot(") == 2
    shown = re.findall(r"<tr><th scope=\"row\">(.*?)</th>(.*?)</tr>", page)
    assert [day for day, _ in shown] == ["Sun 2026-10-04", "Sat 2026-10-03"]
    for (_, cells), day in zip(shown, (date(2026, 10, 4), date(2026, 10, 3)), strict=True):
        sums = [sum(getattr(row, name) for row in daily if row.day == day) for name in COUNT_NAMES]
        rates = [f"{count / sums[0]:.1%}" for count in sums[1:]]
        assert re.findall(r"<td>(.*?)</td>", cells) == [f"{count:,}" for count in sums] + rates


def test_empty_marts_give_an_empty_report(report_pipeline: dlt.Pipeline) -> None:
    create_marts(report_pipeline, [], [])
    data = read_report_data(report_pipeline)
    assert (data.daily, data.channels) == ([], [])
    assert "No data" in render_report(data)


def test_missing_marts_raise_a_clear_error(report_pipeline: dlt.Pipeline) -> None:
    dataset = report_pipeline.dataset_name
    message = f"the containment models are not built in dataset {dataset}: run `kore-sessions models` first"
    with pytest.raises(ReportError) as no_dataset:
        read_report_data(report_pipeline)
    assert str(no_dataset.value) == message

    daily, channels = mart_rows(2)
    create_marts(report_pipeline, daily, channels, with_channels=False)
    with pytest.raises(ReportError, match="kore-sessions models"):
        read_report_data(report_pipeline)


def test_days_must_be_positive(report_pipeline: dlt.Pipeline) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        read_report_data(report_pipeline, days=0)


def dashboard_counts(views: Iterable[dict[str, Any]], zone: str, days: int) -> dict[Cell, Counter[str]]:
    """What the default scope counts, worked out from the sandbox's sessions (never from the marts).

    A session counts when it is closed, interactive and not a developer's, on the day it started
    in `zone`; the period is the `days` days up to the last day with a counted session.

    Returns:
        Per (day, bot, channel): "sessions" and the count of each outcome.
    """
    cells: dict[Cell, Counter[str]] = defaultdict(Counter)
    for view in views:
        if view["sessionStatus"] != "closed" or view["sessionType"] != "interactive" or view["isDeveloper"]:
            continue
        day = datetime.fromisoformat(view["start_time"]).astimezone(ZoneInfo(zone)).date()
        cell = cells[(day, view["botId"], view["channel"])]
        cell["sessions"] += 1
        cell[OUTCOME_OF_CONTAINMENT[view["containmentType"]]] += 1
    last_day = max(day for day, _, _ in cells)
    return {cell: counts for cell, counts in cells.items() if cell[0] > last_day - timedelta(days=days)}


def summed(cells: dict[Cell, Counter[str]], key: Callable[[Cell], Any]) -> dict[Any, Counter[str]]:
    """The counts of `cells` added up per `key(cell)`."""
    sums: dict[Any, Counter[str]] = defaultdict(Counter)
    for cell, counts in cells.items():
        sums[key(cell)].update(counts)
    return sums


def share(counts: Counter[str], outcome: str) -> float | None:
    """An outcome's share of the sessions, None without sessions."""
    return counts[outcome] / counts["sessions"] if counts["sessions"] else None


def assert_trend_shows(trend: list[dict[str, Any]], cells: dict[Cell, Counter[str]]) -> None:
    """Each series of the trend (all bots, each bot) holds the hand-counted sessions and rates per day."""
    first, last = min(day for day, _, _ in cells), max(day for day, _, _ in cells)
    days = [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
    series = {ALL_BOTS: summed(cells, lambda cell: cell[0])}
    for bot in {bot for _, bot, _ in cells}:
        series[bot] = summed({c: n for c, n in cells.items() if c[1] == bot}, lambda cell: cell[0])
    assert sorted(str(t["meta"]) for t in trend) == sorted(name for name in series for _ in range(4))
    for shown in trend:
        per_day = series[shown["meta"]]
        assert shown["x"] == [day.isoformat() for day in days]
        if shown["name"] == "Sessions":
            assert shown["y"] == [per_day[day]["sessions"] for day in days]
        else:
            outcome = RATE_OUTCOMES[shown["name"]]
            assert shown["y"] == [pytest.approx(share(per_day[day], outcome)) for day in days]


def assert_channels_show(channels: list[dict[str, Any]], cells: dict[Cell, Counter[str]]) -> None:
    """The channel split holds the hand-counted outcomes of the period, most sessions first."""
    per_channel = summed(cells, lambda cell: cell[2])
    order = sorted(per_channel, key=lambda channel: (-per_channel[channel]["sessions"], channel))
    assert [t["name"] for t in channels] == list(STACKED_OUTCOMES)
    for shown in channels:
        assert shown["x"] == order
        assert shown["y"] == [per_channel[channel][STACKED_OUTCOMES[shown["name"]]] for channel in order]


def assert_table_shows(rows: list[list[str]], cells: dict[Cell, Counter[str]]) -> None:
    """The totals table holds the hand-counted all-bots numbers of the last days, newest first."""
    per_day = summed(cells, lambda cell: cell[0])
    newest = sorted(per_day, reverse=True)[:7]
    expected = []
    for day in newest:
        counts = per_day[day]
        numbers = [f"{counts[name]:,}" for name in COUNT_NAMES]
        rates = [f"{share(counts, outcome):.1%}" for outcome in COUNT_NAMES[1:]]
        expected.append([day.strftime("%a %Y-%m-%d"), *numbers, *rates])
    assert rows == expected


def test_report_from_real_marts_renders_in_chromium(
    browser: Browser, server: SandboxServer, make_loader: Any, warehouse: str, tmp_path: Path
) -> None:
    """Sandbox -> warehouse -> models -> `write_report` -> Chromium: the page shows the numbers this
    test counts itself from the sandbox's sessions."""
    zone = "Asia/Kolkata"
    loader = make_loader(server, warehouse)
    loader.run()
    build_models(loader.pipeline, ModelSettings(reporting_time_zone=zone))
    path = write_report(loader.pipeline, tmp_path / "real.html", days=7)
    cells = dashboard_counts(server.visible_sessions(), zone, days=7)
    days = sorted({day for day, _, _ in cells})
    report = OpenedPage(browser, path)
    try:
        report.page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 2")
        assert report.errors == []
        assert all(url.startswith(("file:", "data:", "about:")) for url in report.requests)
        assert_trend_shows(report.chart_data("trend-chart"), cells)
        assert_channels_show(report.chart_data("channels-chart"), cells)
        assert_table_shows(report.table(), cells)
        charts = report.charts()
        assert len(charts["trend-chart"]["lines"]) == 3
        assert charts["trend-chart"]["bars"] == len(days) == 7
        per_channel = summed(cells, lambda cell: cell[2]).values()
        drawn = sum(1 for counts in per_channel for outcome in COUNT_NAMES[1:] if counts[outcome])
        assert charts["channels-chart"]["bars"] == drawn
        assert f"{days[0].isoformat()} to {days[-1].isoformat()} (7 days)" in report.page.content()
        assert zone in report.page.content()
    finally:
        report.close()
