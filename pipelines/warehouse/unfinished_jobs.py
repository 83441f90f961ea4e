"""Rows an interrupted load job may have left behind, taken out before the job loads again.

dlt marks a load job done (a file in the package's `.pending_transitions`) only after the
destination has committed it. A process killed between the two leaves the job among the
package's started jobs, and the next load step runs it again:

- an append (a bot's first backfill, `kore_sessions.source.first_backfill`) would add its rows
  to the table a second time;
- a merge job copies its rows into dlt's staging table, which dlt empties only when a package
  first begins loading, not when it loads again: the copy would hold them twice. On PostgreSQL,
  where a root table's `_dlt_id` is unique (staging tables too), every later load failed on it.

So before a load step, each started job without that mark has its rows deleted, by their
`_dlt_id` (which the source makes from the record's id, so the same in every run), from the
table it writes: the dataset's for an append, the staging dataset's for a merge. Nothing is
deleted when the job had not committed; then it loads its rows once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any, NamedTuple

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
# The write dispositions whose jobs are undone: an append writes the table, a merge its staging
# copy (the source writes no other).
UNDONE_DISPOSITIONS = ("append", "merge")
# Ids in one DELETE statement, as parameters (a statement stays well within every warehouse's
# limits on parameters and statement length).
IDS_PER_DELETE = 1000
# Ids in one DELETE statement on PostgreSQL, as one array parameter. A child table has no index
# on `_dlt_id` (`NESTED_KEY_HINTS`), so each statement reads the whole table, and fewer
# statements read it fewer times (figures in the README's "What changed"); psycopg2 writes the
# array into the statement's text, about 4 MB at this many ids.
IDS_PER_POSTGRES_DELETE = 100_000
# dlt's type of a PostgreSQL destination, whatever the user named it.
POSTGRES_TYPE = "dlt.destinations.postgres"


class UnmarkedJob(NamedTuple):
    """A started load job whose commit dlt has not marked.

    Attributes:
        table: The table it loads.
        path: Its data file.
        disposition: The table's write disposition (`append` or `merge`).
    """

    table: str
    path: Path
    disposition: str


def undo_unmarked_jobs(pipeline: dlt.Pipeline, working_dir: Path) -> int:
    """Delete what started, unmarked append and merge jobs of the pipeline's packages may have
    committed (an append's rows from the dataset, a merge's from the staging dataset).

    Call it in the dataset's turn, right before the load step.

    Args:
        pipeline: The pipeline whose packages load next.
        working_dir: Its working folder.

    Returns:
        How many rows were deleted (0 unless a load was killed right after a commit).
    """
    jobs = list(unmarked_jobs(working_dir))
    if not jobs or not has_sql_warehouse(pipeline) or not warehouse_exists(pipeline):
        return 0
    on_postgres = deletes_by_array(pipeline)
    deleted = 0
    with pipeline.sql_client() as client:
        for staged in (False, True):
            in_dataset = [job for job in jobs if (job.disposition == "merge") == staged]
            if in_dataset:
                deleted += undo_in_dataset(client, in_dataset, staged, on_postgres)
    return deleted


def deletes_by_array(pipeline: dlt.Pipeline) -> bool:
    """Whether the pipeline's warehouse is PostgreSQL (under any destination name): its deletes
    take their ids as one array parameter."""
    return pipeline.destination.destination_type == POSTGRES_TYPE


def undo_in_dataset(
    client: SqlClientBase[Any], jobs: list[UnmarkedJob], staged: bool, on_postgres: bool
) -> int:
    """Delete the rows of these jobs from the tables they load, in the dataset or its staging
    dataset; how many ids were taken out (the tables not made yet: none)."""
    deleted = 0
    with client.with_staging_dataset() if staged else nullcontext(client):
        if not client.has_dataset():
            return 0
        tables = existing_relations(client, client.dataset_name)
        for job in jobs:
            if job.table not in tables:
                continue  # never made: nothing of it was committed
            ids = pq.read_table(job.path, columns=[ROW_ID]).column(ROW_ID).to_pylist()
            delete_by_row_id(client, client.make_qualified_table_name(job.table), ids, on_postgres)
            deleted += len(ids)
    return deleted


def delete_by_row_id(
    client: SqlClientBase[Any], table: str, ids: list[str], on_postgres: bool
) -> None:
    """Delete a table's rows by their `_dlt_id`, in statements of a bounded number of ids.

    Args:
        client: An open SQL client of the warehouse.
        table: The table, qualified (`client.make_qualified_table_name`).
        ids: The rows' `_dlt_id`.
        on_postgres: One array parameter a statement (IDS_PER_POSTGRES_DELETE ids), not a
            parameter an id (IDS_PER_DELETE).
    """
    if on_postgres:
        for start in range(0, len(ids), IDS_PER_POSTGRES_DELETE):
            chunk = ids[start : start + IDS_PER_POSTGRES_DELETE]
            client.execute_sql(f"DELETE FROM {table} WHERE {ROW_ID} = ANY(%s)", chunk)
        return
    for start in range(0, len(ids), IDS_PER_DELETE):
        chunk = ids[start : start + IDS_PER_DELETE]
        marks = ", ".join(["%s"] * len(chunk))
        client.execute_sql(f"DELETE FROM {table} WHERE {ROW_ID} IN ({marks})", *chunk)


def unmarked_jobs(working_dir: Path) -> Iterator[UnmarkedJob]:
    """Each started Parquet job of an append or merge table whose commit dlt has not marked, in
    the normalized packages of a working folder."""
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
            written = disposition(tables, job.table_name)
            if written in UNDONE_DISPOSITIONS:
                yield UnmarkedJob(job.table_name, path, written)

