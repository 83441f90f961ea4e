"""The report shows the marts' measures, not its own: change a value in a mart table of a warehouse
the models built, and the report shows the changed value (on DuckDB and PostgreSQL).

A number of the report that is one mart row (one bot's day, week or month, a channel, language
or tag value of one day, a bot's behaviour on one day) is that row's column; a number over
several rows sums the mart's counts. A report that computed a rate, share, mean or percentile
again from the sessions would show the unchanged value and fail here.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from kore_sessions.report import read_report_data, render_report
from kore_sessions.report.figures import build_figures
from kore_sessions.sandbox import SandboxServer, generate_sessions
from kore_sessions.warehouse.model_settings import ModelSettings
from kore_sessions.warehouse.models import build_models

from .conftest import BOTS, Loader, make_apps
from .test_report import page_tables, rows_of, tiles

# The sandbox's clock stands still here; the loads happen later (on the real clock), so every
# day up to this one is complete in the report.
SERVER_NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
# The one bot of the warehouse: with one bot, every day, week and month is one mart row.
BOT = BOTS[0]
# The last day of the data (UTC, the models' default reporting time zone).
LAST_DAY = SERVER_NOW.date()
# A complete day inside the last week, and its Monday.
CHANGED_DAY = LAST_DAY - timedelta(days=2)
CHANGED_WEEK = CHANGED_DAY - timedelta(days=CHANGED_DAY.weekday())


@pytest.fixture
def built(make_loader: Any, warehouse: str) -> Iterator[Loader]:
    """Ten days of one bot, loaded and modelled on DuckDB or PostgreSQL."""
    sessions = generate_sessions([BOT], SERVER_NOW - timedelta(days=10), SERVER_NOW, per_day=40, seed=53)
    with SandboxServer(sessions, apps=make_apps(), now=SERVER_NOW, page_cap=100) as server:
        loader = make_loader(server, warehouse)
        loader.run(bot_ids=[BOT], start_date=(SERVER_NOW - timedelta(days=11)).isoformat())
    build_models(loader.pipeline, ModelSettings())
    yield loader


def change(loader: Loader, mart: str, assignments: str, where: str, *args: Any) -> None:
    """Change some rows of a mart table in place (`%s` parameters in `where`)."""
    with loader.pipeline.sql_client() as client:
        table = client.make_qualified_table_name(mart)
        client.execute_sql(f"UPDATE {table} SET {assignments} WHERE {where}", *args)


def day_label(day: date) -> str:
    """A day as the report's tables write it."""
    return day.strftime("%a %Y-%m-%d")


def test_rates_of_one_mart_row_are_the_marts(built: Loader) -> None:
    rates = "containment_rate = 0.111, drop_off_rate = 0.222, agent_transfer_rate = 0.333"
    change(built, "fct_containment_daily", rates, "day = %s", CHANGED_DAY)
    change(built, "fct_containment_weekly", "containment_rate = 0.444", "week_start = %s", CHANGED_WEEK)
    data = read_report_data(built.pipeline, days=7)
    page = render_report(data)
    tables = page_tables(page)
    day = rows_of(tables, "totals")[day_label(CHANGED_DAY)]
    assert day["cells"][4:7] == ["11.1%", "22.2%", "33.3%"]
    week = rows_of(tables, "weeks")[f"Week of {day_label(CHANGED_WEEK)}"]
    assert week["cells"][4] == "44.4%"
    trend = build_figures(data)["trend"]
    line = next(trace for trace in trend.data if trace.name == "Containment rate")
    assert [y for x, y in zip(line.x, line.y, strict=True) if str(x)[:10] == str(CHANGED_DAY)] == [0.111]
    # Over several days no mart has the rate: the glance divides the mart's summed counts.
    (sessions, self_service) = built.query(
        "SELECT SUM(sessions), SUM(self_service) FROM fct_containment_daily "
        f"WHERE day >= DATE '{LAST_DAY - timedelta(days=6)}'"
    )[0]
    assert tiles(page)[:2] == [f"{sessions:,}", f"{self_service / sessions:.1%}"]


def test_slices_of_one_day_show_the_marts_rates(built: Loader) -> None:
    for mart in ("fct_containment_daily_by_channel", "fct_containment_daily_by_language"):
        change(built, mart, "containment_rate = 0.999", "day = %s", LAST_DAY)
    change(built, "fct_containment_by_tag", "containment_rate = 0.999", "day = %s", LAST_DAY)
    tables = page_tables(render_report(read_report_data(built.pipeline, days=1)))
    for name in ("channels", "languages", "tags"):
        values = [row for row in tables[name] if row["css"] != "group"]
        assert values and {row["cells"][4] for row in values} == {"99.9%"}, name


def test_behaviour_counts_are_the_marts_summed(built: Loader) -> None:
    change(
        built,
        "fct_session_behaviour_daily",
        "sessions = sessions + 1000, interactive_sessions = 0, developer_sessions = sessions + 1000",
        "day = %s",
        CHANGED_DAY,
    )
    (sessions, interactive, developer) = built.query(
        "SELECT SUM(sessions), SUM(interactive_sessions), SUM(developer_sessions) "
        f"FROM fct_session_behaviour_daily WHERE day >= DATE '{LAST_DAY - timedelta(days=6)}'"
    )[0]
    shown = rows_of(page_tables(render_report(read_report_data(built.pipeline, days=7))), "behaviour")
    assert list(shown) == [BOT]
    assert shown[BOT]["cells"][:3] == [
        f"{sessions:,}",
        f"{interactive / sessions:.1%}",
        f"{developer / sessions:.1%}",
    ]


def test_behaviour_of_one_day_is_the_marts_row(built: Loader) -> None:
    change(
        built,
        "fct_session_behaviour_daily",
        "interactive_share = 0.5, developer_share = 0.25, messages_per_session = 42.0, "
        "tasks_per_session = 4.2, duration_p50_seconds = 42, duration_p90_seconds = 4242, "
        "duration_p95_seconds = 42424",
        "day = %s",
        LAST_DAY,
    )
    shown = rows_of(page_tables(render_report(read_report_data(built.pipeline, days=1))), "behaviour")
    assert shown[BOT]["cells"][1:] == [
        "50.0%",
        "25.0%",
        "42.0",
        "4.2",
        "42 s",
        "1 h 10 min",
        "11 h 47 min",
    ]
