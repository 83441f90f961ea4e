"""What a pipeline's dataset holds, asked the same way on every SQL warehouse.

Errors are never taken for answers: a table that is missing is looked up in the dataset's
catalogue, not inferred from a failed query, so a warehouse that cannot be read (another
process holding a DuckDB file, a lost connection, a missing privilege) fails the command that
asked instead of passing for an empty dataset.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dlt
from dlt.destinations.job_client_impl import SqlJobClientBase
from kore_sessions.source.settings import SOURCE_NAME
from kore_sessions.warehouse.turn import destination_credentials, warehouse_turn

# dlt's table of the pipelines' states in a dataset (one row per state version and pipeline).
STATE_TABLE = "_dlt_pipeline_state"


def has_sql_warehouse(pipeline: dlt.Pipeline) -> bool:
    """Whether the destination is a SQL warehouse the models can be built in (DuckDB,
    PostgreSQL, BigQuery, ...), not files (`filesystem`, whose SQL views are read-only)."""
    return isinstance(pipeline.destination_client(), SqlJobClientBase)


def warehouse_exists(pipeline: dlt.Pipeline) -> bool:
    """Whether opening the warehouse creates nothing: a DuckDB file is only created by the first
    load (a DuckDB connection makes the file); other destinations create nothing on reading."""
    if pipeline.destination.destination_name != "duckdb":
        return True
    return Path(destination_credentials(pipeline).database).exists()


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


def count_rows(
    pipeline: dlt.Pipeline, table: str, bots: tuple[str, ...] = (), or_no_bot: bool = False
) -> int | None:
    """Rows of a table (of these bots only, if any are named, and with `or_no_bot` rows whose
    bot is not known): 0 when the dataset or the table does not exist yet, None when the
    destination is not a SQL warehouse.

    Raises:
        Exception: the warehouse's own error when it cannot be read.
    """
    if not has_sql_warehouse(pipeline):
        return None
    if not warehouse_exists(pipeline):
        return 0
    marks = ", ".join(["%s"] * len(bots))
    where = f" WHERE bot_id IN ({marks}){' OR bot_id IS NULL' if or_no_bot else ''}" if bots else ""
    with pipeline.sql_client() as client:
        if not client.has_dataset() or table not in existing_relations(client, client.dataset_name):
            return 0
        rows = client.execute_sql(
            f"SELECT COUNT(*) FROM {client.make_qualified_table_name(table)}{where}", *bots
        )
    return int(rows[0][0])


def rows_of_bots(pipeline: dlt.Pipeline, root: str, children: list[str], bots: tuple[str, ...]) -> int | None:
    """Rows a root table and its child tables may hold of these bots: root rows of them or of
    no bot, and child rows under no other bot's root row (orphans too: a killed load step can
    commit a child table's job before its root's); every row when no bot is named. 0 when
    nothing exists yet, None when the destination is not a SQL warehouse.

    Raises:
        Exception: the warehouse's own error when it cannot be read.
    """
    found = count_rows(pipeline, root, bots, or_no_bot=True)
    if found != 0:  # rows, or None: not a SQL warehouse
        return found
    with pipeline.sql_client() as client:
        if not client.has_dataset():
            return 0
        present = existing_relations(client, client.dataset_name)
        name = client.make_qualified_table_name
        marks = ", ".join(["%s"] * len(bots))
        for child in (child for child in children if child in present):
            others = (
                f" WHERE NOT EXISTS (SELECT 1 FROM {name(root)} r WHERE r._dlt_id = c._dlt_root_id "
                f"AND r.bot_id IS NOT NULL AND r.bot_id NOT IN ({marks}))"
                if bots and root in present
                else ""
            )
            args = bots if others else ()
            rows = int(client.execute_sql(f"SELECT COUNT(*) FROM {name(child)} c{others}", *args)[0][0])
            if rows:
                return rows
    return 0


def no_state(pipeline: dlt.Pipeline) -> str:
    """Why a pipeline without state has nothing to audit, and which pipelines have state."""
    folder = Path(pipeline.pipelines_dir)
    others = [other for other in pipelines_with_state(pipeline, folder) if other != pipeline.pipeline_name]
    where = f"in {pipeline.pipelines_dir} or dataset {pipeline.dataset_name}"
    if not others:
        return f"nothing to audit: no pipeline has loaded sessions {where}"
    return (
        f"nothing to audit: pipeline {pipeline.pipeline_name} has no state {where}; pipelines with state: "
        f"{', '.join(others)} (audit one with --pipeline-name NAME, or all with --all-pipelines)"
    )


def pipelines_with_state(pipeline: dlt.Pipeline, pipelines_dir: Path) -> list[str]:
    """Pipelines that have loaded sessions into the pipeline's dataset: those with such state in
    the pipelines folder, and those whose state is kept in the dataset (`_dlt_pipeline_state`;
    the audit passes over any of them that holds no bot of this source), sorted."""
    names = {
        state.parent.name
        for state in pipelines_dir.glob("*/state.json")
        if _has_bots(state, pipeline.dataset_name)
    }
    with warehouse_turn(pipeline), pipeline.sql_client() as sql:
        if STATE_TABLE in existing_relations(sql, sql.dataset_name):
            table = sql.make_qualified_table_name(STATE_TABLE)
            rows = sql.execute_sql(f"SELECT DISTINCT pipeline_name FROM {table}")
            names.update(str(name) for (name,) in rows or [])
    return sorted(names)


def _has_bots(state_file: Path, dataset: str) -> bool:
    """Whether a pipeline's local state holds a bot of this source (of any resource) loaded
    into `dataset`."""
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if state.get("dataset_name") != dataset:
        return False
    resources = state.get("sources", {}).get(SOURCE_NAME, {}).get("resources", {})
    return any(isinstance(kept, dict) and kept.get("bots") for kept in resources.values())
