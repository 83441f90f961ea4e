"""One process at a time in a dataset's tables: the dataset's turn.

The dataset's turn (`warehouse_turn`) is taken by every process that reads or writes the
dataset's tables: loads of every partition, model builds, `forget`, `audit`, `report` and
`export`. A process that finds it taken waits, saying so once, up to a timeout. On PostgreSQL
it is an advisory lock of the dataset; on DuckDB a file lock beside the file. Lock files are
never deleted: a process may hold one at any moment.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import IO, Any

from kore_sessions.output.failures import ActionableError

logger = logging.getLogger("kore_sessions")

# Beside a DuckDB file: the lock its loads (of several partitions) take turns on.
DUCKDB_TURN_SUFFIX = ".kore-lock"
# The turns this process holds: a turn taken again inside one must not wait for itself.
_TURNS_HELD: set[str] = set()
# Each pipeline's destination and its credentials, resolved once: dlt resolves the destination's
# configuration anew (~20 ms of CPU) on every `destination_client()`, and every load package,
# build and read takes the turn.
_CREDENTIALS: weakref.WeakKeyDictionary[Any, tuple[Any, Any]] = weakref.WeakKeyDictionary()
# How long a command waits for the dataset's turn by default: longer than any one load step or
# model build of a scheduled run (seconds to minutes), short enough that a stuck holder fails a
# cron job the same quarter of an hour. `--turn-timeout` sets another.
DEFAULT_TURN_TIMEOUT = 600.0
# Pause between two tries of a taken turn: short beside a load step, cheap for the holder.
TURN_POLL_SECONDS = 0.2
# A wait for the turn longer than this is said once, so a waiting command does not look hung.
TURN_WAIT_WORTH_SAYING = 1.0


class TurnTimeoutError(ActionableError):
    """The dataset's turn stayed taken longer than the command would wait."""


class TurnWait:
    """How long this process waits for a dataset's turn (one setting for every command)."""

    timeout: float = DEFAULT_TURN_TIMEOUT

    @classmethod
    def set(cls, seconds: float | None) -> None:
        """Wait up to `seconds` from now on (None: the default)."""
        cls.timeout = DEFAULT_TURN_TIMEOUT if seconds is None else float(seconds)


def destination_credentials(pipeline: Any) -> Any:
    """The credentials of the pipeline's destination (resolved again only when the pipeline's
    destination changes)."""
    destination = pipeline.destination
    known = _CREDENTIALS.get(pipeline)
    if known is None or known[0] is not destination:
        known = (destination, pipeline.destination_client().config.credentials)
        _CREDENTIALS[pipeline] = known
    return known[1]


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
    credentials = destination_credentials(pipeline)
    if destination == "postgres":
        turn = _advisory_lock(credentials.to_native_representation(), dataset, Waiting(dataset, timeout))
        key = f"postgres:{dataset}"
    elif destination == "duckdb":
        path = Path(f"{credentials.database}{DUCKDB_TURN_SUFFIX}")
        turn, key = _file_turn(path, Waiting(str(credentials.database), timeout)), f"duckdb:{path}"
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


def try_lock(handle: IO[str]) -> bool:
    """Take an exclusive `flock` on an open file if nobody holds it."""
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class Waiting:
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
def _advisory_lock(dsn: str, dataset: str, waiting: Waiting) -> Iterator[None]:
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
def _file_turn(path: Path, waiting: Waiting) -> Iterator[None]:
    """An exclusive file lock, waited for (the kernel drops it if the process dies)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        waiting.until(lambda: try_lock(handle))
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
