"""The sessions users had erased (`kore-sessions forget`), kept out of the warehouse for good.

Each is kept in `kore_erased_sessions` by a hash of its session id (`sources.kore_sessions.run.
erased_key`), its bot and its start, never by who it belonged to. The filter is applied where
rows reach the warehouse: in the dataset's turn, right before every load step, the erasures are
read again and the sessions they name are taken out of the data files of the packages about to
load (pending packages of an interrupted run, a partition that extracted before the erasure, a
bounded backfill, a repair, a refresh alike). `forget` writes its erasures in the same turn, so
no load step can slip between. When the erasures cannot be read, the load fails (fail closed).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import dlt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from dlt.common.storages.load_package import ParsedLoadJobFileName

from sources.kore_sessions.run import erased_key
from sources.kore_sessions.schema import CHILD_TABLES
from sources.kore_sessions.settings import PRIMARY_KEY, SESSIONS_TABLE

from .dataset import existing_relations, warehouse_exists
from .failures import ActionableError
from .working_folder import pending_job_files

# The sessions a user had erased, by the hash of their id: kept out of every later load.
ERASED_TABLE = "kore_erased_sessions"
ERASED_COLUMNS = (
    ("session_key", "VARCHAR"),
    ("bot_id", "VARCHAR"),
    ("started_at", "TIMESTAMP WITH TIME ZONE"),
    ("erased_at", "TIMESTAMP WITH TIME ZONE"),
)
# The column naming a row's session: the session's own id, or its parent's in a child table.
SESSION_COLUMN = {SESSIONS_TABLE: PRIMARY_KEY, **{child.table: "_dlt_root_id" for child in CHILD_TABLES}}
# The file format the source's packages are written in; the only one the filter can rewrite.
FILTERED_FORMAT = "parquet"


class ErasuresUnreadableError(ActionableError):
    """The erasures cannot be read or applied: nothing is loaded rather than an erased session."""


def erased_keys(pipeline: dlt.Pipeline) -> frozenset[str]:
    """The hashed ids of every erased session of the dataset (none before the first erasure).

    Raises:
        ErasuresUnreadableError: the warehouse answered, but not with the erasures.
    """
    if not warehouse_exists(pipeline):
        return frozenset()
    try:
        with pipeline.sql_client() as sql:
            if not sql.has_dataset() or ERASED_TABLE not in existing_relations(sql, sql.dataset_name):
                return frozenset()
            rows = sql.execute_sql(f"SELECT session_key FROM {sql.make_qualified_table_name(ERASED_TABLE)}")
    except Exception as exc:
        raise ErasuresUnreadableError(
            f"the erased sessions ({ERASED_TABLE} in dataset {pipeline.dataset_name}) cannot be read, so "
            f"nothing was loaded: {' '.join(str(exc).split()) or type(exc).__name__}"
        ) from exc
    return frozenset(str(key) for (key,) in rows or [])


def keep_erasures_out(pipeline: dlt.Pipeline) -> int:
    """Take the erased sessions out of the packages about to load; return how many rows went.

    Call it in the dataset's turn, right before the load step, so that an erasure made at any
    moment before is applied (`forget` takes the same turn).

    Raises:
        ErasuresUnreadableError: the erasures cannot be read, or a package holds the sessions'
            tables in a format the filter cannot rewrite.
    """
    keys = erased_keys(pipeline)
    if not keys:
        return 0
    removed = 0
    for path in pending_job_files(Path(pipeline.working_dir)):
        table = ParsedLoadJobFileName.parse(path.name).table_name
        if table in SESSION_COLUMN:
            removed += _filter_file(path, SESSION_COLUMN[table], keys)
    return removed


def _filter_file(path: Path, column: str, keys: frozenset[str]) -> int:
    """Rewrite one data file without the rows of erased sessions; return how many went."""
    if ParsedLoadJobFileName.parse(path.name).file_format != FILTERED_FORMAT:
        raise ErasuresUnreadableError(
            f"a load package holds {path.name}, a format the erasure filter cannot rewrite: "
            "load into a destination that takes parquet files"
        )
    table = pq.read_table(path)
    erased = pa.array([erased_key(value) in keys for value in table.column(column).to_pylist()])
    removed = pc.sum(erased).as_py() or 0
    if removed:
        kept = table.filter(pc.invert(erased))
        partial = path.parent.parent / f".{path.name}.erasures"  # outside the jobs folder dlt lists
        pq.write_table(kept, partial)
        partial.replace(path)
    return removed


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

