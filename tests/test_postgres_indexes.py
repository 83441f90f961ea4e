"""On PostgreSQL each resource's root table keeps dlt's unique index on `_dlt_id` (its record's
id: PostgreSQL refuses a record twice, and dlt's merge deletes the rows it replaces by it); the
child tables get none (`NESTED_KEY_HINTS`: each row loaded would update it, and nothing looks a
child row up by it)."""

from __future__ import annotations

from pathlib import Path

import psycopg2
from kore_sessions.sandbox import SandboxServer

from .cli_helpers import cli_env, expected, kore
from .conftest import POSTGRES_DSN
from .postgres_rows import postgres_ids

# The unique indexes of a dataset's tables after a load of both resources: dlt's on its
# state table, and one on each resource's root table; the same on the root tables of the
# staging copy a merge made.
UNIQUE_INDEXES = {"_dlt_pipeline_state": ["_dlt_id"], "messages": ["_dlt_id"], "sessions": ["_dlt_id"]}
STAGED_UNIQUE_INDEXES = {"messages": ["_dlt_id"], "sessions": ["_dlt_id"]}
# Child tables both resources load: present, so their lack of an index says something.
CHILD_TABLES = {"sessions__user_tags", "messages__components"}


def unique_indexes(schema: str) -> dict[str, list[str]]:
    """The columns of each unique index of a PostgreSQL schema's tables, by table."""
    with psycopg2.connect(POSTGRES_DSN) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT t.relname, a.attname FROM pg_index i"
            " JOIN pg_class t ON t.oid = i.indrelid"
            " JOIN pg_namespace n ON n.oid = t.relnamespace"
            " JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ANY(i.indkey)"
            " WHERE n.nspname = %s AND i.indisunique ORDER BY 1, 2",
            (schema,),
        )
        found: dict[str, list[str]] = {}
        for table, column in cursor.fetchall():
            found.setdefault(table, []).append(column)
    connection.close()
    return found


def tables_of(schema: str) -> set[str]:
    """The tables of a PostgreSQL schema."""
    with psycopg2.connect(POSTGRES_DSN) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,))
        tables = {row[0] for row in cursor.fetchall()}
    connection.close()
    return tables


def test_only_root_tables_have_a_unique_index_after_an_append_and_a_merge(
    live_server: SandboxServer, tmp_path: Path, postgres_dataset: str
) -> None:
    env = cli_env(live_server, tmp_path, DESTINATION__POSTGRES__CREDENTIALS=POSTGRES_DSN)
    args = ["load", "--quiet", "--no-models", "--destination", "postgres", "--dataset", postgres_dataset]
    for _ in range(2):  # a first backfill appends, the next run merges
        result = kore([*args, "--resources", "sessions,messages"], env, tmp_path)
        assert result.returncode == 0, result.stderr
    staging = f"{postgres_dataset}_staging"
    assert tables_of(postgres_dataset) >= CHILD_TABLES
    assert tables_of(staging) >= CHILD_TABLES, "the second run merged, through dlt's staging copy"
    assert unique_indexes(postgres_dataset) == UNIQUE_INDEXES
    assert unique_indexes(staging) == STAGED_UNIQUE_INDEXES
    assert sorted(postgres_ids(postgres_dataset)) == sorted(expected(live_server))
