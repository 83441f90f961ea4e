"""The session's columns, stated once: API field, column, Arrow type, dlt type, nullable.

Everything else is derived from these tables: the resource's column hints, the Arrow builder's
schemas, the record transform's known fields, and the SQL types of the child tables the models
read before dlt has created them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from kore_sessions.source.sessions.spec import DELETED_COLUMN, PRIMARY_KEY, SESSIONS_TABLE

# Timestamps are kept to the microsecond, in UTC.
TIMESTAMP = pa.timestamp("us", tz="UTC")
# SQL type of each dlt type, for stand-ins of tables dlt has not created yet (DuckDB dialect).
SQL_TYPES = {"text": "VARCHAR", "bigint": "BIGINT", "bool": "BOOLEAN", "timestamp": "TIMESTAMPTZ"}


@dataclass(frozen=True)
class Column:
    """One column of a table the source loads.

    Attributes:
        name: The column in the warehouse (snake_case).
        api_field: The field of the API's session it comes from; None when the source makes it.
        arrow: Its Arrow type.
        dlt_type: Its dlt data type.
        nullable: Whether it may be NULL.
        hints: Further dlt column hints.
    """

    name: str
    api_field: str | None
    arrow: pa.DataType
    dlt_type: str
    nullable: bool = True
    hints: tuple[tuple[str, Any], ...] = ()

    def dlt_hint(self) -> dict[str, Any]:
        """The column's dlt hint."""
        hint: dict[str, Any] = {"data_type": self.dlt_type, **dict(self.hints)}
        if not self.nullable:
            hint["nullable"] = False
        return hint


@dataclass(frozen=True)
class ChildTable:
    """A list of each session that becomes a table of its own, one row per item.

    Attributes:
        key: The list's key in a row of `records.to_row`.
        api_path: Where the list is in the API's session.
        columns: The typed columns of an item.
    """

    key: str
    api_path: tuple[str, ...]
    columns: tuple[Column, ...]

    @property
    def table(self) -> str:
        """The dlt table name: nested under `sessions`."""
        return f"{SESSIONS_TABLE}__{self.key}"


SESSION_COLUMNS: tuple[Column, ...] = (
    Column(PRIMARY_KEY, "sessionId", pa.string(), "text", nullable=False),
    Column("bot_id", "botId", pa.string(), "text"),
    Column("channel", "channel", pa.string(), "text"),
    Column("user_id", "userId", pa.string(), "text"),
    Column("start_time", "start_time", TIMESTAMP, "timestamp"),
    Column("end_time", "end_time", TIMESTAMP, "timestamp"),
    Column("session_type", "sessionType", pa.string(), "text"),
    Column("containment_type", "containmentType", pa.string(), "text"),
    Column("is_developer", "isDeveloper", pa.bool_(), "bool"),
    Column("session_status", "sessionStatus", pa.string(), "text"),
    Column("no_of_messages_exchanged", "noOfMessagesExchanged", pa.int64(), "bigint"),
    Column("no_of_tasks_executed", "noOfTasksExecuted", pa.int64(), "bigint"),
    # Set on rows to delete: sessions the API no longer knows (`invalidSessions`).
    Column(DELETED_COLUMN, None, pa.bool_(), "bool", hints=(("hard_delete", True),)),
)
TAG_COLUMNS: tuple[Column, ...] = (
    Column(PRIMARY_KEY, None, pa.string(), "text"),
    Column("position", None, pa.int64(), "bigint"),
    Column("name", "name", pa.string(), "text"),
    Column("value", "value", pa.string(), "text"),
    Column("value_type", None, pa.string(), "text"),
)
CHILD_TABLES: tuple[ChildTable, ...] = (
    ChildTable(
        "session_lang",
        ("session_lang",),
        (Column(PRIMARY_KEY, None, pa.string(), "text"), Column("lang", None, pa.string(), "text")),
    ),
    ChildTable("user_tags", ("tags", "userTags"), TAG_COLUMNS),
    ChildTable("session_tags", ("tags", "sessionTags"), TAG_COLUMNS),
)

# API fields that become typed columns or child tables; any other field passes through.
KNOWN_API_FIELDS = frozenset(
    {column.api_field for column in SESSION_COLUMNS if column.api_field}
    | {child.api_path[0] for child in CHILD_TABLES}
)


def arrow_schema(columns: Sequence[Column]) -> pa.Schema:
    """The Arrow schema of some columns, in order."""
    return pa.schema([pa.field(c.name, c.arrow, nullable=c.nullable) for c in columns])


def dlt_columns(columns: Sequence[Column]) -> dict[str, dict[str, Any]]:
    """The dlt column hints of some columns."""
    return {column.name: column.dlt_hint() for column in columns}


def source_sql_columns() -> dict[str, dict[str, str]]:
    """The SQL columns of `sessions` and each child table (dlt makes a table only once an item
    arrives, and a column only once a value does)."""
    tables = {SESSIONS_TABLE: SESSION_COLUMNS, **{child.table: child.columns for child in CHILD_TABLES}}
    return {table: {c.name: SQL_TYPES[c.dlt_type] for c in columns} for table, columns in tables.items()}
