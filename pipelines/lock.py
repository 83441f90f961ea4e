"""One run of a pipeline at a time: an exclusive lock on a file beside its working folder.

dlt keeps a pipeline's packages and state in one working folder; two runs in it at once remove
each other's files (`FileNotFoundError: ... load/normalized/...`) whatever the destination.
The lock is `fcntl.flock` on `<pipelines dir>/<pipeline name>.lock`: the kernel releases it
when its process ends, even by SIGKILL, so a lock left by a killed run is simply taken by the
next one. The file keeps the holder's pid, command and start, for the message of the run that
finds it taken.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from dlt.common.pipeline import get_dlt_pipelines_dir

from .failures import ActionableError

# Beside a DuckDB file: the lock its loads (of several partitions) take turns on.
DUCKDB_TURN_SUFFIX = ".kore-lock"
# The turns this process holds: a turn taken again inside one must not wait for itself.
_TURNS_HELD: set[str] = set()


class RunLockedError(ActionableError):
    """Another run of the same pipeline holds the lock."""


class RunLock:
    """An exclusive, non-blocking lock on a file; use as a context manager."""

    def __init__(self, path: Path, purpose: str) -> None:
        """Name the lock file and what the run does (shown to a run that finds it taken).

        Args:
            path: The lock file (created with its folder when missing).
            purpose: The command holding the lock, e.g. "kore-sessions load".
        """
        self.path = path
        self.purpose = purpose
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock, or fail at once.

        Raises:
            RunLockedError: another process holds it; the message names it and the file.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(handle)
            handle.close()
            raise RunLockedError(
                f"another run of this pipeline is in progress ({holder}); lock file {self.path}: "
                "wait for it to finish (a lock left by a killed run is taken over automatically)"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(_this_process(self.purpose)))
        handle.flush()
        self._file = handle

    def release(self) -> None:
        """Give the lock up (the file stays, unlocked, for the next run)."""
        if self._file is None:
            return
        self._file.seek(0)
        self._file.truncate()
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()
        self._file = None

    def __enter__(self) -> RunLock:
        """Take the lock."""
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Give the lock up."""
        self.release()


def _this_process(purpose: str) -> dict[str, object]:
    """What a run that finds the lock taken is told about its holder."""
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": purpose,
        "started": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "argv": " ".join(sys.argv[1:])[:200],
    }


def _holder(handle: IO[str]) -> str:
    """The holder as recorded in the file, in words."""
    handle.seek(0)
    try:
        info = json.loads(handle.read() or "{}")
    except json.JSONDecodeError:
        info = {}
    if not isinstance(info, dict) or "pid" not in info:
        return "a process that has not written its name yet"
    where, what, since = info.get("host", "?"), info.get("command", "?"), info.get("started", "?")
    return f"pid {info['pid']} on {where}, {what} since {since}"


def pipeline_lock(pipelines_dir: str | Path | None, pipeline_name: str, purpose: str) -> RunLock:
    """The lock of one pipeline: `<pipelines dir>/<pipeline name>.lock`."""
    return RunLock(pipelines_folder(pipelines_dir) / f"{pipeline_name}.lock", purpose)


def pipelines_folder(pipelines_dir: str | Path | None) -> Path:
    """Where the pipelines are kept: the folder given, else dlt's own."""
    folder = Path(pipelines_dir) if pipelines_dir else Path(get_dlt_pipelines_dir())
    return folder.expanduser().resolve()


@contextmanager
def warehouse_turn(pipeline: Any) -> Iterator[None]:
    """Hold the dataset's turn while touching its tables (state sync, loads, model builds).

    Partitions (pipelines of their own, one dataset) extract from the API in parallel, but
    their loads and model builds change the same tables (schema changes, merges, drop and
    create): they take turns. On PostgreSQL through an advisory lock of the dataset, which the
    server drops if the process dies; on DuckDB, which allows one process in its file at a
    time, through a file lock beside it (`<file>.kore-lock`). Other warehouses go as they are
    (partitions there are not tested live).
    """
    destination = pipeline.destination.destination_name
    credentials = pipeline.destination_client().config.credentials
    if destination == "postgres":
        turn = _advisory_lock(credentials.to_native_representation(), pipeline.dataset_name)
        key = f"postgres:{pipeline.dataset_name}"
    elif destination == "duckdb":
        path = Path(f"{credentials.database}{DUCKDB_TURN_SUFFIX}")
        turn, key = _file_turn(path), f"duckdb:{path}"
    else:
        turn, key = nullcontext(), ""
    if key in _TURNS_HELD:  # this process has the turn already (a build inside a repair, say)
        yield
        return
    with turn:
        _TURNS_HELD.add(key)
        try:
            yield
        finally:
            _TURNS_HELD.discard(key)


@contextmanager
def _advisory_lock(dsn: str, dataset: str) -> Iterator[None]:
    """A PostgreSQL session advisory lock of the dataset, held while the block runs."""
    import psycopg2  # PostgreSQL's driver comes with dlt's postgres extra

    digest = hashlib.sha256(f"kore_sessions:{dataset}".encode()).digest()
    connection = psycopg2.connect(dsn)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", (int.from_bytes(digest[:8], "big", signed=True),))
        yield
    finally:
        connection.close()  # ends the session, and with it the advisory lock


@contextmanager
def _file_turn(path: Path) -> Iterator[None]:
    """An exclusive file lock, waited for (the kernel drops it if the process dies)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
