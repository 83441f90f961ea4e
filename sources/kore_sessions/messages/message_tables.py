"""The messages' tables as the shared Arrow builder makes them: `messages`, merged on
`message_id`, and its child tables `messages__components` and `messages__tags`."""

from __future__ import annotations

from kore_sessions.source.api.arrow_rows import TableSpec
from kore_sessions.source.messages.history_rules import MESSAGE_KEY, MESSAGES_TABLE
from kore_sessions.source.messages.message_columns import MESSAGE_CHILD_TABLES, MESSAGE_COLUMNS

MESSAGES_SPEC = TableSpec(MESSAGES_TABLE, MESSAGE_KEY, "message", MESSAGE_COLUMNS, MESSAGE_CHILD_TABLES)
