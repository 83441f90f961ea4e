"""Running the `kore-sessions` command in a subprocess, configured only the documented ways."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from kore_sessions.sandbox import SandboxServer

from .conftest import BOTS, CLIENT_ID, CLIENT_SECRET, REAL_NOW
from .forked_command import run_command, run_python

DATABASE = "kore_warehouse.duckdb"


def cli_env(server: SandboxServer, tmp_path: Path, **extra: str) -> dict[str, str]:
    """Environment of a configured command: host, bots, start date, credentials."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "DESTINATION__"))}
    env.update(
        {
            "DLT_DATA_DIR": str(tmp_path / "dlt_home"),
            "RUNTIME__DLTHUB_TELEMETRY": "false",
            "SOURCES__KORE_SESSIONS__HOST": server.url,
            "SOURCES__KORE_SESSIONS__BOT_IDS": ",".join(BOTS),
            "SOURCES__KORE_SESSIONS__START_DATE": (REAL_NOW - timedelta(days=6)).isoformat(),
            "SOURCES__KORE_SESSIONS__BACKOFF_INITIAL": "0.01",
            "SOURCES__KORE_SESSIONS__BACKOFF_MAX": "0.05",
            "SOURCES__KORE_SESSIONS__CREDENTIALS__CLIENT_ID": CLIENT_ID,
            "SOURCES__KORE_SESSIONS__CREDENTIALS__CLIENT_SECRET": CLIENT_SECRET,
        }
    )
    env.update(extra)
    return env


def kore(
    args: list[str], env: dict[str, str], cwd: Path, patch: str = ""
) -> subprocess.CompletedProcess[str]:
    """Run `kore-sessions` and capture its output; with `patch` (Python source, e.g. a dlt step
    that kills the process at a chosen moment) executed first. Without a patch, the command
    runs in a process forked from one that has its imports done (tests/forked_command.py)."""
    if not patch:
        return run_command(args, env, cwd, timeout=300)
    script = f"{patch}\nimport sys\nfrom kore_sessions.cli.parser import main\nsys.exit(main(sys.argv[1:]))\n"
    return run_python(["-c", script, *args], env, cwd)


def loaded(cwd: Path) -> dict[str, tuple]:
    """Sessions in the command's DuckDB file, by id (and no id twice)."""
    return loaded_from(cwd / DATABASE)


def loaded_from(database: Path) -> dict[str, tuple]:
    """Sessions in a DuckDB file, by id (and no id twice)."""
    with duckdb.connect(str(database), read_only=True) as con:
        rows = con.sql(
            "SELECT session_id, session_status, end_time, no_of_messages_exchanged "
            "FROM kore_sessions.sessions"
        ).fetchall()
    by_id = {row[0]: row for row in rows}
    assert len(by_id) == len(rows), "duplicate sessions in the warehouse"
    return by_id


def expected(server: SandboxServer) -> dict[str, tuple]:
    """The sandbox's sessions in the same form as `loaded`."""
    return {
        v["sessionId"]: (
            v["sessionId"],
            v["sessionStatus"],
            datetime.fromisoformat(v["end_time"].replace("Z", "+00:00")),
            v["noOfMessagesExchanged"],
        )
        for v in server.visible_sessions()
    }


def normalized(rows: dict[str, tuple]) -> dict[str, tuple]:
    """Timestamps in UTC, for comparison."""
    return {
        key: tuple(v.astimezone(UTC) if isinstance(v, datetime) else v for v in row)
        for key, row in rows.items()
    }


# --- runs killed mid-way -------------------------------------------------------------------

# A backfill in one-day windows, one window a bot per load package: the six days `cli_env`
# starts from are loaded as seven packages in a row, so a kill can land between packages.
PACKAGE_A_DAY = {
    "SOURCES__KORE_SESSIONS__WINDOW_HOURS": "24",
    "SOURCES__KORE_SESSIONS__WINDOWS_PER_PACKAGE": "1",
    "SOURCES__KORE_SESSIONS__APPENDED_WINDOWS_PER_PACKAGE": "1",
}
# Where dlt keeps the command's pipeline under `cli_env`'s DLT_DATA_DIR.
PIPELINE_FOLDER = Path("dlt_home") / "pipelines" / "kore_sessions"
# Package stages of dlt's pipeline folder; all but the last hold work a later run must finish.
EXTRACTED, NEW, NORMALIZED, LOADED = "normalize/extracted", "load/new", "load/normalized", "load/loaded"
PENDING_STAGES = (EXTRACTED, NEW, NORMALIZED)
# How often a waiting test looks at the request log and the pipeline folder.
POLL_SECONDS = 0.003
# A guard against a hung command, not a timing expectation.
HANG_GUARD_SECONDS = 180.0


def packages(cwd: Path, *stages: str) -> set[str]:
    """Load ids of the command's packages in these stages of its pipeline folder."""
    found: set[str] = set()
    for stage in stages:
        folder = cwd / PIPELINE_FOLDER / stage
        if folder.is_dir():
            found.update(entry.name for entry in os.scandir(folder) if entry.is_dir())
    return found


def pending_packages(cwd: Path) -> set[str]:
    """Packages extracted or normalized but not loaded yet (an interrupted run's leftovers)."""
    return packages(cwd, *PENDING_STAGES)


def sessions_after_crash(cwd: Path) -> dict[str, tuple]:
    """The sessions a crashed command left in its DuckDB file, read from a copy (so that
    replaying DuckDB's write-ahead log does not touch the real file); {} before any load."""
    database = cwd / DATABASE
    if not database.exists():
        return {}
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / DATABASE
        shutil.copy(database, copy)
        if database.with_name(DATABASE + ".wal").exists():
            shutil.copy(database.with_name(DATABASE + ".wal"), copy.with_name(DATABASE + ".wal"))
        with duckdb.connect(str(copy)) as con:
            found = con.sql(
                "SELECT COUNT(*) FROM information_schema.tables "
                "WHERE table_schema = 'kore_sessions' AND table_name = 'sessions'"
            ).fetchall()
        return loaded_from(copy) if found == [(1,)] else {}


Event = Callable[[], bool]


def requests_seen(server: SandboxServer, count: int) -> Event:
    """Event: `count` more API requests reached the sandbox than it had logged so far."""
    target = len(server.requests) + count
    return lambda: len(server.requests) >= target


def package_reached(cwd: Path, stage: str) -> Event:
    """Event: a package no earlier run left behind reached `stage` of the pipeline folder (a
    package this run extracted itself)."""
    before = packages(cwd, *PENDING_STAGES, LOADED)
    return lambda: bool(packages(cwd, stage) - before)


def load_started(cwd: Path) -> Event:
    """Event: the load step began on a package this run extracted and normalized itself (a
    job of it started or completed; its extracted copy is gone by then)."""
    before = packages(cwd, *PENDING_STAGES, LOADED)

    def started() -> bool:
        for load_id in packages(cwd, NORMALIZED) - before:
            folder = cwd / PIPELINE_FOLDER / NORMALIZED / load_id
            for jobs in ("started_jobs", "completed_jobs"):
                with contextlib.suppress(OSError):
                    if os.listdir(folder / jobs):
                        return True
        return False

    return started


@dataclass(frozen=True)
class KilledRun:
    """A command SIGKILLed when an event happened."""

    returncode: int
    requests_before_kill: int
    stderr: str


def kill_when(
    args: list[str], env: dict[str, str], cwd: Path, server: SandboxServer, event: Event
) -> KilledRun:
    """Start `kore-sessions args`, SIGKILL it as soon as `event` is true, and wait for it.

    Fails the test if the command ends before the event: a kill must land mid-run.
    """
    first = len(server.requests)
    with tempfile.TemporaryFile("w+") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "kore_sessions.cli", *args],
            env=env,
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
        )
        deadline = time.monotonic() + HANG_GUARD_SECONDS
        try:
            while not event():
                if process.poll() is not None:
                    stderr.seek(0)
                    pytest.fail(
                        f"the run ended (exit {process.returncode}) before the kill point: "
                        f"{stderr.read()[-2000:]}"
                    )
                if time.monotonic() > deadline:
                    pytest.fail("the kill point never came")
                time.sleep(POLL_SECONDS)
            made = len(server.requests) - first
            process.send_signal(signal.SIGKILL)
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
        stderr.seek(0)
        return KilledRun(process.returncode, made, stderr.read())


def assert_killed_with_work_left(killed: KilledRun, cwd: Path, server: SandboxServer) -> None:
    """The kill landed mid-run: SIGKILL ended the command after it had sent requests, and it
    left work for the next run (a package pending, or a warehouse short of the sandbox)."""
    assert killed.returncode == -signal.SIGKILL, f"not killed by SIGKILL: {killed.stderr[-2000:]}"
    assert killed.requests_before_kill > 0, "killed before it sent any request"
    left = pending_packages(cwd)
    assert left or normalized(sessions_after_crash(cwd)) != expected(server), (
        "nothing was left to finish: the kill came after the run had done its work"
    )


def rsa_key_pair() -> tuple[str, str]:
    """A fresh (private PEM, public PEM) pair."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public
