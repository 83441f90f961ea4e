"""One run of a pipeline at a time, on every destination; a killed run's lock is taken over."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from kore_sessions.runtime.lock import RunLock
from kore_sessions.sandbox import SandboxServer

from .cli_helpers import cli_env, expected, kore, loaded, normalized
from .conftest import POSTGRES_DSN, drop_postgres_dataset, make_apps

# A bot only the second command asks for: any request for it would show that it ran.
OTHER_BOT = "st-bbbbbbbb-0000-4000-8000-000000000009"
# Seconds the slow server waits before each answer: a load is under way for a while.
SLOW_LATENCY = 0.3
# Seconds each answer waits while a second command starts beside a running load. At SLOW_LATENCY
# the load (47 requests) ended 2.6 s after its fourth answer, and a second command started on a
# busy CI machine took longer than that to reach the lock: it found none and ran. At 2 s the
# load's remaining answers take several rounds of 2 s each.
HOLDING_LATENCY = 2.0


@pytest.fixture
def slow_server(recent_history: list) -> Iterator[SandboxServer]:
    """The sandbox at the real now, answering each request after 0.3 s."""
    from .conftest import REAL_NOW

    with SandboxServer(
        recent_history, apps=make_apps(), now=REAL_NOW, page_cap=25, bot_ids=[OTHER_BOT]
    ) as server:
        server.set_latency(SLOW_LATENCY)
        yield server


@pytest.fixture(params=["duckdb", "postgres"])
def destination(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """Environment and flags of a warehouse: a DuckDB file, or its own PostgreSQL schema."""
    if request.param == "duckdb":
        yield {"flags": ""}
        return
    request.getfixturevalue("postgres_dsn")
    dataset = f"kore_lock_{uuid.uuid4().hex[:8]}"
    yield {"flags": f"--destination postgres --dataset {dataset}", "dataset": dataset}
    drop_postgres_dataset(dataset)


def warehouse_rows(destination: dict[str, str], cwd: Path) -> dict[str, tuple]:
    """The sessions of the warehouse, in the form of `cli_helpers.loaded`."""
    if "dataset" not in destination:
        return loaded(cwd)
    with psycopg2.connect(POSTGRES_DSN) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT session_id, session_status, end_time, no_of_messages_exchanged "
            f'FROM "{destination["dataset"]}".sessions'
        )
        rows = cursor.fetchall()
    by_id = {row[0]: row for row in rows}
    assert len(by_id) == len(rows), "duplicate sessions in the warehouse"
    return by_id


def start_load(env: dict[str, str], cwd: Path, flags: str) -> subprocess.Popen[str]:
    """`kore-sessions load` in the background."""
    return subprocess.Popen(
        [sys.executable, "-m", "kore_sessions.cli", "load", "--no-models", *flags.split()],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_requests(server: SandboxServer, count: int, process: subprocess.Popen[str]) -> None:
    """Block until the server has seen `count` requests (the run is under way)."""
    deadline = time.monotonic() + 60
    while len(server.requests) < count:
        assert process.poll() is None, "the run ended before it was under way"
        assert time.monotonic() < deadline, "the run never got under way"
        time.sleep(0.05)


def test_a_second_load_while_one_runs_exits_at_once_and_changes_nothing(
    slow_server: SandboxServer, destination: dict[str, str], tmp_path: Path
) -> None:
    env = cli_env(slow_server, tmp_path, DESTINATION__POSTGRES__CREDENTIALS=POSTGRES_DSN)
    first = start_load(env, tmp_path, destination["flags"])
    wait_for_requests(slow_server, 4, first)
    slow_server.set_latency(HOLDING_LATENCY)  # the first run outlives the second's start-up
    second = kore(["load", "--bot", OTHER_BOT, *destination["flags"].split()], env, tmp_path)
    still_running = first.poll() is None
    slow_server.set_latency(SLOW_LATENCY)
    assert second.returncode == 1
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1, second.stderr
    lock_file = tmp_path / "dlt_home" / "pipelines" / "kore_sessions.lock"
    assert f"pid {first.pid}" in lines[0] and str(lock_file) in lines[0] and "another run" in lines[0]
    assert still_running, "the second run answered while the first was still running"
    assert not any(r.bot_id == OTHER_BOT for r in slow_server.requests), "the second run sent nothing"
    assert first.wait(timeout=300) == 0, first.stderr.read() if first.stderr else ""
    slow_server.set_latency(0)
    assert normalized(warehouse_rows(destination, tmp_path)) == expected(slow_server)
    again = kore(["load", "--no-models", *destination["flags"].split()], env, tmp_path)
    assert again.returncode == 0, again.stderr
    assert normalized(warehouse_rows(destination, tmp_path)) == expected(slow_server)


def test_audit_repair_while_a_load_runs_waits_for_it_then_audits(
    slow_server: SandboxServer, tmp_path: Path
) -> None:
    """`audit --repair` beside a running load of its pipeline neither fails nor disturbs it: it
    says once that it waits, takes the lock when the load ends, and audits what it loaded."""
    env = cli_env(slow_server, tmp_path)
    assert kore(["load", "--no-models"], env, tmp_path).returncode == 0
    slow_server.set_latency(2.0)
    running = start_load(env, tmp_path, "")
    lock_file = tmp_path / "dlt_home" / "pipelines" / "kore_sessions.lock"
    while not (lock_file.read_text() if lock_file.exists() else "").startswith(f'{{"pid": {running.pid},'):
        assert running.poll() is None
        time.sleep(0.05)
    audit = kore(["audit", "--repair", "--days", "2"], env, tmp_path)
    assert running.poll() is not None, "the audit waited for the load to end"
    assert running.wait(timeout=300) == 0
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "waiting for the run of this pipeline" in audit.stderr
    assert "0 differ" in audit.stdout


def test_a_lock_held_past_the_turn_timeout_fails_the_waiting_command_in_one_line(
    slow_server: SandboxServer, tmp_path: Path
) -> None:
    """A command that waits for its pipeline's lock gives up after `--turn-timeout` seconds,
    in one line naming the holder and the lock file (exit 1)."""
    env = cli_env(slow_server, tmp_path)
    assert kore(["load", "--no-models"], env, tmp_path).returncode == 0
    lock_file = tmp_path / "dlt_home" / "pipelines" / "kore_sessions.lock"
    with RunLock(lock_file, "a long task"):
        started = time.monotonic()
        audit = kore(["audit", "--quiet", "--turn-timeout", "2"], env, tmp_path)
        waited = time.monotonic() - started
    assert audit.returncode == 1
    lines = audit.stderr.strip().splitlines()
    assert len(lines) == 1 and "still in progress" in lines[0] and str(lock_file) in lines[0], lines
    assert "a long task" in lines[0] and waited >= 2


def test_the_lock_of_a_killed_run_is_taken_over(slow_server: SandboxServer, tmp_path: Path) -> None:
    env = cli_env(slow_server, tmp_path)
    killed = start_load(env, tmp_path, "")
    wait_for_requests(slow_server, 6, killed)
    killed.send_signal(signal.SIGKILL)
    assert killed.wait(timeout=30) == -signal.SIGKILL
    lock_file = tmp_path / "dlt_home" / "pipelines" / "kore_sessions.lock"
    holder = json.loads(lock_file.read_text())
    assert holder["pid"] == killed.pid, "the lock file still names the killed run"
    slow_server.set_latency(0)
    before = len(slow_server.requests)
    rerun = kore(["load", "--no-models"], env, tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert len(slow_server.requests) > before, "the rerun took the lock and loaded"
    assert normalized(loaded(tmp_path)) == expected(slow_server)
    assert lock_file.read_text() == "", "released at the end of the run"
