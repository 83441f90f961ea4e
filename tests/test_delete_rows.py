"""`delete_rows` takes a table's rows out by `_dlt_id` in bounded statements, on DuckDB (a list
of parameters each) and on PostgreSQL (one array each), and leaves every other row."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from kore_sessions.runtime.pipeline import make_pipeline
from kore_sessions.warehouse import unfinished_appends
from kore_sessions.warehouse.unfinished_appends import delete_rows

from .conftest import POSTGRES_DSN

IDS = [f"s-{n}:{n % 3}" for n in range(10)]
GONE = IDS[1:8]


@pytest.mark.parametrize("destination", ["duckdb", "postgres"])
def test_the_ids_go_in_statements_of_three_and_the_rest_stays(
    destination: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    if destination == "postgres":
        request.getfixturevalue("postgres_dsn")  # skips (fails under .ci/run) without a server
        monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", POSTGRES_DSN)
        dataset = request.getfixturevalue("postgres_dataset")
    else:
        dataset = "kore_sessions"
    monkeypatch.setattr(unfinished_appends, "IDS_PER_DELETE", 3)
    monkeypatch.setattr(unfinished_appends, "IDS_PER_POSTGRES_DELETE", 3)
    pipeline = make_pipeline(destination, dataset, tmp_path / "p", tmp_path / "w.duckdb")
    statements: list[str] = []
    with pipeline.sql_client() as client:
        client.create_dataset()
        table = client.make_qualified_table_name("sessions__user_tags")
        client.execute_sql(f"CREATE TABLE {table} (_dlt_id TEXT NOT NULL)")
        client.execute_sql(f"INSERT INTO {table} VALUES {', '.join(['(%s)'] * len(IDS))}", *IDS)
        execute = client.execute_sql
        monkeypatch.setattr(client, "execute_sql", lambda sql, *a: statements.append(sql) or execute(sql, *a))
        delete_rows(client, table, GONE, on_postgres=destination == "postgres")
        left = sorted(row[0] for row in execute(f"SELECT _dlt_id FROM {table}"))
    assert left == sorted(set(IDS) - set(GONE))
    assert len(statements) == 3  # 7 ids, 3 a statement
    assert all(("ANY(" in sql) == (destination == "postgres") for sql in statements), statements
    assert os.path.exists(tmp_path / "w.duckdb") == (destination == "duckdb")
