"""Reading the report's data: the marts of a dataset, the scope they count and how recent they are.

Works on any SQL destination of dlt (DuckDB, PostgreSQL): the SQL is plain, and its
parameters are `%s`, which every dlt SQL client takes. Only aggregates are read: no user id,
caller number, call id or session id ever leaves the warehouse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dlt
from dlt.destinations.exceptions import DatabaseUndefinedRelation
from kore_sessions.output.failures import ActionableError
from kore_sessions.report.behaviour import BEHAVIOUR_TABLE, SESSIONS_MART, read_behaviour
from kore_sessions.report.counts import DailyCounts, Rates, SliceCounts, TagCounts
from kore_sessions.report.freshness import Freshness, Period, add_months, as_utc, month_start, week_start
from kore_sessions.report.leaving import DROPOFF_TABLE, WhereUsersLeave, read_leaving
from kore_sessions.report.names import UNKNOWN_CODE
from kore_sessions.report.privacy import TAG_MAX_DISTINCT
from kore_sessions.report.report_data import DEFAULT_SCOPE, BotSpan, ReportData
from kore_sessions.warehouse.model_settings import ModelSettings
from kore_sessions.warehouse.models import SETTINGS_TABLE, existing_relations

# The mart with one row per day and bot: the trend, the table and the period come from it.
DAILY_TABLE = "fct_containment_daily"
# The mart of one row per day, bot and channel: the channel view.
CHANNEL_TABLE = "fct_containment_daily_by_channel"
# The mart of one row per day, bot and language: the language view.
LANGUAGE_TABLE = "fct_containment_daily_by_language"
# The mart of one row per week and bot: the week view.
WEEKLY_TABLE = "fct_containment_weekly"
# The mart of one row per month and bot: the month view.
MONTHLY_TABLE = "fct_containment_monthly"
# The mart of one row per day, bot and tag value: the tag view.
TAG_TABLE = "fct_containment_by_tag"
# The mart of one row per bot: the span of each bot's sessions and the newest session.
BOTS_TABLE = "dim_bots"
# What `kore-sessions models` builds that the report reads; one missing: not built.
REQUIRED_TABLES = frozenset(
    {
        DAILY_TABLE,
        CHANNEL_TABLE,
        LANGUAGE_TABLE,
        WEEKLY_TABLE,
        MONTHLY_TABLE,
        TAG_TABLE,
        BEHAVIOUR_TABLE,
        SESSIONS_MART,
        BOTS_TABLE,
        SETTINGS_TABLE,
    }
)
# dlt's record of load packages: the "last load" of the data-as-of line (status 0: loaded).
LOADS_TABLE = "_dlt_loads"
# The scope columns of the models' settings table, in ModelSettings' field order.
SCOPE_COLUMNS = "reporting_time_zone, include_active, include_non_interactive, include_developer"
# Weeks the week view shows, up to the latest: a quarter.
WEEKS_SHOWN = 13
# Months the month view shows, up to the latest: a year.
MONTHS_SHOWN = 12
# The counts every containment mart has, in DailyCounts' order.
COUNT_COLUMNS = "sessions, self_service, drop_off, agent"
# The rates every containment mart computes from them, in Rates' order.
RATE_COLUMNS = "containment_rate, drop_off_rate, agent_transfer_rate"
# Period counts per tag value, with how many values each tag has; only the top values a tag
# come back (the page shows no more), so an id-like tag never sends all its values. A value
# that is one mart row (one bot, one day) keeps the mart's rates (MAX of one value); those of a
# value over several rows are not read: its rates are its summed counts'.
TAG_SQL = """
WITH per_value AS (
    SELECT tag_scope, tag_name, tag_value, SUM(sessions) AS sessions,
        SUM(self_service) AS self_service, SUM(drop_off) AS drop_off, SUM(agent) AS agent,
        COUNT(*) AS mart_rows, MAX(containment_rate) AS containment_rate,
        MAX(drop_off_rate) AS drop_off_rate, MAX(agent_transfer_rate) AS agent_transfer_rate
    FROM {table} WHERE day >= %s AND day <= %s
    GROUP BY tag_scope, tag_name, tag_value
),
ranked AS (
    SELECT per_value.*,
        COUNT(*) OVER (PARTITION BY tag_scope, tag_name) AS distinct_values,
        ROW_NUMBER() OVER (PARTITION BY tag_scope, tag_name ORDER BY sessions DESC, tag_value) AS value_rank
    FROM per_value
)
SELECT tag_scope, tag_name, tag_value, distinct_values, sessions, self_service, drop_off, agent,
    mart_rows, containment_rate, drop_off_rate, agent_transfer_rate
FROM ranked WHERE value_rank <= %s ORDER BY tag_scope, tag_name, value_rank
"""


class ReportError(ActionableError):
    """The report cannot be made from what is in the warehouse (the message says what to run)."""


def read_report_data(pipeline: dlt.Pipeline, days: int = 30) -> ReportData:
    """Read the last `days` days of the marts, with the weeks and months up to them.

    The period ends on the latest day present in `fct_containment_daily` and covers `days`
    calendar days up to it (fewer when the data starts later). Works on any SQL destination
    of dlt (DuckDB, PostgreSQL).

    Args:
        pipeline: The `kore_sessions` pipeline whose dataset holds the marts.
        days: Number of days to report, at least 1.

    Returns:
        The counts of the period, ready for `render_report`.

    Raises:
        ValueError: When `days` is below 1.
        ReportError: When the models are not built in the dataset.
    """
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    generated_at = datetime.now(UTC)
    dataset = pipeline.dataset_name
    with pipeline.sql_client() as client:
        try:
            if not client.has_dataset():
                raise _not_built(dataset)
            relations = set(existing_relations(client, client.dataset_name))
            if not relations >= REQUIRED_TABLES:
                raise _not_built(dataset)
            report = _read(client, dataset, generated_at, days, LOADS_TABLE in relations)
            return _with_leaving(client, report, DROPOFF_TABLE in relations)
        except DatabaseUndefinedRelation as exc:
            raise _not_built(dataset) from exc


def _read(client: Any, dataset: str, generated_at: datetime, days: int, has_loads: bool) -> ReportData:
    """Every mart's rows of the period, with the scope and the freshness of the data."""
    zone, scope = _settings(client)
    spans = _bots(client)
    newest = max((bot.last_session_at for bot in spans if bot.last_session_at), default=None)
    freshness = Freshness(zone, _last_load(client) if has_loads else None, newest)
    first_data_day, last_day = _day_span(client)
    if last_day is None or first_data_day is None:
        return ReportData(
            dataset, zone, generated_at, [], [], scope, bots=spans, last_load_at=freshness.last_load_at
        )
    period = Period.of(max(first_data_day, last_day - timedelta(days=days - 1)), last_day, freshness)
    first, totals_last = period.first_day, period.totals_last
    weeks_from = week_start(last_day) - timedelta(weeks=WEEKS_SHOWN - 1)
    months_from = add_months(month_start(last_day), 1 - MONTHS_SHOWN)
    return ReportData(
        dataset=dataset,
        reporting_time_zone=zone,
        generated_at=generated_at,
        daily=[_daily(row) for row in _select(client, DAILY_TABLE, "day", first, last_day)],
        channels=[_slice(row) for row in _select(client, CHANNEL_TABLE, "day", first, last_day, "channel")],
        scope=scope,
        languages=[_slice(r) for r in _select(client, LANGUAGE_TABLE, "day", first, last_day, "language")],
        weekly=[_daily(row) for row in _select(client, WEEKLY_TABLE, "week_start", weeks_from, last_day)],
        monthly=[_daily(row) for row in _select(client, MONTHLY_TABLE, "month_start", months_from, last_day)],
        tags=_tags(client, first, totals_last),
        behaviour=read_behaviour(client, first, totals_last),
        bots=spans,
        last_load_at=freshness.last_load_at,
        newest_session_at=newest,
        first_day=first,
        first_data_day=first_data_day,
    )


def _with_leaving(client: Any, report: ReportData, built: bool) -> ReportData:
    """The report with the last bot messages of its period totals' days (`fct_dropoff_points`
    is optional: models built before it say so in its section)."""
    period = report.period
    if not built or period is None:
        return replace(report, leaving=WhereUsersLeave(built=built))
    return replace(report, leaving=read_leaving(client, period.first_day, period.totals_last))


def _settings(client: Any) -> tuple[str, str]:
    """The reporting time zone and what the marts counted, from the settings they were built with."""
    settings_table = client.make_qualified_table_name(SETTINGS_TABLE)
    rows = client.execute_sql(f"SELECT {SCOPE_COLUMNS} FROM {settings_table}")
    if not rows:
        return "", DEFAULT_SCOPE
    zone, active, non_interactive, developer = rows[0]
    settings = ModelSettings(str(zone), bool(active), bool(non_interactive), bool(developer))
    return settings.reporting_time_zone, settings.describe()


def _last_load(client: Any) -> datetime | None:
    """The newest successful load of the dataset (UTC), None when none is recorded."""
    table = client.make_qualified_table_name(LOADS_TABLE)
    rows = client.execute_sql(f"SELECT MAX(inserted_at) FROM {table} WHERE status = 0")
    return as_utc(rows[0][0]) if rows else None


def _bots(client: Any) -> list[BotSpan]:
    """Every bot with loaded sessions, and the span of its sessions."""
    table = client.make_qualified_table_name(BOTS_TABLE)
    rows = client.execute_sql(
        f"SELECT bot_id, first_session_at, last_session_at FROM {table} ORDER BY bot_id"
    )
    return [BotSpan(str(bot), as_utc(first), as_utc(last)) for bot, first, last in rows or []]


def _day_span(client: Any) -> tuple[date | None, date | None]:
    """The first and latest day of `fct_containment_daily`."""
    table = client.make_qualified_table_name(DAILY_TABLE)
    rows = client.execute_sql(f"SELECT MIN(day), MAX(day) FROM {table}")
    first, last = rows[0] if rows else (None, None)
    return (None if first is None else _as_date(first)), (None if last is None else _as_date(last))


def _select(client: Any, mart: str, period: str, first: date, last: date, key: str = "") -> list[Any]:
    """A containment mart's counts and rates from `first` to `last` (its period column), keys first."""
    table = client.make_qualified_table_name(mart)
    keys = ", ".join(column for column in (period, "bot_id", key) if column)
    sql = (
        f"SELECT {keys}, {COUNT_COLUMNS}, {RATE_COLUMNS} FROM {table} "
        f"WHERE {period} >= %s AND {period} <= %s ORDER BY {keys}"
    )
    return client.execute_sql(sql, first, last) or []


def _tags(client: Any, first: date, last: date) -> list[TagCounts]:
    """Counts per tag value over the days, the top values of each tag."""
    table = client.make_qualified_table_name(TAG_TABLE)
    rows = client.execute_sql(TAG_SQL.format(table=table), first, last, TAG_MAX_DISTINCT)
    return [
        TagCounts(
            str(scope),
            str(name),
            None if value is None else str(value),
            int(distinct),
            *_counts(values[:4]),
            rates=_rates(values[5:8]) if values[4] == 1 else None,
        )
        for scope, name, value, distinct, *values in rows or []
    ]


def _not_built(dataset: str) -> ReportError:
    """The error for a dataset without the containment marts."""
    return ReportError(
        f"the containment models are not built in dataset {dataset}: run `kore-sessions models` first"
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


def _rates(values: Sequence[Any]) -> Rates:
    """Three rate columns of a mart row as floats (NULL stays None)."""
    containment, drop_off, agent_transfer = (None if value is None else float(value) for value in values)
    return Rates(containment, drop_off, agent_transfer)


def _daily(row: Sequence[Any]) -> DailyCounts:
    """A row of a mart per day (or week or month) and bot: keys, counts, rates."""
    return DailyCounts(_as_date(row[0]), str(row[1]), *_counts(row[2:6]), rates=_rates(row[6:9]))


def _slice(row: Sequence[Any]) -> SliceCounts:
    """A row of a mart per day, bot and channel or language: keys, counts, rates."""
    key = UNKNOWN_CODE if row[2] is None else str(row[2])
    return SliceCounts(_as_date(row[0]), str(row[1]), *_counts(row[3:7]), rates=_rates(row[7:10]), key=key)
