"""A destination that fails mid-load: nothing advances in the warehouse, the next run completes."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import dlt
import psycopg2
import pytest
from dlt.pipeline.exceptions import PipelineStepFailed
from kore_sessions.runtime.pipeline import make_pipeline
from kore_sessions.sandbox import SandboxServer

from .conftest import POSTGRES_DSN, POSTGRES_REQUIRED, Loader, assert_matches_sandbox

SESSION_VALUES = "session_id, end_time, session_status, containment_type, no_of_messages_exchanged"


def warehouse_snapshot(loader: Loader) -> tuple[Any, ...]:
    """The sessions, and the state the warehouse would restore: the newest of a complete load.

    dlt restores state from the warehouse only from loads recorded in `_dlt_loads` with
    status 0, so a state row written by a load that failed half way is never used.
    """
    sessions = loader.query(f"SELECT {SESSION_VALUES} FROM sessions ORDER BY session_id")
    state = loader.query(
        "SELECT MAX(s.version) FROM _dlt_pipeline_state AS s "
        "JOIN _dlt_loads AS l ON l.load_id = s._dlt_load_id WHERE l.status = 0"
    )
    return sessions, state


def refuse_inserts(dataset: str, table: str) -> None:
    """Make every insert into a table fail as a denied privilege (a terminal error)."""
    with psycopg2.connect(POSTGRES_DSN) as connection, connection.cursor() as cursor:
        cursor.execute(
            f'CREATE FUNCTION "{dataset}".refuse() RETURNS trigger AS $$ BEGIN '
            "RAISE EXCEPTION 'destination refuses writes' USING ERRCODE = '42501'; END $$ LANGUAGE plpgsql"
        )
        cursor.execute(
            f'CREATE TRIGGER refuse BEFORE INSERT ON "{dataset}".{table} '
            f'FOR EACH ROW EXECUTE FUNCTION "{dataset}".refuse()'
        )


def allow_inserts(dataset: str, table: str) -> None:
    """Undo `refuse_inserts`."""
    with psycopg2.connect(POSTGRES_DSN) as connection, connection.cursor() as cursor:
        cursor.execute(f'DROP TRIGGER refuse ON "{dataset}".{table}')


@pytest.mark.parametrize("table", ["sessions", "sessions__session_tags"])
def test_destination_failing_mid_load_advances_nothing(
    server: SandboxServer, make_loader: Any, postgres_dsn: str, table: str
) -> None:
    """Writes refused in the middle of a merge: the warehouse keeps its rows and its state
    version; the next run loads the package left behind, then goes on, and equals the sandbox."""
    loader = make_loader(server, "postgres")
    loader.run()
    before = warehouse_snapshot(loader)
    server.advance(timedelta(hours=3))
    refuse_inserts(loader.pipeline.dataset_name, table)
    with pytest.raises(PipelineStepFailed, match="load"):
        loader.run()
    assert warehouse_snapshot(loader) == before
    assert loader.pipeline.has_pending_data, "the package waits for the next run"
    allow_inserts(loader.pipeline.dataset_name, table)
    summary = loader.run()
    assert summary.pending_packages_finished == 1
    assert_matches_sandbox(loader, server)


def test_failed_load_then_lost_pipeline_folder_loses_nothing(
    server: SandboxServer, make_loader: Any, postgres_dsn: str, tmp_path: Path
) -> None:
    """The load fails and the machine's pipeline folder is gone too (a fresh container): the
    state comes back from the warehouse as of the last complete load, and the run re-reads."""
    loader = make_loader(server, "postgres")
    loader.run()
    server.advance(timedelta(hours=3))
    dataset = loader.pipeline.dataset_name
    refuse_inserts(dataset, "sessions")
    with pytest.raises(PipelineStepFailed, match="load"):
        loader.run()
    allow_inserts(dataset, "sessions")
    fresh = Loader(server, tmp_path / "fresh", "postgres")
    fresh.pipeline = make_pipeline(
        dlt.destinations.postgres(credentials=POSTGRES_DSN), dataset, tmp_path / "fresh_pipelines"
    )
    assert not fresh.pipeline.has_pending_data
    fresh.run()
    assert_matches_sandbox(fresh, server)


def postgres_cluster() -> tuple[str, str]:
    """(version, name) of the local Debian cluster serving KORE_TEST_POSTGRES_DSN on port 5432.

    Raises:
        LookupError: why this process cannot stop and start that server.
    """
    if os.geteuid() != 0:
        raise LookupError("stopping PostgreSQL needs root")
    if not shutil.which("pg_lsclusters") or not shutil.which("pg_ctlcluster"):
        raise LookupError("stopping PostgreSQL needs Debian's pg_lsclusters and pg_ctlcluster")
    if "127.0.0.1:5432" not in POSTGRES_DSN:
        raise LookupError("KORE_TEST_POSTGRES_DSN does not point at the local cluster on 127.0.0.1:5432")
    listed = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True, check=False).stdout
    for line in listed.splitlines():
        version, name, port, *_ = line.split()
        if port == "5432":
            return version, name
    raise LookupError(f"no local PostgreSQL cluster on port 5432 in `pg_lsclusters`: {listed.strip()!r}")


@pytest.fixture
def stoppable_postgres(postgres_dsn: str) -> Iterator[tuple[str, str]]:
    """The local PostgreSQL cluster, started again whatever the test does. Without one this
    process may stop, the test is skipped, or fails under KORE_TEST_REQUIRE_POSTGRES=1."""
    try:
        cluster = postgres_cluster()
    except LookupError as missing:
        if POSTGRES_REQUIRED:
            pytest.fail(f"KORE_TEST_REQUIRE_POSTGRES=1 but {missing}")
        pytest.skip(str(missing))
    yield cluster
    subprocess.run(["pg_ctlcluster", *cluster, "start"], capture_output=True, check=False)
    wait_for_postgres()


def wait_for_postgres(seconds: float = 30) -> None:
    """Block until PostgreSQL accepts connections."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            psycopg2.connect(POSTGRES_DSN, connect_timeout=2).close()
            return
        except psycopg2.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def test_postgres_stopped_before_the_load_step(
    server: SandboxServer, make_loader: Any, stoppable_postgres: tuple[str, str]
) -> None:
    """The server stopped between normalize and load: the load fails, the package waits; with
    the server back, the next run finishes it and the data equals the sandbox."""
    loader = make_loader(server, "postgres")
    loader.run()
    before = warehouse_snapshot(loader)
    server.advance(timedelta(hours=3))
    pipeline = loader.pipeline
    pipeline.extract(loader.source())
    pipeline.normalize()
    subprocess.run(["pg_ctlcluster", *stoppable_postgres, "stop", "-m", "fast"], check=True)
    try:
        with pytest.raises(PipelineStepFailed):
            pipeline.load()
    finally:
        subprocess.run(["pg_ctlcluster", *stoppable_postgres, "start"], check=True)
        wait_for_postgres()
    assert warehouse_snapshot(loader) == before
    summary = loader.run()
    assert summary.pending_packages_finished == 1
    assert_matches_sandbox(loader, server)
