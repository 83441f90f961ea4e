"""What the audit asks the warehouse: the sessions and messages it holds per bot and range
(erased ones counted as held), their ids, and the record of every check (`kore_audit`, for BI
tools)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import dlt
from kore_sessions.source.api.rules import ALL_BOTS_KEY
from kore_sessions.source.messages.history_rules import MESSAGES_TABLE
from kore_sessions.source.sessions.spec import SESSIONS_TABLE
from kore_sessions.warehouse.dataset import existing_relations
from kore_sessions.warehouse.erasures import (
    ERASED_MESSAGES_TABLE,
    ERASED_TABLE,
    MESSAGE_TIME_COLUMN,
    ROW_ID,
)
from kore_sessions.warehouse.turn import warehouse_turn

# The table of every check, for BI tools: one row per day, bot and resource per audit. The
# counts keep the names they had when only sessions were audited: on a `messages` row they
# count messages.
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
    "resource": "VARCHAR",
}
# The column `kore_audit` gained with the messages; the rows of a table made before it were
# all sessions.
RESOURCE_COLUMN, RESOURCE_BEFORE = "resource", SESSIONS_TABLE
# dlt's record of every load of the dataset.
LOADS_TABLE = "_dlt_loads"


@dataclass(frozen=True)
class HeldTable:
    """Where a resource's records are counted: its table and time column, and the table of its
    records erased at a user's request (held out on purpose: the API may still have them)."""

    table: str
    time_column: str
    erased_table: str
    erased_time_column: str


SESSIONS_HELD = HeldTable(SESSIONS_TABLE, "start_time", ERASED_TABLE, "started_at")
MESSAGES_HELD = HeldTable(MESSAGES_TABLE, MESSAGE_TIME_COLUMN, ERASED_MESSAGES_TABLE, "created_at")


def record_checks(pipeline: dlt.Pipeline, rows: list[tuple[Any, ...]]) -> None:
    """Append audit checks to `kore_audit` (made on first use, given its `resource` column when
    made before it), one row per day, bot and resource, with the values of `AUDIT_COLUMNS` in
    order."""
    if not rows:
        return
    with warehouse_turn(pipeline), pipeline.sql_client() as sql:
        table = sql.make_qualified_table_name(AUDIT_TABLE)
        columns = ", ".join(f"{name} {kind}" for name, kind in AUDIT_COLUMNS.items())
        sql.execute_sql(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")
        if RESOURCE_COLUMN not in _columns(sql, AUDIT_TABLE):
            kind = AUDIT_COLUMNS[RESOURCE_COLUMN]
            sql.execute_sql(
                f"ALTER TABLE {table} ADD COLUMN {RESOURCE_COLUMN} {kind} DEFAULT '{RESOURCE_BEFORE}'"
            )
        marks = ", ".join(["%s"] * len(AUDIT_COLUMNS))
        names = ", ".join(AUDIT_COLUMNS)
        with sql.begin_transaction():
            for row in rows:
                sql.execute_sql(f"INSERT INTO {table} ({names}) VALUES ({marks})", *row)


def _columns(sql: Any, table: str) -> set[str]:
    """The columns of a table of the client's dataset."""
    rows = sql.execute_sql(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
        sql.dataset_name,
        table,
    )
    return {str(name) for (name,) in rows or []}


def count_held(sql: Any, bot: str, start: datetime, end: datetime, held: HeldTable = SESSIONS_HELD) -> int:
    """Records of `bot` (sessions by default) whose time falls in [start, end] and that the
    warehouse holds, or holds out on purpose (erased at a user's request: the API may still
    have them). A table not made yet holds none."""
    present = existing_relations(sql, sql.dataset_name)
    count = 0
    for table, column in ((held.table, held.time_column), (held.erased_table, held.erased_time_column)):
        if table in present:
            where, args = range_filter(bot, start, end, column)
            rows = sql.execute_sql(
                f"SELECT COUNT(*) FROM {sql.make_qualified_table_name(table)} WHERE {where}", *args
            )
            count += int(rows[0][0])
    return count


def count_held_messages(sql: Any, bot: str, start: datetime, end: datetime) -> int:
    """Messages of `bot` created in [start, end] that the warehouse holds or holds out on purpose."""
    return count_held(sql, bot, start, end, MESSAGES_HELD)


def ids_held(sql: Any, bot: str, start: datetime, end: datetime) -> Iterator[str]:
    """Ids of the sessions of `bot` in the warehouse that started in [start, end]."""
    where, args = range_filter(bot, start, end)
    table = sql.make_qualified_table_name(SESSIONS_TABLE)
    for (session_id,) in sql.execute_sql(f"SELECT session_id FROM {table} WHERE {where}", *args) or []:
        yield str(session_id)


def load_ids(sql: Any) -> set[str]:
    """Every load the dataset has recorded (none before the first)."""
    if LOADS_TABLE not in existing_relations(sql, sql.dataset_name):
        return set()
    rows = sql.execute_sql(f"SELECT load_id FROM {sql.make_qualified_table_name(LOADS_TABLE)}")
    return {str(load_id) for (load_id,) in rows or []}


def messages_loaded_before(
    sql: Any, bot: str, start: datetime, end: datetime, reloads: set[str]
) -> list[str]:
    """Ids of the messages of `bot` created in [start, end] that none of the loads `reloads`
    wrote: after a reload of that range, those its walk did not list."""
    if MESSAGES_TABLE not in existing_relations(sql, sql.dataset_name):
        return []
    where, args = range_filter(bot, start, end, MESSAGE_TIME_COLUMN)
    table = sql.make_qualified_table_name(MESSAGES_TABLE)
    rows = sql.execute_sql(f"SELECT {ROW_ID}, _dlt_load_id FROM {table} WHERE {where}", *args)
    return sorted(str(message_id) for message_id, load_id in rows or [] if str(load_id) not in reloads)


def range_filter(
    bot: str, start: datetime, end: datetime, column: str = "start_time"
) -> tuple[str, list[Any]]:
    """The WHERE clause of a bot's records whose `column` falls in [start, end] (every bot on
    the admin route)."""
    where = f"{column} >= %s AND {column} <= %s"
    args: list[Any] = [start, end]
    if bot != ALL_BOTS_KEY:
        where += " AND bot_id = %s"
        args.append(bot)
    return where, args
