"""One run of a pipeline at a time, and one process at a time in a dataset's tables.

dlt keeps a pipeline's packages and state in one working folder; two runs in it at once remove
each other's files (`FileNotFoundError: ... load/normalized/...`) whatever the destination.
The run lock is `fcntl.flock` on `<pipelines dir>/<pipeline name>.lock`: the kernel releases it
when its process ends, even by SIGKILL, so a lock left by a killed run is simply taken by the
next one. The file keeps the holder's pid, host, command (its name only, never its arguments,
which may name a person: `forget --user-id`) and start, for the message of the run that finds
it taken. Lock files are never deleted: a process may hold one at any moment.

The dataset's turn (`warehouse_turn`) is taken by every process that reads or writes the
dataset's tables: loads of every partition, model builds, `forget`, `audit`, `report` and
`export`. A process that finds it taken waits, saying so once, up to a timeout.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from dlt.common.pipeline import get_dlt_pipelines_dir
from kore_sessions.output.failures import ActionableError

logger = logging.getLogger("kore_sessions")

# Beside a DuckDB file: the lock its loads (of several partitions) take turns on.
DUCKDB_TURN_SUFFIX = ".kore-lock"
# The turns this process holds: a turn taken again inside one must not wait for itself.
_TURNS_HELD: set[str] = set()
# How long a command waits for the dataset's turn by default: longer than any one load step or
# model build of a scheduled run (seconds to minutes), short enough that a stuck holder fails a
# cron job the same quarter of an hour. `--turn-timeout` sets another.
DEFAULT_TURN_TIMEOUT = 600.0
# Pause between two tries of a taken turn: short beside a load step, cheap for the holder.
TURN_POLL_SECONDS = 0.2
# A wait for the turn longer than this is said once, so a waiting command does not look hung.
TURN_WAIT_WORTH_SAYING = 1.0


class RunLockedError(ActionableError):
    """Another run of the same pipeline holds the lock."""


class TurnTimeoutError(ActionableError):
    """The dataset's turn stayed taken longer than the command would wait."""


class TurnWait:
    """How long this process waits for a dataset's turn (one setting for every command)."""

    timeout: float = DEFAULT_TURN_TIMEOUT

    @classmethod
    def set(cls, seconds: float | None) -> None:
        """Wait up to `seconds` from now on (None: the default)."""
        cls.timeout = DEFAULT_TURN_TIMEOUT if seconds is None else float(seconds)


class RunLock:
    """An exclusive lock on a file, refused at once or waited for; use as a context manager."""

    def __init__(self, path: Path, purpose: str, wait: bool = False) -> None:
        """Name the lock file and what the run does (shown to a run that finds it taken).

        Args:
            path: The lock file (created with its folder when missing).
            purpose: The command holding the lock, e.g. "kore-sessions load".
            wait: Wait for a taken lock (up to `TurnWait.timeout`, said once) instead of
                failing at once: for commands that run beside a load (`audit`, `models`).
        """
        self.path = path
        self.purpose = purpose
        self.wait = wait
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock, or fail (at once, or after waiting for it).

        Raises:
            RunLockedError: another process holds it; the message names it and the file.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+", encoding="utf-8")
        try:
            taken = self._take(handle)
        except BaseException:
            handle.close()
            raise
        if not taken:
            holder = _holder(handle)
            handle.close()
            still = " still" if self.wait else ""
            raise RunLockedError(
                f"another run of this pipeline is{still} in progress ({holder}); lock file {self.path}: "
                "wait for it to finish (a lock left by a killed run is taken over automatically)"
            )
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(_this_process(self.purpose)))
        handle.flush()
        self._file = handle

    def _take(self, handle: IO[str]) -> bool:
        """Whether the lock was taken: at once, or (waiting) within the timeout."""
        if not self.wait:
            return _try_lock(handle)
        try:
            _Waiting(f"the run of this pipeline holding {self.path}", None).until(lambda: _try_lock(handle))
        except TurnTimeoutError:
            return False
        return True

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
    """What a run that finds the lock taken is told about its holder (no argument values: they
    may name a person, and a killed run leaves the file behind)."""
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": purpose,
        "started": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
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


def pipeline_lock(
    pipelines_dir: str | Path | None, pipeline_name: str, purpose: str, wait: bool = False
) -> RunLock:
    """The lock of one pipeline: `<pipelines dir>/<pipeline name>.lock` (see `RunLock`)."""
    return RunLock(pipelines_folder(pipelines_dir) / f"{pipeline_name}.lock", purpose, wait)


def pipelines_folder(pipelines_dir: str | Path | None) -> Path:
    """Where the pipelines are kept: the folder given, else dlt's own."""
    folder = Path(pipelines_dir) if pipelines_dir else Path(get_dlt_pipelines_dir())
    return folder.expanduser().resolve()


@contextmanager
def warehouse_turn(pipeline: Any, timeout: float | None = None) -> Iterator[None]:
    """Hold the dataset's turn while touching its tables (state sync, loads, model builds, reads).

    Partitions (pipelines of their own, one dataset) extract from the API in parallel, but
    their loads and model builds change the same tables (schema changes, merges, drop and
    create), and a reader must not open a DuckDB file a load is writing: they take turns. On
    PostgreSQL through an advisory lock of the dataset, which the server drops if the process
    dies; on DuckDB, which allows one process in its file at a time, through a file lock beside
    it (`<file>.kore-lock`). Other warehouses go as they are (partitions there are not tested
    live). A taken turn is waited for, said once, up to `timeout` (default `TurnWait.timeout`).

    Raises:
        TurnTimeoutError: the turn stayed taken for the whole timeout.
    """
    destination = pipeline.destination.destination_name
    dataset = pipeline.dataset_name
    credentials = pipeline.destination_client().config.credentials
    if destination == "postgres":
        turn = _advisory_lock(credentials.to_native_representation(), dataset, _Waiting(dataset, timeout))
        key = f"postgres:{dataset}"
    elif destination == "duckdb":
        path = Path(f"{credentials.database}{DUCKDB_TURN_SUFFIX}")
        turn, key = _file_turn(path, _Waiting(str(credentials.database), timeout)), f"duckdb:{path}"
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


def _try_lock(handle: IO[str]) -> bool:
    """Take an exclusive `flock` on an open file if nobody holds it."""
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class _Waiting:
    """The wait for one turn or lock: tries until taken or the timeout passes, saying so once."""

    def __init__(self, what: str, timeout: float | None) -> None:
        """Wait for `what` (a dataset, a DuckDB file, a run's lock), up to `timeout` seconds."""
        self.what = what
        self.timeout = TurnWait.timeout if timeout is None else timeout

    def until(self, take: Callable[[], bool]) -> None:
        """Call `take` until it returns True.

        Raises:
            TurnTimeoutError: it did not within the timeout.
        """
        started = time.monotonic()
        said = False
        while not take():
            waited = time.monotonic() - started
            if waited >= self.timeout:
                raise TurnTimeoutError(
                    f"{self.what} stayed busy for {waited:.0f} s (another kore-sessions process is "
                    "loading into it or building its models): try again later, or wait longer "
                    "with --turn-timeout SECONDS"
                )
            if not said and waited >= TURN_WAIT_WORTH_SAYING:
                logger.info("waiting for %s to be free (up to %.0f s)", self.what, self.timeout)
                said = True
            time.sleep(TURN_POLL_SECONDS)


@contextmanager
def _advisory_lock(dsn: str, dataset: str, waiting: _Waiting) -> Iterator[None]:
    """A PostgreSQL session advisory lock of the dataset, held while the block runs."""
    import psycopg2  # PostgreSQL's driver comes with dlt's postgres extra

    digest = hashlib.sha256(f"kore_sessions:{dataset}".encode()).digest()
    key = int.from_bytes(digest[:8], "big", signed=True)
    connection = psycopg2.connect(dsn)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:

            def take() -> bool:
                cursor.execute("SELECT pg_try_advisory_lock(%s)", (key,))
                return bool(cursor.fetchone()[0])

            waiting.until(take)
        yield
    finally:
        connection.close()  # ends the session, and with it the advisory lock


@contextmanager
def _file_turn(path: Path, waiting: _Waiting) -> Iterator[None]:
    """An exclusive file lock, waited for (the kernel drops it if the process dies)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        waiting.until(lambda: _try_lock(handle))
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
