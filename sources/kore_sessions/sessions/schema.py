"""The session's columns, stated once: API field, column, Arrow type, dlt type, nullable.

Everything else is derived from these tables: the resource's column hints, the Arrow builder's
schemas, the record transform's known fields, and the SQL types of the child tables the models
read before dlt has created them.
"""

from __future__ import annotations

import pyarrow as pa

from kore_sessions.source.api.columns import TIMESTAMP, ChildTable, Column, sql_columns
from kore_sessions.source.sessions.spec import DELETED_COLUMN, PRIMARY_KEY, SESSIONS_TABLE

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
        SESSIONS_TABLE,
    ),
    ChildTable("user_tags", ("tags", "userTags"), TAG_COLUMNS, SESSIONS_TABLE),
    ChildTable("session_tags", ("tags", "sessionTags"), TAG_COLUMNS, SESSIONS_TABLE),
)

# API fields that become typed columns or child tables; any other field passes through.
KNOWN_API_FIELDS = frozenset(
    {column.api_field for column in SESSION_COLUMNS if column.api_field}
    | {child.api_path[0] for child in CHILD_TABLES}
)


def source_sql_columns() -> dict[str, dict[str, str]]:
    """The SQL columns of `sessions` and each child table, for stand-ins of tables not made yet."""
    return sql_columns(SESSIONS_TABLE, SESSION_COLUMNS, CHILD_TABLES)
