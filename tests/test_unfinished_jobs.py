"""A load job killed between its commit and dlt's mark leaves its rows nowhere twice: an
append's are taken out of the table, a merge's out of the staging copy, before dlt runs the job
again (`warehouse/unfinished_jobs.py`); the rows go out in bounded statements."""

from __future__ import annotations

import os
import random
import signal
import time
from datetime import timedelta
from pathlib import Path

import dlt
import pytest
from kore_sessions.runtime.pipeline import make_pipeline
from kore_sessions.sandbox import SandboxServer
from kore_sessions.warehouse import unfinished_jobs
from kore_sessions.warehouse.unfinished_jobs import delete_by_row_id, deletes_by_array, unmarked_jobs

from .cli_helpers import (
    PIPELINE_FOLDER,
    cli_env,
    expected,
    kill_when,
    kore,
    loaded,
    normalized,
    pending_packages,
)
from .conftest import BOTS, POSTGRES_DSN, REAL_NOW, RECENT_HISTORY_DAYS
from .postgres_rows import postgres_ids, postgres_rows_twice
from .test_first_backfill import KILLED_PACKAGES, SESSION_TABLES, TABLES, killed_after_a_commit, rows_twice

# Ten rows; seven go, in statements of three (3 + 3 + 1: the last one partial).
IDS = [f"s-{n}:{n % 3}" for n in range(10)]
GONE = IDS[1:8]
STATEMENT_IDS = 3


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
    monkeypatch.setattr(unfinished_jobs, "IDS_PER_DELETE", STATEMENT_IDS)
    monkeypatch.setattr(unfinished_jobs, "IDS_PER_POSTGRES_DELETE", STATEMENT_IDS)
    pipeline = make_pipeline(destination, dataset, tmp_path / "p", tmp_path / "w.duckdb")
    statements: list[str] = []
    with pipeline.sql_client() as client:
        client.create_dataset()
        table = client.make_qualified_table_name("sessions__user_tags")
        client.execute_sql(f"CREATE TABLE {table} (_dlt_id TEXT NOT NULL)")
        client.execute_sql(f"INSERT INTO {table} VALUES {', '.join(['(%s)'] * len(IDS))}", *IDS)
        execute = client.execute_sql
        monkeypatch.setattr(client, "execute_sql", lambda sql, *a: statements.append(sql) or execute(sql, *a))
        delete_by_row_id(client, table, GONE, on_postgres=destination == "postgres")
        left = sorted(row[0] for row in execute(f"SELECT _dlt_id FROM {table}"))
    assert left == sorted(set(IDS) - set(GONE))
    assert len(statements) == 3
    assert all(("ANY(" in sql) == (destination == "postgres") for sql in statements), statements
    assert os.path.exists(tmp_path / "w.duckdb") == (destination == "duckdb")


def test_postgres_under_any_name_deletes_by_array(tmp_path: Path) -> None:
    named = dlt.destinations.postgres(POSTGRES_DSN, destination_name="warehouse")
    assert deletes_by_array(make_pipeline("postgres", "kore_sessions", tmp_path / "p"))
    assert deletes_by_array(make_pipeline(named, "kore_sessions", tmp_path / "p"))
    duckdb_pipeline = make_pipeline("duckdb", "kore_sessions", tmp_path / "p", tmp_path / "w.duckdb")
    assert not deletes_by_array(duckdb_pipeline)


@pytest.mark.parametrize("destination", ["duckdb", "postgres"])
def test_a_merge_killed_after_its_staging_copy_committed_loads_on_the_next_run(
    destination: str, live_server: SandboxServer, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """dlt empties its staging tables when a package first begins loading, not when it loads
    again: without the killed job's rows taken out of the copy, PostgreSQL refused them (the
    root's `_dlt_id` is unique there too) on every later load."""
    args = ["load", "--quiet", "--no-models"]
    extra = {}
    if destination == "postgres":
        dataset = request.getfixturevalue("postgres_dataset")
        args += ["--destination", "postgres", "--dataset", dataset]
        extra = {"DESTINATION__POSTGRES__CREDENTIALS": POSTGRES_DSN}
    env = cli_env(live_server, tmp_path, **extra)
    first = kore(args, env, tmp_path)  # a first backfill: it appends
    assert first.returncode == 0, first.stderr
    killed = kore(args, env, tmp_path, patch=killed_after_a_commit("sessions"))  # merges
    assert killed.returncode == 9, killed.stderr
    left = {(job.table, job.disposition) for job in unmarked_jobs(tmp_path / PIPELINE_FOLDER)}
    assert ("sessions", "merge") in left, "a committed staging copy dlt will run again"
    for _ in range(2):  # the killed package loads, then a run after it merges as ever
        result = kore(args, env, tmp_path)
        assert result.returncode == 0, result.stderr
    if destination == "postgres":
        assert sorted(postgres_ids(dataset)) == sorted(expected(live_server))
        assert postgres_rows_twice(dataset, SESSION_TABLES) == {table: 0 for table in SESSION_TABLES}
    else:
        assert normalized(loaded(tmp_path)) == expected(live_server)
        assert rows_twice(tmp_path) == {table: 0 for table in SESSION_TABLES}


def test_on_postgres_appends_and_merges_killed_at_random_moments_lose_and_double_nothing(
    live_server: SandboxServer, tmp_path: Path, postgres_dataset: str
) -> None:
    """SIGKILL a first backfill of sessions and messages into PostgreSQL three times after a
    random delay (each run goes on from what the last left, appending), then a bounded backfill
    of the same range three times (it merges, from its start each time); then both to the end:
    every session and message once, in every table. (A kill rarely lands between a job's commit
    and dlt's mark: the tests above put it there.)"""
    live_server.set_latency(0.03)
    packages = KILLED_PACKAGES["a window each"]
    options = {f"SOURCES__KORE_SESSIONS__{name}": value for name, value in packages.items()}
    env = cli_env(
        live_server,
        tmp_path,
        **options,
        DESTINATION__POSTGRES__CREDENTIALS=POSTGRES_DSN,
        SOURCES__KORE_SESSIONS__RESOURCES="sessions,messages",
        SOURCES__KORE_SESSIONS__REQUESTS_PER_MINUTE="100000",
    )
    load = ["load", "--quiet", "--no-models", "--destination", "postgres", "--dataset", postgres_dataset]
    start = (REAL_NOW - timedelta(days=RECENT_HISTORY_DAYS)).isoformat()
    bounded = [*load, "--start", start, "--end", REAL_NOW.isoformat()]
    seed = time.time_ns()  # a new draw every run of the test; the seed is in any failure
    moments = random.Random(seed)
    for args in (load, bounded):
        for _ in range(3):
            deadline = time.monotonic() + moments.uniform(1.0, 2.5)
            killed = kill_when(
                args, env, tmp_path, live_server, lambda deadline=deadline: time.monotonic() >= deadline
            )
            assert killed.returncode == -signal.SIGKILL, seed
    live_server.set_latency(0)
    for args in (load, bounded):
        result = kore(args, env, tmp_path)
        assert result.returncode == 0, (seed, result.stderr)
    assert not pending_packages(tmp_path)
    assert sorted(postgres_ids(postgres_dataset)) == sorted(expected(live_server)), seed
    messages = postgres_ids(postgres_dataset, "messages", "message_id")
    assert sorted(messages) == sorted(v["_id"] for v in live_server.visible_messages(version=2)), seed
    assert postgres_rows_twice(postgres_dataset, TABLES) == dict.fromkeys(TABLES, 0), seed


def test_on_postgres_a_partitions_killed_merge_leaves_the_partition_beside_it_alone(
    live_server: SandboxServer, tmp_path: Path, postgres_dataset: str
) -> None:
    """Two partitions, a bot each, in one PostgreSQL dataset: the first's merge dies right after
    its staging copy committed, the second merges beside what it left (its own staging dataset),
    then the first loads again, taking its rows out of its own staging copy only."""
    env = cli_env(live_server, tmp_path, DESTINATION__POSTGRES__CREDENTIALS=POSTGRES_DSN)
    load = ["load", "--quiet", "--no-models", "--destination", "postgres", "--dataset", postgres_dataset]
    bots = dict(zip(("part_a", "part_b"), BOTS, strict=True))
    partitions = {name: [*load, "--pipeline-name", name, "--bot", bot] for name, bot in bots.items()}
    for args in partitions.values():  # first backfills: they append
        assert kore(args, env, tmp_path).returncode == 0
    killed = kore(partitions["part_a"], env, tmp_path, patch=killed_after_a_commit("sessions"))
    assert killed.returncode == 9, killed.stderr
    folder = tmp_path / "dlt_home" / "pipelines" / "part_a"
    left = {(job.table, job.disposition) for job in unmarked_jobs(folder)}
    assert ("sessions", "merge") in left, "a committed staging copy dlt will run again"
    for name in ("part_b", "part_a", "part_b"):
        result = kore(partitions[name], env, tmp_path)
        assert result.returncode == 0, (name, result.stderr)
    assert sorted(postgres_ids(postgres_dataset)) == sorted(expected(live_server))
    assert postgres_rows_twice(postgres_dataset, SESSION_TABLES) == dict.fromkeys(SESSION_TABLES, 0)
