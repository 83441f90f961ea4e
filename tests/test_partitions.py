"""Partitions: several pipelines, each for its own bots, loading into one dataset at once."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import duckdb
import psycopg2
import pytest
from kore_sessions.sandbox import GeneratedSession, SandboxServer

from .cli_helpers import cli_env, expected, kore, normalized
from .conftest import (
    BOTS,
    POSTGRES_DSN,
    counted_in_sandbox,
    sandbox_at_real_now,
    sessions_up_to_now,
)

# Three bots, one partition each.
PARTITION_BOTS = [*BOTS, "st-aaaaaaaa-0000-4000-8000-000000000003"]
PARTITIONS = {f"part_{index}": bot for index, bot in enumerate(PARTITION_BOTS)}


@pytest.fixture(scope="module")
def three_bots() -> list[GeneratedSession]:
    """Five days of three bots up to the real now, and two hours to come."""
    return sessions_up_to_now(days=5, per_day=150, seed=61, bots=PARTITION_BOTS, ahead=timedelta(hours=2))


@pytest.fixture
def partition_server(three_bots: list[GeneratedSession]) -> Iterator[SandboxServer]:
    """The sandbox at the real now, slow enough (0.3 s an answer) that three backfills overlap."""
    with sandbox_at_real_now(three_bots, latency=0.3) as server:
        yield server


def load_partitions_at_once(
    env: dict[str, str], cwd: Path, flags: list[str]
) -> list[subprocess.CompletedProcess[str]]:
    """One `load --pipeline-name` per partition, all started together; their results."""
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kore_sessions.cli.parser",
                "load",
                "--no-models",
                "--pipeline-name",
                name,
                "--bot",
                bot,
                *flags,
            ],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, bot in PARTITIONS.items()
    ]
    results = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=300)
        results.append(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr))
    return results


def assert_ran_at_once(server: SandboxServer) -> None:
    """Every partition was still asking the API when every other had begun."""
    spans = [[r.at for r in server.requests if r.bot_id == bot] for bot in PARTITION_BOTS]
    assert all(spans), "every partition asked the API"
    assert max(min(span) for span in spans) < min(max(span) for span in spans), "the partitions overlapped"


def postgres_rows(dataset: str) -> dict[str, tuple]:
    """The sessions of a PostgreSQL dataset, as `cli_helpers.loaded` gives them."""
    with psycopg2.connect(POSTGRES_DSN) as connection, connection.cursor() as cursor:
        cursor.execute(
            f'SELECT session_id, session_status, end_time, no_of_messages_exchanged FROM "{dataset}".sessions'
        )
        rows = cursor.fetchall()
    by_id = {row[0]: row for row in rows}
    assert len(by_id) == len(rows), "duplicate sessions"
    return by_id


def postgres_message_ids(dataset: str) -> list[str]:
    """The message ids of a PostgreSQL dataset, sorted, duplicates kept."""
    with psycopg2.connect(POSTGRES_DSN) as connection, connection.cursor() as cursor:
        cursor.execute(f'SELECT message_id FROM "{dataset}".messages ORDER BY message_id')
        return [row[0] for row in cursor.fetchall()]


def test_three_partitions_load_one_postgres_dataset_at_once(
    partition_server: SandboxServer, postgres_dataset: str, tmp_path: Path
) -> None:
    env = cli_env(
        partition_server,
        tmp_path,
        DESTINATION__POSTGRES__CREDENTIALS=POSTGRES_DSN,
        SOURCES__KORE_SESSIONS__BOT_IDS=",".join(PARTITION_BOTS),
        SOURCES__KORE_SESSIONS__RESOURCES="sessions,messages",
        SOURCES__KORE_SESSIONS__REQUESTS_PER_MINUTE="100000",  # messages ask a request a channel
    )
    flags = ["--destination", "postgres", "--dataset", postgres_dataset]
    for step in ("backfill", "incremental"):
        if step == "incremental":
            partition_server.advance(timedelta(minutes=50))  # within the hour a server may lead
            partition_server.clear_requests()
        results = load_partitions_at_once(env, tmp_path, flags)
        assert [r.returncode for r in results] == [0, 0, 0], [r.stderr for r in results]
        if step == "backfill":  # an incremental run is a page a bot: too short to overlap surely
            assert_ran_at_once(partition_server)
        assert normalized(postgres_rows(postgres_dataset)) == expected(partition_server)
        assert postgres_message_ids(postgres_dataset) == sorted(
            view["_id"] for view in partition_server.visible_messages(version=2)
        ), "every message once, each partition its bot's"
    with psycopg2.connect(POSTGRES_DSN) as connection, connection.cursor() as cursor:
        cursor.execute(f'SELECT DISTINCT pipeline_name FROM "{postgres_dataset}"._dlt_pipeline_state')
        assert {row[0] for row in cursor.fetchall()} == set(PARTITIONS), "each partition keeps its own state"
        cursor.execute(
            "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE %s",
            (f"{postgres_dataset}_staging%",),
        )
        staging = {row[0] for row in cursor.fetchall()}
    assert staging == {f"{postgres_dataset}_staging_{name}" for name in PARTITIONS}, (
        "each its own staging dataset"
    )
    built = kore(["models", *flags], env, tmp_path)
    assert built.returncode == 0, built.stderr
    with psycopg2.connect(POSTGRES_DSN) as connection, connection.cursor() as cursor:
        cursor.execute(f'SELECT SUM(sessions) FROM "{postgres_dataset}".fct_containment_daily')
        assert cursor.fetchone()[0] == counted_in_sandbox(partition_server)


def test_partitions_into_one_duckdb_file_take_turns(partition_server: SandboxServer, tmp_path: Path) -> None:
    """DuckDB allows one process in its file: the partitions' loads take turns on it, and a
    process outside the project holding the file is named in one line."""
    env = cli_env(partition_server, tmp_path, SOURCES__KORE_SESSIONS__BOT_IDS=",".join(PARTITION_BOTS))
    results = load_partitions_at_once(env, tmp_path, [])
    assert [r.returncode for r in results] == [0, 0, 0], [r.stderr for r in results]
    assert_ran_at_once(partition_server)
    with duckdb.connect(str(tmp_path / "kore_warehouse.duckdb")) as holder:
        count = holder.sql("SELECT COUNT(*) FROM kore_sessions.sessions").fetchall()[0][0]
        assert count == len(partition_server.visible_sessions())
        held = kore(
            ["load", "--no-models", "--pipeline-name", "part_0", "--bot", PARTITION_BOTS[0]], env, tmp_path
        )
    assert held.returncode == 1
    lines = held.stderr.strip().splitlines()
    assert len(lines) == 1 and "is open in another process (pid" in lines[0], held.stderr


@pytest.mark.parametrize("name", ["a__b", "kore sessions", "x" * 65, "_lead", "Part-1"])
def test_a_pipeline_name_dlt_cannot_restore_is_refused(
    name: str, partition_server: SandboxServer, tmp_path: Path
) -> None:
    result = kore(["load", "--pipeline-name", name], cli_env(partition_server, tmp_path), tmp_path)
    assert result.returncode == 2
    assert (
        result.stderr.startswith("kore-sessions: error: pipeline name")
        and len(result.stderr.splitlines()) == 1
    )
    assert not (tmp_path / "dlt_home" / "pipelines").exists() or not any(
        (tmp_path / "dlt_home" / "pipelines").iterdir()
    )
