"""`kore-sessions forget`: one person's sessions and messages erased from the warehouse, and
kept out of it.

An erasure request names a user id. Their sessions and child rows are deleted, and so are the
messages of those sessions and every message the person is the user of (`created_by`), with
their components and tags (with any copy in the pipelines' staging datasets and the local data
files of loaded packages), the marts are rebuilt, the person is remembered in
`kore_erased_users` by a hash of their user id (never in clear), each erased session in
`kore_erased_sessions` by a hash of its id, with its bot and start, and each erased message in
`kore_erased_messages` by a hash of its id, with its bot and creation: every later load step
leaves the person's sessions and messages out, whenever they were extracted (`erasures`), and
`audit` counts the sessions and messages as held. It needs the dataset's turn only, not the run
lock of a pipeline, so it goes through beside a long backfill.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dlt
from kore_sessions.source.messages.history_rules import MESSAGES_TABLE
from kore_sessions.source.messages.message_columns import MESSAGE_CHILD_TABLES
from kore_sessions.source.sessions.schema import CHILD_TABLES
from kore_sessions.source.sessions.spec import PRIMARY_KEY, SESSIONS_TABLE
from kore_sessions.warehouse.dataset import existing_relations
from kore_sessions.warehouse.erasures import (
    MESSAGE_BOT_COLUMN,
    MESSAGE_SESSION_COLUMN,
    MESSAGE_TIME_COLUMN,
    MESSAGE_USER_COLUMN,
    ROOT_COLUMN,
    ROW_ID,
    Erased,
    create_erasure_tables,
    erased_key,
    erased_message_keys,
    message_key,
    remember_messages,
    remember_sessions,
    remember_users,
)
from kore_sessions.warehouse.models import build_models, built_settings
from kore_sessions.warehouse.turn import warehouse_turn

# Ids per DELETE statement: well within any warehouse's limit on a statement's parameters.
IDS_PER_STATEMENT = 500


@dataclass(frozen=True)
class RootTable:
    """A table of rows an erasure deletes by id, with the child tables that name them."""

    name: str
    key: str
    children: tuple[str, ...]


SESSION_TABLES = RootTable(SESSIONS_TABLE, PRIMARY_KEY, tuple(child.table for child in CHILD_TABLES))
MESSAGE_TABLES = RootTable(MESSAGES_TABLE, ROW_ID, tuple(child.table for child in MESSAGE_CHILD_TABLES))


@dataclass
class Forgotten:
    """What an erasure removed."""

    users: int = 0
    sessions: int = 0
    child_rows: int = 0
    by_bot: Counter[str] = field(default_factory=Counter)
    messages_held: bool = False
    messages: int = 0
    message_rows: int = 0
    models_rebuilt: bool = False

    def lines(self) -> list[str]:
        """What was removed, as printed (no personal value in it)."""
        bots = ", ".join(f"{bot}: {n}" for bot, n in sorted(self.by_bot.items())) or "none"
        lines = [
            f"forgot {self.sessions} sessions of {self.users} user(s) ({bots}) and their {self.child_rows} "
            "tag and language rows; later loads leave their sessions out",
        ]
        if self.messages_held:
            lines.append(
                f"forgot {self.messages} messages of theirs and their {self.message_rows} component and tag "
                "rows; later loads leave their messages out"
            )
        if self.models_rebuilt:
            lines.append("models rebuilt without them")
        return lines


def forget_users(pipeline: dlt.Pipeline, user_ids: Sequence[str]) -> Forgotten:
    """Erase the sessions and messages of these users from the pipeline's warehouse, and keep
    them out.

    Args:
        pipeline: The pipeline whose dataset holds the sessions and messages.
        user_ids: The users' ids, as the API gives them (`userId`, a message's `createdBy`).

    Returns:
        What was removed.
    """
    people = sorted(set(user_ids))
    result = Forgotten(users=len(people))
    with warehouse_turn(pipeline):  # loads of every partition wait, then apply the erasures
        with pipeline.sql_client() as sql:
            found = _sessions_of(sql, people)
            ids = [session_id for session_id, _, _ in found]
            erased_messages = _messages_of(sql, ids, people)
            messages = [message_id for message_id, _, _ in erased_messages]
            result.messages_held = MESSAGES_TABLE in existing_relations(sql, sql.dataset_name)
            now = datetime.now(UTC)
            create_erasure_tables(sql)
            known = erased_message_keys(sql)
            keyed = [(message_key(mid), bot, created, now) for mid, bot, created in erased_messages]
            with sql.begin_transaction():
                remember_users(sql, people, now)
                remember_sessions(sql, [(erased_key(sid), bot, started, now) for sid, bot, started in found])
                remember_messages(sql, [row for row in keyed if row[0] not in known])
                result.child_rows = delete_rows(sql, ids, SESSION_TABLES)
                result.message_rows = delete_rows(sql, messages, MESSAGE_TABLES)
            result.sessions, result.by_bot = len(ids), Counter(bot for _, bot, _ in found)
            result.messages = len(messages)
            _delete_staged_copies(sql, ids, people, messages)
        settings = built_settings(pipeline)
        if settings is not None and (ids or messages):
            build_models(pipeline, settings)  # in the same turn: no reader sees marts with them
            result.models_rebuilt = True
    return result


def _sessions_of(sql: Any, user_ids: list[str]) -> list[tuple[str, str, datetime]]:
    """(session id, bot, start) of every session of these users (none without a `sessions`
    table: a warehouse that loads messages only)."""
    if SESSIONS_TABLE not in existing_relations(sql, sql.dataset_name):
        return []
    table = sql.make_qualified_table_name(SESSIONS_TABLE)
    found = []
    for chunk in _chunks(user_ids):
        marks = ", ".join(["%s"] * len(chunk))
        query = f"SELECT session_id, bot_id, start_time FROM {table} WHERE user_id IN ({marks})"
        found += [(str(sid), str(bot), started) for sid, bot, started in sql.execute_sql(query, *chunk) or []]
    return found


def _messages_of(sql: Any, session_ids: list[str], user_ids: list[str]) -> list[Erased]:
    """The messages of these sessions and of these users (`created_by`), in the dataset the
    client points at, as (id, bot, creation), by id; only a table and columns that exist are
    asked (a column that does not: None)."""
    if MESSAGES_TABLE not in existing_relations(sql, sql.dataset_name):
        return []
    rows = sql.execute_sql(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
        sql.dataset_name,
        MESSAGES_TABLE,
    )
    columns = {str(name) for (name,) in rows or []}
    table = sql.make_qualified_table_name(MESSAGES_TABLE)
    kept = (MESSAGE_BOT_COLUMN, MESSAGE_TIME_COLUMN)
    picked = ", ".join(name if name in columns else "NULL" for name in kept)
    found: dict[str, Erased] = {}
    for column, values in ((MESSAGE_SESSION_COLUMN, session_ids), (MESSAGE_USER_COLUMN, user_ids)):
        if column not in columns:
            continue
        for chunk in _chunks(values):
            marks = ", ".join(["%s"] * len(chunk))
            query = f"SELECT {ROW_ID}, {picked} FROM {table} WHERE {column} IN ({marks})"
            for message_id, bot, created in sql.execute_sql(query, *chunk) or []:
                found[str(message_id)] = (str(message_id), None if bot is None else str(bot), created)
    return [found[message_id] for message_id in sorted(found)]


def delete_rows(sql: Any, ids: list[str], tables: RootTable) -> int:
    """Delete root rows by id and their child rows; return how many child rows went. Only tables
    that exist are touched (a failed statement would abort a PostgreSQL transaction)."""
    present = set(existing_relations(sql, sql.dataset_name))
    children = [child for child in tables.children if child in present]
    deleted = 0
    for chunk in _chunks(ids):
        marks = ", ".join(["%s"] * len(chunk))
        for name in children:
            table = sql.make_qualified_table_name(name)
            where = f"WHERE {ROOT_COLUMN} IN ({marks})"
            deleted += int(sql.execute_sql(f"SELECT COUNT(*) FROM {table} {where}", *chunk)[0][0])
            sql.execute_sql(f"DELETE FROM {table} {where}", *chunk)
        if tables.name in present:
            table = sql.make_qualified_table_name(tables.name)
            sql.execute_sql(f"DELETE FROM {table} WHERE {tables.key} IN ({marks})", *chunk)
    return deleted


def _delete_staged_copies(sql: Any, ids: list[str], user_ids: list[str], messages: list[str]) -> None:
    """Delete the sessions and messages from every staging dataset of the dataset (one per
    partition): dlt merges through them and they keep the last load's rows until the next one.
    The person's rows are looked for there too, as a staging copy may hold some the dataset
    itself does not."""
    rows = sql.execute_sql(
        "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE %s",
        f"{sql.dataset_name}_staging%",
    )
    for (schema,) in rows or []:
        with sql.with_alternative_dataset_name(str(schema)):
            sessions = sorted(set(ids) | {session_id for session_id, _, _ in _sessions_of(sql, user_ids)})
            delete_rows(sql, sessions, SESSION_TABLES)
            staged = [message_id for message_id, _, _ in _messages_of(sql, sessions, user_ids)]
            delete_rows(sql, sorted(set(messages) | set(staged)), MESSAGE_TABLES)


def _chunks(values: list[str]) -> list[list[str]]:
    """The values in slices of IDS_PER_STATEMENT."""
    return [values[start : start + IDS_PER_STATEMENT] for start in range(0, len(values), IDS_PER_STATEMENT)]
