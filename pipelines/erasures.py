"""The sessions users had erased (`kore-sessions forget`), as the warehouse remembers them.

Each is kept by a hash of its session id (`sources.kore_sessions.run.erased_key`), its bot and
its start, never by who it belonged to: loads skip them, and `audit` counts them as held.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import dlt

# The sessions a user had erased, by the hash of their id: kept out of every later load.
ERASED_TABLE = "kore_erased_sessions"
ERASED_COLUMNS = (
    ("session_key", "VARCHAR"),
    ("bot_id", "VARCHAR"),
    ("started_at", "TIMESTAMP WITH TIME ZONE"),
    ("erased_at", "TIMESTAMP WITH TIME ZONE"),
)


def erased_keys(pipeline: dlt.Pipeline) -> frozenset[str]:
    """The hashed ids of every erased session of the dataset (none before the first erasure)."""
    with pipeline.sql_client() as sql:
        if not sql.has_dataset():
            return frozenset()
        try:
            rows = sql.execute_sql(f"SELECT session_key FROM {sql.make_qualified_table_name(ERASED_TABLE)}")
        except Exception:  # no erasure yet: the table does not exist
            return frozenset()
    return frozenset(str(key) for (key,) in rows or [])


def erased_count(sql: Any, bot: str | None, start: datetime, end: datetime) -> int:
    """Erased sessions of a bot (every bot: None) that started in [start, end]."""
    table = sql.make_qualified_table_name(ERASED_TABLE)
    where, args = "started_at >= %s AND started_at <= %s", [start, end]
    if bot is not None:
        where, args = f"{where} AND bot_id = %s", [*args, bot]
    try:
        rows = sql.execute_sql(f"SELECT COUNT(*) FROM {table} WHERE {where}", *args)
    except Exception:  # no erasure yet
        return 0
    return int(rows[0][0])
