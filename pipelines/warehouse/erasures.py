"""The people users had erased (`kore-sessions forget`), kept out of the warehouse for good.

An erasure is kept in three tables, by hashes only: `kore_erased_users` (a hash of each erased
user id: a suppression list, without which a later load of the person's older or newer sessions
and messages would bring them back), `kore_erased_sessions` (a hash of each erased session's
id, with its bot and start) and `kore_erased_messages` (a hash of each erased message's id,
with its bot and creation), which `audit` counts as held. The filter is applied where rows
reach the warehouse: in the dataset's turn, right before every load step, the erasures are read
again and every session of an erased user, or erased by id, is taken out of the data files of
the packages about to load, with its child rows; then every message of such a session (erased
before, or taken out in the same step), of an erased user (`created_by`) or erased by id, with
its components and tags: packages an interrupted run left behind, a partition that extracted
before the erasure, a bounded backfill, a repair, a refresh alike. Sessions and messages taken
out that way and not remembered yet are added to `kore_erased_sessions` and
`kore_erased_messages`, so `audit` counts each once. `forget` writes its erasures in
the same turn, so no load step can slip between. When the erasures cannot be read, the load
fails (fail closed).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dlt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from dlt.common.storages.load_package import ParsedLoadJobFileName
from kore_sessions.output.failures import ActionableError
from kore_sessions.source.messages.history_rules import MESSAGES_TABLE
from kore_sessions.source.messages.message_columns import MESSAGE_CHILD_TABLES
from kore_sessions.source.sessions.schema import CHILD_TABLES
from kore_sessions.source.sessions.spec import PRIMARY_KEY, SESSIONS_TABLE
from kore_sessions.warehouse.dataset import existing_relations, warehouse_exists

# The sessions taken out of the warehouse, by the hash of their id: counted as held by `audit`.
ERASED_TABLE = "kore_erased_sessions"
ERASED_COLUMNS = (
    ("session_key", "VARCHAR"),
    ("bot_id", "VARCHAR"),
    ("started_at", "TIMESTAMP WITH TIME ZONE"),
    ("erased_at", "TIMESTAMP WITH TIME ZONE"),
)
# The messages taken out of the warehouse, by the hash of their id: counted as held by `audit`.
ERASED_MESSAGES_TABLE = "kore_erased_messages"
ERASED_MESSAGES_COLUMNS = (
    ("message_key", "VARCHAR"),
    ("bot_id", "VARCHAR"),
    ("created_at", "TIMESTAMP WITH TIME ZONE"),
    ("erased_at", "TIMESTAMP WITH TIME ZONE"),
)
# The people erased, by the hash of their user id: none of their sessions is loaded again.
ERASED_USERS_TABLE = "kore_erased_users"
ERASED_USERS_COLUMNS = (("user_key", "VARCHAR"), ("erased_at", "TIMESTAMP WITH TIME ZONE"))
# The column naming a child row's root row (its session, its message): the root's `ROW_ID`.
ROOT_COLUMN = "_dlt_root_id"
CHILD_TABLE_NAMES = frozenset(child.table for child in CHILD_TABLES)
# A root row's id (a session's id, a message's id), which its child rows name as `_dlt_root_id`.
ROW_ID = "_dlt_id"
# The columns of `messages` naming a message's session and its person (the end user's id, which
# the bot's replies carry too).
MESSAGE_SESSION_COLUMN = "session_id"
MESSAGE_USER_COLUMN = "created_by"
# The columns of `messages` an erased message is remembered by (beside the hash of its id).
MESSAGE_BOT_COLUMN, MESSAGE_TIME_COLUMN = "bot_id", "created_on"
MESSAGE_CHILD_TABLE_NAMES = frozenset(child.table for child in MESSAGE_CHILD_TABLES)
# An erased record as remembered: (hash of its id, its bot, its time: start or creation).
Erased = tuple[str, str | None, datetime | None]
# The file format the source's packages are written in; the only one the filter can rewrite.
FILTERED_FORMAT = "parquet"


class ErasuresUnreadableError(ActionableError):
    """The erasures cannot be read or applied: nothing is loaded rather than an erased session."""


def erased_key(session_id: str) -> str:
    """How an erased session is remembered: a hash of its id, so no id is kept in clear."""
    return hashlib.sha256(f"kore-sessions erased {session_id}".encode()).hexdigest()


def message_key(message_id: str) -> str:
    """How an erased message is remembered: a hash of its id, so no id is kept in clear."""
    return hashlib.sha256(f"kore-sessions erased message {message_id}".encode()).hexdigest()


def user_key(user_id: str) -> str:
    """How an erased person is remembered: a hash of their user id, never the id itself."""
    return hashlib.sha256(f"kore-sessions erased user {user_id}".encode()).hexdigest()


@dataclass(frozen=True)
class Erasures:
    """What was erased: hashed session ids, hashed user ids and hashed message ids."""

    sessions: frozenset[str] = frozenset()
    users: frozenset[str] = frozenset()
    messages: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        """Whether anything was ever erased."""
        return bool(self.sessions or self.users or self.messages)


def read_erasures(pipeline: dlt.Pipeline) -> Erasures:
    """Every erasure of the dataset (none before the first one).

    Raises:
        ErasuresUnreadableError: the warehouse answered, but not with the erasures.
    """
    if not warehouse_exists(pipeline):
        return Erasures()
    try:
        with pipeline.sql_client() as sql:
            if not sql.has_dataset():
                return Erasures()
            present = existing_relations(sql, sql.dataset_name)
            return Erasures(
                _keys(sql, ERASED_TABLE, "session_key", present),
                _keys(sql, ERASED_USERS_TABLE, "user_key", present),
                _keys(sql, ERASED_MESSAGES_TABLE, "message_key", present),
            )
    except Exception as exc:
        raise ErasuresUnreadableError(
            f"the erased sessions and messages ({ERASED_TABLE}, {ERASED_USERS_TABLE}, "
            f"{ERASED_MESSAGES_TABLE} in dataset {pipeline.dataset_name}) cannot be read, so nothing "
            f"was loaded: {' '.join(str(exc).split()) or type(exc).__name__}"
        ) from exc


def erased_message_keys(sql: Any) -> frozenset[str]:
    """The hashes of the messages erased so far (none before the first erasure)."""
    present = existing_relations(sql, sql.dataset_name)
    return _keys(sql, ERASED_MESSAGES_TABLE, "message_key", present)


def _keys(sql: Any, table: str, column: str, present: dict[str, str]) -> frozenset[str]:
    """The keys one erasure table holds (none when it does not exist yet)."""
    if table not in present:
        return frozenset()
    rows = sql.execute_sql(f"SELECT {column} FROM {sql.make_qualified_table_name(table)}")
    return frozenset(str(key) for (key,) in rows or [])


@dataclass(frozen=True)
class KeptOut:
    """What one load step's filter took out of its packages: sessions and messages."""

    sessions: int = 0
    messages: int = 0


def keep_erasures_out(pipeline: dlt.Pipeline, pending: Iterable[Path]) -> KeptOut:
    """Take erased people's sessions and messages out of the packages about to load.

    Call it in the dataset's turn, right before the load step, so that an erasure made at any
    moment before is applied (`forget` takes the same turn). Whatever order the files come in,
    `sessions` files are filtered first, so that the messages of a session taken out in this
    step go too; child rows follow their root rows.

    Args:
        pipeline: The pipeline whose packages load next.
        pending: The data files its next load step loads (`pending_packages.pending_job_files`).

    Returns:
        How many sessions and messages were taken out.

    Raises:
        ErasuresUnreadableError: the erasures cannot be read, or a package holds the sessions' or
            the messages' tables in a format the filter cannot rewrite.
    """
    erasures = read_erasures(pipeline)
    if not erasures:
        return KeptOut()
    files = [(path, ParsedLoadJobFileName.parse(path.name)) for path in pending]
    sessions: set[str] = set()
    messages: set[str] = set()
    newly_erased: list[Erased] = []
    for path, file_format in _files_of(files, {SESSIONS_TABLE}):
        newly_erased += _filter_sessions(path, file_format, erasures, sessions)
    for path, file_format in _files_of(files, CHILD_TABLE_NAMES):
        _filter_children(path, file_format, lambda root: _session_gone(root, erasures, sessions))
    newly_erased_messages: list[Erased] = []
    for path, file_format in _files_of(files, {MESSAGES_TABLE}):
        newly_erased_messages += _filter_messages(path, file_format, erasures, sessions, messages)
    for path, file_format in _files_of(files, MESSAGE_CHILD_TABLE_NAMES):
        _filter_children(path, file_format, messages.__contains__)
    _remember(pipeline, _once(newly_erased), _once(newly_erased_messages))
    return KeptOut(len(sessions), len(messages))


def _once(erased: list[Erased]) -> list[Erased]:
    """Each erased record once (a package may hold a record in several files)."""
    return list({key: (key, bot, moment) for key, bot, moment in erased}.values())


def _files_of(
    files: list[tuple[Path, ParsedLoadJobFileName]], tables: Iterable[str]
) -> list[tuple[Path, str]]:
    """(path, file format) of the data files of these tables, in the order given."""
    wanted = set(tables)
    return [(path, parsed.file_format) for path, parsed in files if parsed.table_name in wanted]


def _filter_sessions(path: Path, file_format: str, erasures: Erasures, dropped: set[str]) -> list[Erased]:
    """Take the erased sessions out of a `sessions` file (adding their ids to `dropped`); return
    the sessions erased by their user that were not erased by id yet: (key, bot, start)."""
    table = _read(path, file_format)
    ids = table.column(PRIMARY_KEY).to_pylist()
    users = _values(table, "user_id")
    by_id = [erased_key(session_id) in erasures.sessions for session_id in ids]
    by_user = [user is not None and user_key(str(user)) in erasures.users for user in users]
    erased = [a or b for a, b in zip(by_id, by_user, strict=True)]
    dropped.update(session_id for session_id, gone in zip(ids, erased, strict=True) if gone)
    _rewrite(path, table, erased)
    found = [index for index, (a, b) in enumerate(zip(by_id, by_user, strict=True)) if b and not a]
    return [
        (erased_key(ids[i]), str(table.column("bot_id")[i].as_py()), table.column("start_time")[i].as_py())
        for i in found
    ]


def _filter_messages(
    path: Path, file_format: str, erasures: Erasures, sessions: set[str], dropped: set[str]
) -> list[Erased]:
    """Take erased people's messages out of a `messages` file (adding their ids to `dropped`):
    those of a session erased before or taken out in this step (`sessions`), those of an
    erased user (`created_by`), whatever their session, and those erased by id; return the
    messages taken out that were not remembered yet: (key, bot, creation)."""
    table = _read(path, file_format)
    session_ids, users = _values(table, MESSAGE_SESSION_COLUMN), _values(table, MESSAGE_USER_COLUMN)
    gone_sessions = {sid for sid in set(session_ids) - {None} if _session_gone(str(sid), erasures, sessions)}
    gone_users = {user for user in set(users) - {None} if user_key(str(user)) in erasures.users}
    keys = [message_key(str(message_id)) for message_id in table.column(ROW_ID).to_pylist()]
    erased = [
        sid in gone_sessions or user in gone_users or key in erasures.messages
        for sid, user, key in zip(session_ids, users, keys, strict=True)
    ]
    ids = table.column(ROW_ID).to_pylist()
    dropped.update(str(message_id) for message_id, gone in zip(ids, erased, strict=True) if gone)
    _rewrite(path, table, erased)
    bots, created = _values(table, MESSAGE_BOT_COLUMN), _values(table, MESSAGE_TIME_COLUMN)
    return [
        (key, None if bot is None else str(bot), moment)
        for key, bot, moment, gone in zip(keys, bots, created, erased, strict=True)
        if gone and key not in erasures.messages
    ]


def _session_gone(session_id: str, erasures: Erasures, sessions: set[str]) -> bool:
    """Whether a session is erased: by id before, or taken out in this step (`sessions`)."""
    return session_id in sessions or erased_key(session_id) in erasures.sessions


def _filter_children(path: Path, file_format: str, gone: Callable[[str], bool]) -> None:
    """Take the child rows of root rows taken out (sessions, messages) out of a child table's file."""
    table = _read(path, file_format)
    roots = table.column(ROOT_COLUMN).to_pylist()
    erased_roots = {root for root in set(roots) if gone(str(root))}
    _rewrite(path, table, [root in erased_roots for root in roots])


def _values(table: pa.Table, column: str) -> list[Any]:
    """A column's values (all None when the file has no such column)."""
    return table.column(column).to_pylist() if column in table.column_names else [None] * table.num_rows


def _read(path: Path, file_format: str) -> pa.Table:
    """A package's data file, which the filter can only rewrite as Parquet."""
    if file_format != FILTERED_FORMAT:
        raise ErasuresUnreadableError(
            f"a load package holds {path.name}, written as {file_format}: the erasure filter rewrites "
            "parquet files only (on PostgreSQL install adbc-driver-postgresql, a dependency of "
            "kore-sessions; elsewhere load into a destination that takes parquet files)"
        )
    return pq.read_table(path)


def _rewrite(path: Path, table: pa.Table, erased: list[bool]) -> None:
    """Write a data file again without the erased rows (nothing is written when none is)."""
    if not any(erased):
        return
    kept = table.filter(pc.invert(pa.array(erased, pa.bool_())))
    partial = path.parent.parent / f".{path.name}.erasures"  # outside the jobs folder dlt lists
    pq.write_table(kept, partial)
    partial.replace(path)


def _remember(pipeline: dlt.Pipeline, sessions: list[Erased], messages: list[Erased]) -> None:
    """Add sessions and messages erased at load time to `kore_erased_sessions` and
    `kore_erased_messages` (so `audit` counts them held)."""
    if not sessions and not messages:
        return
    now = datetime.now(UTC)
    with pipeline.sql_client() as sql:
        create_erasure_tables(sql)
        with sql.begin_transaction():
            remember_sessions(sql, [(*session, now) for session in sessions])
            remember_messages(sql, [(*message, now) for message in messages])


def create_erasure_tables(sql: Any) -> None:
    """`kore_erased_sessions`, `kore_erased_messages` and `kore_erased_users`, made on the first
    erasure (the messages' table also in a dataset whose erasures began before messages did)."""
    tables = (
        (ERASED_TABLE, ERASED_COLUMNS),
        (ERASED_MESSAGES_TABLE, ERASED_MESSAGES_COLUMNS),
        (ERASED_USERS_TABLE, ERASED_USERS_COLUMNS),
    )
    for table, columns in tables:
        listed = ", ".join(f"{name} {kind}" for name, kind in columns)
        sql.execute_sql(f"CREATE TABLE IF NOT EXISTS {sql.make_qualified_table_name(table)} ({listed})")


def remember_sessions(sql: Any, rows: list[tuple[str, str | None, datetime | None, datetime]]) -> None:
    """Add erased sessions (key, bot, start, erased at) to `kore_erased_sessions`."""
    _insert(sql, ERASED_TABLE, ERASED_COLUMNS, rows)


def remember_messages(sql: Any, rows: list[tuple[str, str | None, datetime | None, datetime]]) -> None:
    """Add erased messages (key, bot, creation, erased at) to `kore_erased_messages`."""
    _insert(sql, ERASED_MESSAGES_TABLE, ERASED_MESSAGES_COLUMNS, rows)


def remember_users(sql: Any, user_ids: list[str], now: datetime) -> None:
    """Add erased people, by the hash of their user id, to `kore_erased_users`."""
    _insert(sql, ERASED_USERS_TABLE, ERASED_USERS_COLUMNS, [(user_key(user), now) for user in user_ids])


def _insert(sql: Any, table: str, columns: tuple[tuple[str, str], ...], rows: list[tuple[Any, ...]]) -> None:
    """Insert rows into one of the erasure tables."""
    qualified = sql.make_qualified_table_name(table)
    names = ", ".join(name for name, _ in columns)
    marks = ", ".join(["%s"] * len(columns))
    for row in rows:
        sql.execute_sql(f"INSERT INTO {qualified} ({names}) VALUES ({marks})", *row)
