"""Rows an interrupted append may have left behind, taken out before its job loads again.

dlt marks a load job done (a file in the package's `.pending_transitions`) only after the
destination has committed it. A process killed between the two leaves the job among the
package's started jobs, and the next load step runs it again: a merge replaces its rows, but an
append (a bot's first backfill, `kore_sessions.source.first_backfill`) would add them a second
time (on PostgreSQL a root table's `_dlt_id` is unique: the load would fail on every run). So before
a load step, each started job of an append table without that mark has its rows deleted from
the destination table by their `_dlt_id` (which the source makes from the record's id, so the
same in every run): nothing, when the job had not committed; then it loads them once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dlt
import pyarrow.parquet as pq
from dlt.common.storages.load_package import PackageStorage, ParsedLoadJobFileName
from dlt.destinations.sql_client import SqlClientBase
from kore_sessions.warehouse.dataset import existing_relations, has_sql_warehouse, warehouse_exists
from kore_sessions.warehouse.pending_packages import (
    disposition,
    job_files,
    normalized_packages,
    package_tables,
)

# The column every row of the source's tables is told apart by (dlt's row key).
ROW_ID = "_dlt_id"
# Ids in one DELETE statement (parameters of one statement stay well within every warehouse's
# limits, e.g. PostgreSQL's 65,535).
IDS_PER_DELETE = 1000
# Ids in one DELETE statement on PostgreSQL, as one array parameter: a child table has no index
# on `_dlt_id` (`NESTED_KEY_HINTS`), so each statement reads the whole table. Taking 100,000 ids
# out of 2,000,000 child rows took 0.6 s in one statement against ~23 s in chunks of 1,000.
IDS_PER_POSTGRES_DELETE = 100_000


def undo_unmarked_appends(pipeline: dlt.Pipeline, working_dir: Path) -> int:
    """Delete what started, unmarked append jobs of the pipeline's packages may have committed.

    Call it in the dataset's turn, right before the load step.

    Args:
        pipeline: The pipeline whose packages load next.
        working_dir: Its working folder.

    Returns:
        How many rows were deleted (0 unless a load was killed right after a commit).
    """
    jobs = list(unmarked_append_jobs(working_dir))
    if not jobs or not has_sql_warehouse(pipeline) or not warehouse_exists(pipeline):
        return 0
    deleted, on_postgres = 0, pipeline.destination.destination_name == "postgres"
    with pipeline.sql_client() as client:
        if not client.has_dataset():
            return 0
        tables = existing_relations(client, client.dataset_name)
        for table, path in jobs:
            if table not in tables:
                continue  # never made: nothing of it was committed
            ids = pq.read_table(path, columns=[ROW_ID]).column(ROW_ID).to_pylist()
            delete_rows(client, client.make_qualified_table_name(table), ids, on_postgres)
            deleted += len(ids)
    return deleted


def delete_rows(client: SqlClientBase[Any], table: str, ids: list[str], on_postgres: bool) -> None:
    """Delete a table's rows by their `_dlt_id`, in statements of a bounded number of ids (on
    PostgreSQL one array of them each, IDS_PER_POSTGRES_DELETE; elsewhere IDS_PER_DELETE
    parameters)."""
    if on_postgres:
        for start in range(0, len(ids), IDS_PER_POSTGRES_DELETE):
            chunk = ids[start : start + IDS_PER_POSTGRES_DELETE]
            client.execute_sql(f"DELETE FROM {table} WHERE {ROW_ID} = ANY(%s)", chunk)
        return
    for start in range(0, len(ids), IDS_PER_DELETE):
        chunk = ids[start : start + IDS_PER_DELETE]
        marks = ", ".join(["%s"] * len(chunk))
        client.execute_sql(f"DELETE FROM {table} WHERE {ROW_ID} IN ({marks})", *chunk)


def unmarked_append_jobs(working_dir: Path) -> Iterator[tuple[str, Path]]:
    """`(table, data file)` of each started Parquet job of an append table whose commit dlt has
    not marked, in the normalized packages of a working folder."""
    for package in normalized_packages(working_dir):
        started = job_files(package, PackageStorage.STARTED_JOBS_FOLDER)
        if not started:
            continue
        marked = {path.name for path in (package / PackageStorage.PENDING_TRANSITIONS_FOLDER).glob("*")}
        tables = package_tables(package)
        for path in started:
            job = ParsedLoadJobFileName.parse(path.name)
            if path.name in marked or job.file_format != "parquet" or job.table_name not in tables:
                continue
            if disposition(tables, job.table_name) == "append":
                yield job.table_name, path
