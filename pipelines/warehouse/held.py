"""What the audit asks the warehouse: the sessions it holds per bot and range (erased ones
counted as held), their ids, and the record of every check (`kore_audit`, for BI tools)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import dlt
from kore_sessions.source.api.rules import ALL_BOTS_KEY
from kore_sessions.source.sessions.spec import SESSIONS_TABLE
from kore_sessions.warehouse.erasures import erased_count
from kore_sessions.warehouse.turn import warehouse_turn

# The table of every check, for BI tools: one row per day and bot per audit.
AUDIT_TABLE = "kore_audit"
AUDIT_COLUMNS = {
    "day": "DATE",
    "bot_id": "VARCHAR",
    "api_sessions": "BIGINT",
    "warehouse_sessions": "BIGINT",
    "difference": "BIGINT",
    "checked_from": "TIMESTAMP WITH TIME ZONE",
    "checked_to": "TIMESTAMP WITH TIME ZONE",
    "checked_at": "TIMESTAMP WITH TIME ZONE",
    "repaired": "BOOLEAN",
}


def record_checks(pipeline: dlt.Pipeline, rows: list[tuple[Any, ...]]) -> None:
    """Append audit checks to `kore_audit` (made on first use), one row per day and bot, with
    the values of `AUDIT_COLUMNS` in order."""
    if not rows:
        return
    with warehouse_turn(pipeline), pipeline.sql_client() as sql:
        table = sql.make_qualified_table_name(AUDIT_TABLE)
        columns = ", ".join(f"{name} {kind}" for name, kind in AUDIT_COLUMNS.items())
        sql.execute_sql(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")
        marks = ", ".join(["%s"] * len(AUDIT_COLUMNS))
        names = ", ".join(AUDIT_COLUMNS)
        with sql.begin_transaction():
            for row in rows:
                sql.execute_sql(f"INSERT INTO {table} ({names}) VALUES ({marks})", *row)


def count_held(sql: Any, bot: str, start: datetime, end: datetime) -> int:
    """Sessions of `bot` that started in [start, end] and the warehouse holds, or holds out on
    purpose (erased at a user's request: the API may still have them)."""
    where, args = range_filter(bot, start, end)
    table = sql.make_qualified_table_name(SESSIONS_TABLE)
    rows = sql.execute_sql(f"SELECT COUNT(*) FROM {table} WHERE {where}", *args)
    return int(rows[0][0]) + erased_count(sql, None if bot == ALL_BOTS_KEY else bot, start, end)


def ids_held(sql: Any, bot: str, start: datetime, end: datetime) -> Iterator[str]:
    """Ids of the sessions of `bot` in the warehouse that started in [start, end]."""
    where, args = range_filter(bot, start, end)
    table = sql.make_qualified_table_name(SESSIONS_TABLE)
    for (session_id,) in sql.execute_sql(f"SELECT session_id FROM {table} WHERE {where}", *args) or []:
        yield str(session_id)


def range_filter(bot: str, start: datetime, end: datetime) -> tuple[str, list[Any]]:
    """The WHERE clause of a bot's sessions in [start, end] (every bot on the admin route)."""
    where = "start_time >= %s AND start_time <= %s"
    args: list[Any] = [start, end]
    if bot != ALL_BOTS_KEY:
        where += " AND bot_id = %s"
        args.append(bot)
    return where, args
