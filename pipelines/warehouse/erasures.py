"""The people users had erased (`kore-sessions forget`), kept out of the warehouse for good.

An erasure is kept in two tables, by hashes only: `kore_erased_users` (a hash of each erased
user id: a suppression list, without which a later load of the person's older or newer sessions
would bring them back) and `kore_erased_sessions` (a hash of each erased session's id, with its
bot and start, which `audit` counts as held). The filter is applied where rows reach the
warehouse: in the dataset's turn, right before every load step, the erasures are read again and
every session of an erased user, or erased by id, is taken out of the data files of the packages
about to load, with its child rows: packages an interrupted run left behind, a partition that
extracted before the erasure, a bounded backfill, a repair, a refresh alike. Sessions taken out
that way are added to `kore_erased_sessions`. `forget` writes its erasures in the same turn, so no
load step can slip between. When the erasures cannot be read, the load fails (fail closed).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
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
# The people erased, by the hash of their user id: none of their sessions is loaded again.
ERASED_USERS_TABLE = "kore_erased_users"
ERASED_USERS_COLUMNS = (("user_key", "VARCHAR"), ("erased_at", "TIMESTAMP WITH TIME ZONE"))
# The column naming a row's session in a child table (its parent's id).
CHILD_SESSION_COLUMN = "_dlt_root_id"
CHILD_TABLE_NAMES = frozenset(child.table for child in CHILD_TABLES)
# The file format the source's packages are written in; the only one the filter can rewrite.
FILTERED_FORMAT = "parquet"


class ErasuresUnreadableError(ActionableError):
    """The erasures cannot be read or applied: nothing is loaded rather than an erased session."""


def erased_key(session_id: str) -> str:
    """How an erased session is remembered: a hash of its id, so no id is kept in clear."""
    return hashlib.sha256(f"kore-sessions erased {session_id}".encode()).hexdigest()


def user_key(user_id: str) -> str:
    """How an erased person is remembered: a hash of their user id, never the id itself."""
    return hashlib.sha256(f"kore-sessions erased user {user_id}".encode()).hexdigest()


@dataclass(frozen=True)
class Erasures:
    """What was erased: hashed session ids and hashed user ids."""

    sessions: frozenset[str] = frozenset()
    users: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        """Whether anything was ever erased."""
        return bool(self.sessions or self.users)


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
            )
    except Exception as exc:
        raise ErasuresUnreadableError(
            f"the erased sessions ({ERASED_TABLE}, {ERASED_USERS_TABLE} in dataset {pipeline.dataset_name}) "
            f"cannot be read, so nothing was loaded: {' '.join(str(exc).split()) or type(exc).__name__}"
        ) from exc


def _keys(sql: Any, table: str, column: str, present: dict[str, str]) -> frozenset[str]:
    """The keys one erasure table holds (none when it does not exist yet)."""
    if table not in present:
        return frozenset()
    rows = sql.execute_sql(f"SELECT {column} FROM {sql.make_qualified_table_name(table)}")
    return frozenset(str(key) for (key,) in rows or [])


def keep_erasures_out(pipeline: dlt.Pipeline, pending: Iterable[Path]) -> int:
    """Take erased sessions out of the packages about to load; return how many sessions went.

    Call it in the dataset's turn, right before the load step, so that an erasure made at any
    moment before is applied (`forget` takes the same turn).

    Args:
        pipeline: The pipeline whose packages load next.
        pending: The data files its next load step loads (`working_folder.pending_job_files`).

    Raises:
        ErasuresUnreadableError: the erasures cannot be read, or a package holds the sessions'
            tables in a format the filter cannot rewrite.
    """
    erasures = read_erasures(pipeline)
    if not erasures:
        return 0
    files = [(path, ParsedLoadJobFileName.parse(path.name)) for path in pending]
    dropped: set[str] = set()
    newly_erased: list[tuple[str, str, datetime]] = []
    for path, parsed in files:
        if parsed.table_name == SESSIONS_TABLE:
            newly_erased += _filter_sessions(path, parsed.file_format, erasures, dropped)
    for path, parsed in files:
        if parsed.table_name in CHILD_TABLE_NAMES:
            _filter_children(path, parsed.file_format, erasures, dropped)
    _remember_sessions(pipeline, list({key: (key, bot, start) for key, bot, start in newly_erased}.values()))
    return len(dropped)


def _filter_sessions(
    path: Path, file_format: str, erasures: Erasures, dropped: set[str]
) -> list[tuple[str, str, datetime]]:
    """Take the erased sessions out of a `sessions` file (adding their ids to `dropped`); return
    the sessions erased by their user that were not erased by id yet: (key, bot, start)."""
    table = _read(path, file_format)
    ids = table.column(PRIMARY_KEY).to_pylist()
    users = table.column("user_id").to_pylist() if "user_id" in table.column_names else [None] * len(ids)
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


def _filter_children(path: Path, file_format: str, erasures: Erasures, dropped: set[str]) -> None:
    """Take the child rows of erased sessions out of a child table's file."""
    table = _read(path, file_format)
    parents = table.column(CHILD_SESSION_COLUMN).to_pylist()
    _rewrite(path, table, [p in dropped or erased_key(p) in erasures.sessions for p in parents])


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


def _remember_sessions(pipeline: dlt.Pipeline, sessions: list[tuple[str, str, datetime]]) -> None:
    """Add sessions erased at load time to `kore_erased_sessions` (so `audit` counts them held)."""
    if not sessions:
        return
    now = datetime.now(UTC)
    with pipeline.sql_client() as sql:
        create_erasure_tables(sql)
        with sql.begin_transaction():
            remember_sessions(sql, [(*session, now) for session in sessions])


def create_erasure_tables(sql: Any) -> None:
    """`kore_erased_sessions` and `kore_erased_users`, made on the first erasure."""
    for table, columns in ((ERASED_TABLE, ERASED_COLUMNS), (ERASED_USERS_TABLE, ERASED_USERS_COLUMNS)):
        listed = ", ".join(f"{name} {kind}" for name, kind in columns)
        sql.execute_sql(f"CREATE TABLE IF NOT EXISTS {sql.make_qualified_table_name(table)} ({listed})")


def remember_sessions(sql: Any, rows: list[tuple[str, str, datetime, datetime]]) -> None:
    """Add erased sessions (key, bot, start, erased at) to `kore_erased_sessions`."""
    _insert(sql, ERASED_TABLE, ERASED_COLUMNS, rows)


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


def erased_count(sql: Any, bot: str | None, start: datetime, end: datetime) -> int:
    """Erased sessions of a bot (every bot: None) that started in [start, end]."""
    if ERASED_TABLE not in existing_relations(sql, sql.dataset_name):
        return 0
    table = sql.make_qualified_table_name(ERASED_TABLE)
    where, args = "started_at >= %s AND started_at <= %s", [start, end]
    if bot is not None:
        where, args = f"{where} AND bot_id = %s", [*args, bot]
    rows = sql.execute_sql(f"SELECT COUNT(*) FROM {table} WHERE {where}", *args)
    return int(rows[0][0])
