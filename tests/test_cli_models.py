"""`kore-sessions load / models / report / export` in a subprocess, on DuckDB and PostgreSQL."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import duckdb
import psycopg2
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from kore_sessions.sandbox import SandboxServer
from kore_sessions.warehouse import export
from kore_sessions.warehouse.model_files import discover_models
from kore_sessions.warehouse.model_settings import ModelSettings
from kore_sessions.warehouse.models import build_models

from .conftest import POSTGRES_DSN, counted_in_sandbox
from .test_cli import DATABASE, cli_env, kore

# The marts, which `export` writes one file each of.
MARTS = [model.name for model in discover_models() if model.layer == "marts"]


def warehouse_rows(cwd: Path, sql: str) -> list[tuple]:
    """Rows of a query on the command's DuckDB file."""
    with duckdb.connect(str(cwd / DATABASE), read_only=True) as con:
        return con.sql(sql).fetchall()


def test_load_builds_the_models(live_server: SandboxServer, tmp_path: Path) -> None:
    """A successful load rebuilds the models; the daily mart counts what the sandbox holds."""
    env = cli_env(live_server, tmp_path)
    result = kore(["load", "--time-zone", "Asia/Kolkata"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "models: 18 built (5 views, 13 tables)" in result.stdout
    assert "days in Asia/Kolkata" in result.stdout
    total = warehouse_rows(tmp_path, "SELECT SUM(sessions) FROM kore_sessions.fct_containment_daily")
    assert total == [(counted_in_sandbox(live_server),)]
    zone = warehouse_rows(tmp_path, "SELECT reporting_time_zone FROM kore_sessions.kore_model_settings")
    assert zone == [("Asia/Kolkata",)]


def test_load_without_models(live_server: SandboxServer, tmp_path: Path) -> None:
    """`--no-models` loads and leaves the models alone; report then says what to run."""
    env = cli_env(live_server, tmp_path)
    result = kore(["load", "--no-models"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "models:" not in result.stdout
    tables = warehouse_rows(
        tmp_path, "SELECT table_name FROM information_schema.tables WHERE table_name LIKE 'fct_%'"
    )
    assert tables == []
    report = kore(["report"], env, tmp_path)
    assert report.returncode == 1
    assert report.stderr.strip().splitlines() == [
        "kore-sessions: error: the containment models are not built in dataset kore_sessions: "
        "run `kore-sessions models` first"
    ]


def test_models_report_and_export(live_server: SandboxServer, tmp_path: Path) -> None:
    """`models` rebuilds with its flags and prints the last days; `report` and `export` write files."""
    env = cli_env(live_server, tmp_path)
    assert kore(["load", "--no-models"], env, tmp_path).returncode == 0
    flags = ["--time-zone", "Europe/Berlin", "--include-active", "--days", "2"]
    models = kore(["models", *flags], env, tmp_path)
    assert models.returncode == 0, models.stderr
    assert "counted: closed and active, interactive sessions" in models.stdout
    table = [line for line in models.stdout.splitlines() if line.startswith("20")]
    assert 2 <= len(table) <= 4, "two days per bot at most"
    active = warehouse_rows(tmp_path, "SELECT SUM(active_sessions) FROM kore_sessions.fct_containment_daily")
    assert active[0][0] > 0

    report = kore(["report", "--output", "out/containment.html", "--days", "3"], env, tmp_path)
    assert report.returncode == 0, report.stderr
    written = Path(report.stdout.strip())
    assert written == (tmp_path / "out" / "containment.html").resolve()
    page = written.read_text(encoding="utf-8")
    assert "Europe/Berlin" in page and "closed and active" in page and "plotly" in page

    for file_format in ("csv", "parquet"):
        export = kore(["export", "--format", file_format, str(tmp_path / file_format)], env, tmp_path)
        assert export.returncode == 0, export.stderr
        assert len(export.stdout.strip().splitlines()) == len(MARTS)
        for mart in MARTS:
            expected = warehouse_rows(tmp_path, f"SELECT COUNT(*) FROM kore_sessions.{mart}")[0][0]
            path = tmp_path / file_format / f"{mart}.{file_format}"
            if file_format == "csv":
                with path.open(newline="") as handle:
                    rows = list(csv.reader(handle))
                columns = [
                    d[0]
                    for d in duckdb.connect(str(tmp_path / DATABASE), read_only=True)
                    .sql(f"SELECT * FROM kore_sessions.{mart} LIMIT 0")
                    .description
                ]
                assert rows[0] == columns and len(rows) - 1 == expected, mart
            else:
                assert pq.read_table(path).num_rows == expected, mart


def test_bad_time_zone_is_a_configuration_error(live_server: SandboxServer, tmp_path: Path) -> None:
    """A time zone that is not an IANA name: exit 2, one line, nothing loaded."""
    env = cli_env(live_server, tmp_path, MODELS__REPORTING_TIME_ZONE="Europe/Atlantis")
    result = kore(["load"], env, tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "kore-sessions: error: unknown reporting time zone 'Europe/Atlantis': use an IANA name such "
        "as 'UTC', 'Europe/Berlin' or 'America/New_York'"
    ]
    assert not (tmp_path / DATABASE).exists()


def test_postgres_and_duckdb_give_the_same_marts(
    live_server: SandboxServer, tmp_path: Path, postgres_dataset: str
) -> None:
    """The same load through the CLI into DuckDB and into PostgreSQL: every mart row is equal."""
    env = cli_env(live_server, tmp_path, DESTINATION__POSTGRES__CREDENTIALS=POSTGRES_DSN)
    zone = ["--time-zone", "America/New_York"]
    assert kore(["load", *zone], env, tmp_path).returncode == 0
    pg_args = ["--destination", "postgres", "--dataset", postgres_dataset, "--pipelines-dir", "pg_state"]
    result = kore(["load", *pg_args, *zone], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "postgres dialect" in result.stdout
    with psycopg2.connect(POSTGRES_DSN) as connection, connection.cursor() as cursor:
        for model in discover_models():
            if model.layer != "marts":
                continue
            order = ", ".join(model.grain)
            cursor.execute(f'SELECT * FROM "{postgres_dataset}".{model.name} ORDER BY {order}')
            on_postgres = [normalized(row) for row in cursor.fetchall()]
            query = f"SELECT * FROM kore_sessions.{model.name} ORDER BY {order}"
            on_duckdb = [normalized(row) for row in warehouse_rows(tmp_path, query)]
            assert len(on_postgres) == len(on_duckdb), f"{model.name}: row counts differ"
            for pg_row, duck_row in zip(on_postgres, on_duckdb, strict=True):
                differing = [(pg, duck) for pg, duck in zip(pg_row, duck_row, strict=True) if pg != duck]
                assert not differing, f"{model.name} differs between PostgreSQL and DuckDB: {differing}"
            assert on_duckdb, f"{model.name} is empty"


def normalized(row: tuple) -> tuple:
    """A row with floats rounded (the engines sum doubles in different orders) and times in UTC."""
    values = []
    for value in row:
        if isinstance(value, float):
            value = round(value, 9)
        elif hasattr(value, "utcoffset") and hasattr(value, "astimezone") and value.utcoffset() is not None:
            value = value.astimezone(tz=None).timestamp()
        values.append(value)
    return tuple(values)


@pytest.mark.parametrize("file_format", ["parquet", "csv"])
def test_export_streams_chunks_with_the_warehouse_types(
    server: SandboxServer,
    make_loader: Any,
    warehouse: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    file_format: str,
) -> None:
    """Many small chunks (a column NULL in some): one typed file per mart, equal to the mart."""
    loader = make_loader(server, warehouse)
    loader.run()
    build_models(loader.pipeline, ModelSettings())
    monkeypatch.setattr(export, "EXPORT_CHUNK_ROWS", 3)
    written = export.export_marts(loader.pipeline, tmp_path / "out", file_format)
    assert [item.mart for item in written] == MARTS
    assert not list((tmp_path / "out").glob("*.partial"))
    for item in written:
        mart = next(model for model in discover_models() if model.name == item.mart)
        order = ", ".join(mart.grain)
        expected = loader.query(f"SELECT * FROM {mart.name} ORDER BY {order}")
        assert item.rows == len(expected) > (0 if mart.name == "dim_bots" else 3), mart.name
        if file_format == "parquet":
            table = pq.read_table(item.path)
            assert table.schema.field("bot_id").type == pa.string()
            got = [tuple(row.values()) for row in table.to_pylist()]
            assert [normalized(row) for row in got] == [normalized(row) for row in expected], mart.name
        else:
            with item.path.open(newline="") as handle:
                assert len(list(csv.reader(handle))) == len(expected) + 1
    sessions = pq.read_table(tmp_path / "out" / "fct_sessions.parquet") if file_format == "parquet" else None
    if sessions is not None:
        assert sessions.schema.field("call_id").type == pa.string(), "a mostly-NULL column keeps its type"
        assert sessions.schema.field("day").type == pa.date32()


def test_a_destination_of_files_loads_and_says_it_builds_no_models(
    live_server: SandboxServer, tmp_path: Path
) -> None:
    """`filesystem` holds files, not a SQL warehouse: the load succeeds (exit 0) and says the
    models are not built, and why."""
    env = cli_env(live_server, tmp_path, DESTINATION__FILESYSTEM__BUCKET_URL=str(tmp_path / "bucket"))
    result = kore(["load", "--destination", "filesystem"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "models: not built, destination filesystem is not a SQL warehouse" in result.stdout
    assert list((tmp_path / "bucket").rglob("*.parquet")), "the sessions are in the bucket"


def test_a_warehouse_that_cannot_be_read_is_not_taken_for_one_without_sql(
    live_server: SandboxServer, tmp_path: Path
) -> None:
    """Whether the models can be built is asked of the warehouse; when another process holds the
    DuckDB file the question fails (so the load fails), instead of passing for a destination
    without a SQL client (which would let the load exit 0 without models)."""
    import subprocess
    import sys

    from kore_sessions.runtime.pipeline import make_pipeline
    from kore_sessions.warehouse.models import models_unbuildable

    env = cli_env(live_server, tmp_path)
    assert kore(["load", "--no-models"], env, tmp_path).returncode == 0
    code = (
        "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('open', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path / DATABASE)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        pipeline = make_pipeline("duckdb", pipelines_dir=tmp_path / "p", duckdb_path=tmp_path / DATABASE)
        with pytest.raises(Exception, match="lock"):
            models_unbuildable(pipeline)
    finally:
        holder.kill()
        holder.wait()
