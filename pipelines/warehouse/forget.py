"""`kore-sessions forget`: one person's sessions erased from the warehouse, and kept out of it.

An erasure request names a user id. Their sessions and child rows are deleted (with any copy
in the pipelines' staging datasets and the local data files of loaded packages), the marts are
rebuilt, the person is remembered in `kore_erased_users` by a hash of their user id (never in
clear), and each erased session in `kore_erased_sessions` by a hash of its id, with its bot and
start: every later load step leaves the person's sessions out, whenever they were extracted
(`erasures`), and `audit` counts them as held. It needs the dataset's turn only, not the run
lock of a pipeline, so it goes through beside a long backfill.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dlt
from kore_sessions.source.sessions.schema import CHILD_TABLES
from kore_sessions.source.sessions.spec import SESSIONS_TABLE
from kore_sessions.warehouse.dataset import existing_relations
from kore_sessions.warehouse.erasures import (
    create_erasure_tables,
    erased_key,
    remember_sessions,
    remember_users,
)
from kore_sessions.warehouse.models import build_models, built_settings
from kore_sessions.warehouse.turn import warehouse_turn

# Ids per DELETE statement: well within any warehouse's limit on a statement's parameters.
IDS_PER_STATEMENT = 500


@dataclass
class Forgotten:
    """What an erasure removed."""

    users: int = 0
    sessions: int = 0
    child_rows: int = 0
    by_bot: Counter[str] = field(default_factory=Counter)
    models_rebuilt: bool = False

    def lines(self) -> list[str]:
        """What was removed, as printed (no personal value in it)."""
        bots = ", ".join(f"{bot}: {n}" for bot, n in sorted(self.by_bot.items())) or "none"
        lines = [
            f"forgot {self.sessions} sessions of {self.users} user(s) ({bots}) and their {self.child_rows} "
            "tag and language rows; later loads leave their sessions out",
        ]
        if self.models_rebuilt:
            lines.append("models rebuilt without them")
        return lines


def forget_users(pipeline: dlt.Pipeline, user_ids: Sequence[str]) -> Forgotten:
    """Erase the sessions of these users from the pipeline's warehouse, and keep them out.

    Args:
        pipeline: The pipeline whose dataset holds the sessions.
        user_ids: The users' ids, as the API gives them (`userId`).

    Returns:
        What was removed.
    """
    result = Forgotten(users=len(set(user_ids)))
    with warehouse_turn(pipeline):  # loads of every partition wait, then apply the erasures
        with pipeline.sql_client() as sql:
            found = _sessions_of(sql, sorted(set(user_ids)))
            ids = [session_id for session_id, _, _ in found]
            now = datetime.now(UTC)
            create_erasure_tables(sql)
            with sql.begin_transaction():
                remember_users(sql, sorted(set(user_ids)), now)
                remember_sessions(sql, [(erased_key(sid), bot, started, now) for sid, bot, started in found])
                result.child_rows = _delete(sql, ids)
            result.sessions, result.by_bot = len(ids), Counter(bot for _, bot, _ in found)
            _delete_staged_copies(sql, ids)
        settings = built_settings(pipeline)
        if settings is not None and ids:
            build_models(pipeline, settings)  # in the same turn: no reader sees marts with them
            result.models_rebuilt = True
    return result


def _sessions_of(sql: Any, user_ids: list[str]) -> list[tuple[str, str, datetime]]:
    """(session id, bot, start) of every session of these users."""
    table = sql.make_qualified_table_name(SESSIONS_TABLE)
    found = []
    for chunk in _chunks(user_ids):
        marks = ", ".join(["%s"] * len(chunk))
        query = f"SELECT session_id, bot_id, start_time FROM {table} WHERE user_id IN ({marks})"
        found += [(str(sid), str(bot), started) for sid, bot, started in sql.execute_sql(query, *chunk) or []]
    return found


def _delete(sql: Any, ids: list[str]) -> int:
    """Delete sessions and their child rows; return how many child rows went. Only tables that
    exist are touched (a failed statement would abort a PostgreSQL transaction)."""
    present = set(existing_relations(sql, sql.dataset_name))
    tables = [child.table for child in CHILD_TABLES if child.table in present]
    children = 0
    for chunk in _chunks(ids):
        marks = ", ".join(["%s"] * len(chunk))
        for name in tables:
            table = sql.make_qualified_table_name(name)
            counted = sql.execute_sql(f"SELECT COUNT(*) FROM {table} WHERE _dlt_root_id IN ({marks})", *chunk)
            children += int(counted[0][0])
            sql.execute_sql(f"DELETE FROM {table} WHERE _dlt_root_id IN ({marks})", *chunk)
        if SESSIONS_TABLE in present:
            table = sql.make_qualified_table_name(SESSIONS_TABLE)
            sql.execute_sql(f"DELETE FROM {table} WHERE session_id IN ({marks})", *chunk)
    return children


def _delete_staged_copies(sql: Any, ids: list[str]) -> None:
    """Delete the sessions from every staging dataset of the dataset (one per partition): dlt
    merges through them and they keep the last load's rows until the next one."""
    rows = sql.execute_sql(
        "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE %s",
        f"{sql.dataset_name}_staging%",
    )
    for (schema,) in rows or []:
        with sql.with_alternative_dataset_name(str(schema)):
            _delete(sql, ids)


def _chunks(values: list[str]) -> list[list[str]]:
    """The values in slices of IDS_PER_STATEMENT."""
    return [values[start : start + IDS_PER_STATEMENT] for start in range(0, len(values), IDS_PER_STATEMENT)]
