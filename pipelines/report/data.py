"""Reading the report's data: the containment marts of a dataset and the scope they count.

Works on any SQL destination of dlt (DuckDB, PostgreSQL): the SQL is plain, and its one
parameter is `%s`, which every dlt SQL client takes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dlt
from dlt.destinations.exceptions import DatabaseUndefinedRelation

from ..model_settings import ModelSettings
from ..models import SETTINGS_TABLE
from .counts import ChannelCounts, DailyCounts

# The mart with one row per day and bot: the trend, the table and the period come from it.
DAILY_TABLE = "fct_containment_daily"
# The mart with one row per day, bot and channel: the channel split comes from it.
CHANNEL_TABLE = "fct_containment_daily_by_channel"
# The scope columns of the models' settings table, in ModelSettings' field order.
SCOPE_COLUMNS = "reporting_time_zone, include_active, include_non_interactive, include_developer"
# What the marts count unless kore_model_settings says otherwise (the models' defaults).
DEFAULT_SCOPE = ModelSettings().describe()
# How a session without a channel shows in the channel split.
NO_CHANNEL = "(none)"


class ReportError(Exception):
    """The report cannot be made from what is in the warehouse."""


@dataclass(frozen=True)
class ReportData:
    """Everything the report shows."""

    dataset: str
    reporting_time_zone: str
    generated_at: datetime
    daily: list[DailyCounts]
    channels: list[ChannelCounts]
    scope: str = DEFAULT_SCOPE


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
            return _read_period(client, dataset, generated_at, days)
        except DatabaseUndefinedRelation as exc:
            raise _not_built(dataset) from exc


def _read_period(client: Any, dataset: str, generated_at: datetime, days: int) -> ReportData:
    """The marts' rows of the `days` days up to their latest day, with the scope they count."""
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
    return ReportData(
        dataset=dataset,
        reporting_time_zone=time_zone,
        generated_at=generated_at,
        daily=[_daily_row(row) for row in daily or []],
        channels=[_channel_row(row) for row in channels or []],
        scope=_scope(client),
    )


def _scope(client: Any) -> str:
    """What the marts counted, from the settings they were built with."""
    settings_table = client.make_qualified_table_name(SETTINGS_TABLE)
    rows = client.execute_sql(f"SELECT {SCOPE_COLUMNS} FROM {settings_table}")
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
    channel = NO_CHANNEL if row[2] is None else str(row[2])
    return ChannelCounts(_as_date(row[0]), str(row[1]), channel, *_counts(row[3:7]))
