"""The rolling request budget of each bot, kept in a SQLite file that every process shares.

Kore.ai counts a bot's requests over a rolling minute and a rolling hour, whoever sends them.
A limiter in memory forgets what the previous run spent and never sees a second process, so
back-to-back runs (or a load beside an audit) would meet the server's 429. Here every request
is written to a small SQLite table before it is sent, and the decision to send is taken inside
one write transaction (`BEGIN IMMEDIATE`), so processes on one machine never overspend together.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from .config import ConfigError

logger = logging.getLogger("kore_sessions")

# Requests older than this are forgotten (longer than any window a limit is kept over).
HISTORY_SECONDS = 2 * 3600.0
# Longest single sleep while waiting for room, so a budget freed early is noticed soon.
MAX_SLEEP_SECONDS = 1.0
# How long a process waits for another one's write transaction before SQLite gives up.
LOCK_TIMEOUT_SECONDS = 60.0
# A wait for room longer than this is said once, so a run that paces itself does not look hung.
WAIT_WORTH_SAYING_SECONDS = 5.0
# A budget file with this name lives in the pipelines folder unless configured elsewhere.
BUDGET_FILE_NAME = "kore_sessions_rate_budget.sqlite"
# An in-memory budget (one process only) when no file is given.
IN_MEMORY = ":memory:"

# (requests allowed, over this many seconds)
Limit = tuple[int, float]


class RateBudget:
    """Rolling limits per key (a host and bot), counted in one SQLite database."""

    def __init__(
        self,
        path: str | Path = IN_MEMORY,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Open (or create) the budget file.

        Args:
            path: The SQLite file, or ":memory:" for a budget of this process only.
            clock: Wall-clock seconds, comparable between processes.
            sleep: How to wait (tests).
        """
        self.path = str(path)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        try:
            self._db = self._open()
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(
                f"the rate budget file {self.path} cannot be used ({exc}): set rate_budget_file "
                "to a file in a writable folder"
            ) from exc

    def _open(self) -> sqlite3.Connection:
        """Open the database and make its table (idempotent)."""
        if self.path != IN_MEMORY:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(
            self.path, timeout=LOCK_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
        )
        if self.path != IN_MEMORY:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
        db.execute("CREATE TABLE IF NOT EXISTS requests (key TEXT NOT NULL, sent REAL NOT NULL)")
        db.execute("CREATE INDEX IF NOT EXISTS requests_by_key ON requests (key, sent)")
        db.execute("CREATE INDEX IF NOT EXISTS requests_by_time ON requests (sent)")
        return db

    def acquire(self, key: str, limits: Sequence[Limit]) -> float:
        """Wait until one more request of `key` keeps every limit, then count it.

        Args:
            key: What the server counts per, e.g. "https://host bot-id".
            limits: Each (requests, seconds) that must hold over any rolling window.

        Returns:
            Seconds spent waiting.
        """
        waited = 0.0
        while True:
            wait = self._try_take(key, limits)
            if wait <= 0:
                return waited
            if waited == 0.0 and wait > WAIT_WORTH_SAYING_SECONDS:
                logger.info("%s: rate budget spent, waiting %.0f s (other runs count too)", key, wait)
            pause = min(wait, MAX_SLEEP_SECONDS)
            self._sleep(pause)
            waited += pause

    def spent(self, key: str, seconds: float) -> int:
        """Requests of `key` counted over the last `seconds`."""
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*) FROM requests WHERE key = ? AND sent > ?", (key, self._clock() - seconds)
            ).fetchone()
        return int(row[0])

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def _try_take(self, key: str, limits: Sequence[Limit]) -> float:
        """Count a request now if every limit has room; else how long until one has."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                now = self._clock()
                self._db.execute("DELETE FROM requests WHERE sent <= ?", (now - HISTORY_SECONDS,))
                wait = max((self._wait_for(key, limit, now) for limit in limits), default=0.0)
                if wait <= 0:
                    self._db.execute("INSERT INTO requests (key, sent) VALUES (?, ?)", (key, now))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return wait

    def _wait_for(self, key: str, limit: Limit, now: float) -> float:
        """Seconds until `limit` has room: when the request that fills it leaves its window."""
        allowed, seconds = limit
        filling = self._db.execute(
            "SELECT sent FROM requests WHERE key = ? AND sent > ? ORDER BY sent DESC LIMIT 1 OFFSET ?",
            (key, now - seconds, max(allowed - 1, 0)),
        ).fetchone()
        return 0.0 if filling is None else filling[0] + seconds - now


# One budget per file in a process: threads share its connection, processes share the file.
_BUDGETS: dict[str, RateBudget] = {}
_BUDGETS_LOCK = threading.Lock()


def shared_budget(path: str | Path | None) -> RateBudget:
    """The process's budget of a file (made on first use); in memory when `path` is None."""
    name = str(Path(path).expanduser().resolve()) if path else IN_MEMORY
    with _BUDGETS_LOCK:
        if name not in _BUDGETS:
            _BUDGETS[name] = RateBudget(name)
        return _BUDGETS[name]


def budget_path(configured: str | Path | None, pipelines_dir: str | Path | None) -> Path | None:
    """The budget file: the configured one, else one in the pipelines folder (shared by every
    pipeline there), else none (a budget of this process only)."""
    if configured:
        return Path(configured)
    return Path(pipelines_dir) / BUDGET_FILE_NAME if pipelines_dir else None
