"""The messages' columns, stated once: API field, column, Arrow type, dlt type, nullable.

What users typed is personal data: `text` (on the message and on each component) holds the
words of the bot's own messages, and those of a user's only when `store_user_text` is set;
every message keeps its type, times, text length and component kinds.
"""

from __future__ import annotations

import pyarrow as pa

from kore_sessions.source.api.columns import TIMESTAMP, ChildTable, Column, sql_columns
from kore_sessions.source.messages.history_rules import MESSAGE_KEY, MESSAGES_TABLE

MESSAGE_COLUMNS: tuple[Column, ...] = (
    Column(MESSAGE_KEY, "_id", pa.string(), "text", nullable=False),
    Column("session_id", "sessionId", pa.string(), "text"),
    Column("bot_id", "botId", pa.string(), "text"),
    # `incoming` (the user), `outgoing` (the bot), or any other value the API sends (`ctrlmsg`).
    Column("message_type", "type", pa.string(), "text"),
    Column("status", "status", pa.string(), "text"),
    Column("created_on", "createdOn", TIMESTAMP, "timestamp"),
    Column("modified_on", "lmodifiedOn", TIMESTAMP, "timestamp"),
    Column("timestamp_value", "timestampValue", pa.int64(), "bigint"),
    Column("channel", "chnl", pa.string(), "text"),
    Column("lang", "lang", pa.string(), "text"),
    # `ms`, the message's source (0 alert task, 1 text, 2 action task, 3 other), as text: its
    # type is loose, and values beyond the documented ones are kept.
    Column("message_source", "ms", pa.string(), "text"),
    Column("is_developer", "isD", pa.bool_(), "bool"),
    Column("is_builder", "isBB", pa.bool_(), "bool"),
    # The end user's id (personal data, raw table only): also on the bot's replies.
    Column("created_by", "createdBy", pa.string(), "text"),
    # Written by a live agent (the answer's `author`, asked for with `getAgentsInfo`), not the bot;
    # the agent's details are not kept.
    Column("from_agent", None, pa.bool_(), "bool"),
    Column("component_kinds", None, pa.string(), "text"),
    Column("text_length", None, pa.int64(), "bigint"),
    Column("text", None, pa.string(), "text"),
)
COMPONENT_COLUMNS: tuple[Column, ...] = (
    Column(MESSAGE_KEY, None, pa.string(), "text"),
    Column("position", None, pa.int64(), "bigint"),
    Column("component_id", "_id", pa.string(), "text"),
    Column("kind", "cT", pa.string(), "text"),
    Column("text_length", None, pa.int64(), "bigint"),
    Column("text", None, pa.string(), "text"),
)
MESSAGE_TAG_COLUMNS: tuple[Column, ...] = (
    Column(MESSAGE_KEY, None, pa.string(), "text"),
    Column("position", None, pa.int64(), "bigint"),
    # Which list the tag came in: `message`, `user` or `session` (messageTags, userTags, sessionTags).
    Column("scope", None, pa.string(), "text"),
    Column("name", "name", pa.string(), "text"),
    Column("value", "value", pa.string(), "text"),
    Column("value_type", None, pa.string(), "text"),
)
MESSAGE_CHILD_TABLES: tuple[ChildTable, ...] = (
    ChildTable("components", ("components",), COMPONENT_COLUMNS, MESSAGES_TABLE),
    ChildTable("tags", ("tags",), MESSAGE_TAG_COLUMNS, MESSAGES_TABLE),
)

# API fields that become typed columns or child tables, or are left out on purpose:
# `channels` (the user's channel identity: e-mail, phone), `channel` (the other spelling of
# `chnl`), `author` (an agent's details), `latency`; any other scalar field passes through.
KNOWN_API_FIELDS = frozenset(
    {column.api_field for column in MESSAGE_COLUMNS if column.api_field}
    | {child.api_path[0] for child in MESSAGE_CHILD_TABLES}
    | {"channels", "channel", "author", "latency", "lmodifiedBy"}
)


def messages_sql_columns() -> dict[str, dict[str, str]]:
    """The SQL columns of `messages` and its child tables, for stand-ins of tables not made yet."""
    return sql_columns(MESSAGES_TABLE, MESSAGE_COLUMNS, MESSAGE_CHILD_TABLES)
