"""An erasure holds whatever runs beside or after it: a package an interrupted run left behind,
a partition extracting while `forget` runs, and erasures that cannot be read (fail closed)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import duckdb
from kore_sessions.sandbox import SandboxServer
from kore_sessions.source.api.timestamps import format_api_timestamp

from .cli_helpers import (
    DATABASE,
    NORMALIZED,
    cli_env,
    kore,
    loaded,
    packages,
    pending_packages,
)
from .conftest import BOTS, REAL_NOW, api_time

# A first load step that kills the process: its package is left normalized.
KILLED_BEFORE_THE_LOAD_STEP = """
import os, signal
from dlt.pipeline.pipeline import Pipeline

def die(self, *args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

Pipeline.load = die
"""


def sessions_of(server: SandboxServer, user_id: str) -> set[str]:
    """The ids of a user's sessions, as the sandbox serves them."""
    return {view["sessionId"] for view in server.visible_sessions() if view["userId"] == user_id}


def newest_user(server: SandboxServer, bot: str) -> tuple[str, set[str]]:
    """The user of `bot`'s newest session (a backfill walking oldest first reads it last), and
    the ids of their sessions."""
    newest = max(server.visible_sessions(bot), key=lambda view: view["start_time"])
    return newest["userId"], sessions_of(server, newest["userId"])


def day_of(server: SandboxServer, session_ids: set[str]) -> tuple[str, str]:
    """A range of whole hours around the sessions' starts, as `--start`/`--end` take it."""
    starts = [api_time(v["start_time"]) for v in server.visible_sessions() if v["sessionId"] in session_ids]
    low = min(starts).replace(minute=0, second=0, microsecond=0)
    return format_api_timestamp(low), format_api_timestamp(max(starts) + timedelta(minutes=1))


def held_anywhere(database: Path, session_ids: set[str]) -> set[str]:
    """Which of the sessions the warehouse holds in any of its tables (sessions or child rows)."""
    found: set[str] = set()
    with duckdb.connect(str(database), read_only=True) as con:
        tables = [
            row[0]
            for row in con.sql(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'kore_sessions' "
                "AND table_name LIKE 'sessions%'"
            ).fetchall()
        ]
        for table in tables:
            column = "session_id" if table == "sessions" else "_dlt_root_id"
            rows = con.sql(f"SELECT {column} FROM kore_sessions.{table}").fetchall()
            found |= {row[0] for row in rows} & session_ids
    return found


def test_a_package_left_before_forget_does_not_bring_the_person_back(
    live_server: SandboxServer, tmp_path: Path
) -> None:
    """Load; a bounded backfill re-reads a person's sessions and is killed before its load step
    (its package left normalized); `forget` erases the person; the next load finishes the
    package left behind: the person's sessions stay out, and the audit counts them once."""
    env = cli_env(live_server, tmp_path)
    assert kore(["load", "--no-models"], env, tmp_path).returncode == 0
    person, theirs = newest_user(live_server, BOTS[0])
    start, end = day_of(live_server, theirs)
    backfill = ["load", "--no-models", "--start", start, "--end", end]
    killed = kore(backfill, env, tmp_path, patch=KILLED_BEFORE_THE_LOAD_STEP)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert packages(tmp_path, NORMALIZED), "the backfill's package is left to load"
    forgot = kore(["forget", "--user-id", person], env, tmp_path)
    assert forgot.returncode == 0, forgot.stderr
    assert f"forgot {len(theirs)} sessions" in forgot.stdout
    finished = kore(["load", "--no-models"], env, tmp_path)
    assert finished.returncode == 0, finished.stderr
    assert "finished 1 package(s) left by an interrupted run" in finished.stdout
    assert not pending_packages(tmp_path)
    assert not held_anywhere(tmp_path / DATABASE, theirs), "the package left behind brought them back"
    audit = kore(["audit", "--days", "6"], env, tmp_path)
    assert audit.returncode == 0, audit.stdout + audit.stderr


def test_a_partition_extracting_while_forget_runs_leaves_the_person_out(
    live_server: SandboxServer, tmp_path: Path
) -> None:
    """A partition re-reads a bot's days slowly (a bounded backfill, one package a day) while
    `forget` erases one of its users: the packages it loads after the erasure leave that
    person out, though it extracted them with the erasures as they were when it began."""
    env = cli_env(live_server, tmp_path)
    partition = ["--pipeline-name", "part_a", "--bot", BOTS[0], "--no-models"]
    assert kore(["load", *partition], env, tmp_path).returncode == 0
    person, theirs = newest_user(live_server, BOTS[0])
    live_server.set_latency(0.25)
    start = format_api_timestamp(REAL_NOW - timedelta(days=5, hours=1))
    backfill = ["load", *partition, "--start", start, "--end", format_api_timestamp(REAL_NOW)]
    slow = {"SOURCES__KORE_SESSIONS__WINDOW_HOURS": "24", "SOURCES__KORE_SESSIONS__WINDOWS_PER_PACKAGE": "1"}
    running = subprocess.Popen(
        [sys.executable, "-m", "kore_sessions.cli", *backfill],
        env={**env, **slow},
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen = len(live_server.requests)
    deadline = time.monotonic() + 60
    while len(live_server.requests) < seen + 3:
        assert running.poll() is None and time.monotonic() < deadline, "the partition got under way"
        time.sleep(0.02)
    forgot = kore(["forget", "--user-id", person], env, tmp_path)
    assert forgot.returncode == 0, forgot.stderr
    assert running.poll() is None, "the partition was still extracting when the erasure was made"
    _, stderr = running.communicate(timeout=300)
    assert running.returncode == 0, stderr
    live_server.set_latency(0)
    assert not held_anywhere(tmp_path / DATABASE, theirs), "the partition wrote the erased sessions back"
    assert set(loaded(tmp_path)) == {v["sessionId"] for v in live_server.visible_sessions(BOTS[0])} - theirs


def test_erasures_that_cannot_be_read_fail_the_load_in_one_line(
    live_server: SandboxServer, tmp_path: Path
) -> None:
    """The erasures table exists but cannot be read: the load fails closed, in one line, and
    loads nothing; once it can be read again, the next load goes on."""
    env = cli_env(live_server, tmp_path)
    assert kore(["load", "--no-models"], env, tmp_path).returncode == 0
    person, theirs = newest_user(live_server, BOTS[1])
    assert kore(["forget", "--user-id", person], env, tmp_path).returncode == 0
    with duckdb.connect(str(tmp_path / DATABASE)) as con:
        con.sql("ALTER TABLE kore_sessions.kore_erased_sessions RENAME TO kept_aside")
        con.sql(
            "CREATE VIEW kore_sessions.kore_erased_sessions AS SELECT CAST('x' AS INTEGER) AS session_key"
        )
        loads_before = con.sql("SELECT COUNT(*) FROM kore_sessions._dlt_loads").fetchall()
    live_server.advance(timedelta(minutes=30))
    failed = kore(["load", "--quiet", "--no-models", "--lookback-minutes", "600"], env, tmp_path)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1 and "erased sessions" in lines[0] and "cannot be read" in lines[0], lines
    with duckdb.connect(str(tmp_path / DATABASE)) as con:
        assert con.sql("SELECT COUNT(*) FROM kore_sessions._dlt_loads").fetchall() == loads_before
        con.sql("DROP VIEW kore_sessions.kore_erased_sessions")
        con.sql("ALTER TABLE kore_sessions.kept_aside RENAME TO kore_erased_sessions")
    again = kore(["load", "--no-models", "--lookback-minutes", "600"], env, tmp_path)
    assert again.returncode == 0, again.stderr
    assert not held_anywhere(tmp_path / DATABASE, theirs)


def test_an_erased_person_stays_out_of_sessions_loaded_after_the_erasure(
    live_server: SandboxServer, tmp_path: Path
) -> None:
    """Only the last day is loaded; a person with sessions on that day and before is erased;
    a bounded backfill then reads their older sessions, which the warehouse never held: they
    stay out too, and the audit counts them as held."""
    views = live_server.visible_sessions(BOTS[0])
    day_ago = REAL_NOW - timedelta(days=1)
    users_then = {v["userId"] for v in views if api_time(v["start_time"]) < day_ago - timedelta(hours=2)}
    person = next(
        v["userId"] for v in views if api_time(v["start_time"]) > day_ago and v["userId"] in users_then
    )
    theirs = sessions_of(live_server, person)
    env = cli_env(live_server, tmp_path, SOURCES__KORE_SESSIONS__START_DATE=format_api_timestamp(day_ago))
    assert kore(["load", "--no-models"], env, tmp_path).returncode == 0
    forgot = kore(["forget", "--user-id", person], env, tmp_path)
    assert forgot.returncode == 0, forgot.stderr
    start = format_api_timestamp(REAL_NOW - timedelta(days=5, hours=1))
    backfill = kore(
        ["load", "--no-models", "--start", start, "--end", format_api_timestamp(day_ago)], env, tmp_path
    )
    assert backfill.returncode == 0, backfill.stderr
    assert not held_anywhere(tmp_path / DATABASE, theirs), "their older sessions were loaded"
    with duckdb.connect(str(tmp_path / DATABASE), read_only=True) as con:
        erased = con.sql("SELECT COUNT(*) FROM kore_sessions.kore_erased_sessions").fetchall()[0][0]
        users = con.sql("SELECT user_key FROM kore_sessions.kore_erased_users").fetchall()
    assert erased == len(theirs), "every erased session is remembered once, by its hash"
    assert len(users) == 1 and person not in repr(users), "the person by a hash only"
    audit = kore(["audit", "--days", "6", "--quiet"], env, tmp_path)
    assert audit.returncode == 0, audit.stdout + audit.stderr
