"""What a pipeline's dataset holds, asked the same way on every SQL warehouse.

Errors are never taken for answers: a table that is missing is looked up in the dataset's
catalogue, not inferred from a failed query, so a warehouse that cannot be read (another
process holding a DuckDB file, a lost connection, a missing privilege) fails the command that
asked instead of passing for an empty dataset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dlt
from dlt.destinations.job_client_impl import SqlJobClientBase


def has_sql_warehouse(pipeline: dlt.Pipeline) -> bool:
    """Whether the destination is a SQL warehouse the models can be built in (DuckDB,
    PostgreSQL, BigQuery, ...), not files (`filesystem`, whose SQL views are read-only)."""
    return isinstance(pipeline.destination_client(), SqlJobClientBase)


def warehouse_exists(pipeline: dlt.Pipeline) -> bool:
    """Whether opening the warehouse creates nothing: a DuckDB file is only created by the first
    load (a DuckDB connection makes the file); other destinations create nothing on reading."""
    if pipeline.destination.destination_name != "duckdb":
        return True
    return Path(pipeline.destination_client().config.credentials.database).exists()


def dataset_exists(pipeline: dlt.Pipeline) -> bool:
    """Whether anything was loaded into the pipeline's dataset (without making a DuckDB file).

    Raises:
        Exception: the warehouse's own error when it cannot be read.
    """
    if not warehouse_exists(pipeline):
        return False
    with pipeline.sql_client() as client:
        return bool(client.has_dataset())


def existing_relations(client: Any, schema: str) -> dict[str, str]:
    """Tables and views of the schema, by name, with their type (BASE TABLE or VIEW)."""
    rows = client.execute_sql(
        "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = %s",
        schema,
    )
    return {str(name): str(kind) for name, kind in rows or []}


def count_rows(pipeline: dlt.Pipeline, table: str, bots: tuple[str, ...] = ()) -> int | None:
    """Rows of a table (of these bots only, if any are named): 0 when the dataset or the table
    does not exist yet, None when the destination is not a SQL warehouse.

    Raises:
        Exception: the warehouse's own error when it cannot be read.
    """
    if not has_sql_warehouse(pipeline):
        return None
    if not warehouse_exists(pipeline):
        return 0
    marks = ", ".join(["%s"] * len(bots))
    where = f" WHERE bot_id IN ({marks})" if bots else ""
    with pipeline.sql_client() as client:
        if not client.has_dataset() or table not in existing_relations(client, client.dataset_name):
            return 0
        rows = client.execute_sql(
            f"SELECT COUNT(*) FROM {client.make_qualified_table_name(table)}{where}", *bots
        )
    return int(rows[0][0])
