"""The rolling request budget of each bot, kept in a SQLite file that every process shares.

Kore.ai counts a bot's requests over a rolling minute and a rolling hour, whoever sends them.
A limiter in memory forgets what the previous run spent and never sees a second process, so
back-to-back runs (or a load beside an audit) would meet the server's 429. Here every request
is written to a small SQLite table before it is sent, and the decision to send is taken inside
one write transaction (`BEGIN IMMEDIATE`), so processes on one machine never overspend together.

Whose clock: requests are timed on the machine's boot clock (Linux's CLOCK_BOOTTIME, elsewhere
the monotonic clock), never on the wall clock. It is one clock for every process of the
machine, and it never steps: setting the date, an NTP correction or a resumed VM moves the wall
clock, and a wall clock stepped back made every request recorded look sent in the future (an
hour's step, an hour's stall), stepped forward it made requests the server still counts look
old. Unlike CLOCK_MONOTONIC the boot clock goes on counting while the machine sleeps, so a
request sent before a suspend ages as the server sees it age.

Its readings mean nothing in another boot, so the file names the boot its times belong to
(Linux's boot_id). A request of an earlier boot was sent before this boot began: the first
process of a new boot re-times every one to the clock's reading at boot (0), as recent as they
can be, so none is under-counted and none delays anyone by more than one window after boot.
Where the boot cannot be told, times of an earlier boot are kept as they are: that clock also
reads 0 at boot, so such a request looks at most as old as it is (or in the future, below).
Any request that still looks sent in the future (a clock source's oddity) is counted as sent
now: it delays no one by more than one window. A file of the versions before (wall-clock times,
no `keep` column) is upgraded in place inside one write transaction, its requests re-timed by
the age the wall clock gives them, once.

Each request is remembered for the longest window of the limits it was counted under, and at
least a day, so a run with other settings for the same bot still sees it, a cleanup by another
bot's take never cuts a long window short, and the rows of a bot no longer loaded still go.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from kore_sessions.source.api.config_error import ConfigError

logger = logging.getLogger("kore_sessions")

# Every request is kept at least this long (longer when its windows are): runs with other
# settings still see it, and the requests of bots nobody loads any more still go.
HISTORY_FLOOR_SECONDS = 24 * 3600.0
# The boot clock reads about this at boot: a request of an earlier boot was sent no later.
BOOT_ORIGIN = 0.0
# Linux's id of the running boot (a new random uuid at every boot).
BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")
# The boot elsewhere, where it cannot be told: one boot's times then stand for every boot's.
UNKNOWN_BOOT = "unknown-boot"
# Row of the `meta` table that names the boot whose clock the file's times are read on.
BOOT_META = "boot"
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


def _boot_clock() -> float:
    """Seconds since boot, sleep included (Linux's CLOCK_BOOTTIME)."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


# Seconds on the machine's boot clock: shared by its processes, never stepped.
machine_clock: Callable[[], float] = _boot_clock if hasattr(time, "CLOCK_BOOTTIME") else time.monotonic


@functools.cache
def machine_boot_id() -> str:
    """The id of the running boot (Linux), else one id that stands for every boot."""
    try:
        return BOOT_ID_FILE.read_text(encoding="ascii").strip() or UNKNOWN_BOOT
    except OSError:
        return UNKNOWN_BOOT


class RateBudget:
    """Rolling limits per key (a host and bot), counted in one SQLite database."""

    def __init__(
        self,
        path: str | Path = IN_MEMORY,
        clock: Callable[[], float] = machine_clock,
        sleep: Callable[[float], None] = time.sleep,
        boot_id: Callable[[], str] = machine_boot_id,
    ) -> None:
        """Open (or create, or upgrade) the budget file.

        Args:
            path: The SQLite file, or ":memory:" for a budget of this process only.
            clock: Seconds on a clock that every process of the machine shares and that never
                steps (default: the boot clock); its readings are comparable within one boot.
            sleep: How to wait (tests).
            boot_id: The id of the boot `clock` belongs to (tests).
        """
        self.path = str(path)
        self._clock = clock
        self._sleep = sleep
        self._boot = boot_id()
        self._lock = threading.Lock()
        try:
            self._db = self._connect()
            self._prepare()
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(
                f"the rate budget file {self.path} cannot be used ({exc}): set rate_budget_file "
                "to a file in a writable folder"
            ) from exc

    def _connect(self) -> sqlite3.Connection:
        """Open the database, in WAL mode when it is a file (readers never wait for a writer)."""
        if self.path != IN_MEMORY:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(
            self.path, timeout=LOCK_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
        )
        if self.path != IN_MEMORY:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
        return db

    def _prepare(self) -> None:
        """Make the tables, or upgrade those of an old file, in one write transaction: a second
        process opening the file at once waits, then finds it done (idempotent)."""
        with self._transaction():
            _make_tables(self._db)
            if _is_old_format(self._db):
                _upgrade_old_format(self._db, self._clock())
                self._set_boot()
                logger.info("rate budget %s: upgraded to times of the machine's boot clock", self.path)

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
        with self._transaction():
            now = self._settle()
            row = self._db.execute(
                "SELECT COUNT(*) FROM requests WHERE key = ? AND sent > ?", (key, now - seconds)
            ).fetchone()
        return int(row[0])

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write transaction of this thread, which other processes' wait for."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _try_take(self, key: str, limits: Sequence[Limit]) -> float:
        """Count a request now if every limit has room; else how long until one has."""
        with self._transaction():
            now = self._settle()
            wait = max((_wait_for(self._db, key, limit, now) for limit in limits), default=0.0)
            if wait <= 0:
                keep = max((seconds for _, seconds in limits), default=0.0)
                self._db.execute("INSERT INTO requests (key, sent, keep) VALUES (?, ?, ?)", (key, now, keep))
        return wait

    def _settle(self) -> float:
        """Put every recorded time on this boot's clock and no later than now; forget the expired.

        Called inside the write transaction, so the clock is read once no one else can write.

        Returns:
            The time now on the clock.
        """
        self._adopt_boot()
        now = self._clock()
        self._db.execute("UPDATE requests SET sent = ? WHERE sent > ?", (now, now))
        self._db.execute(
            "DELETE FROM requests WHERE sent <= ? AND sent + keep <= ?", (now - HISTORY_FLOOR_SECONDS, now)
        )
        return now

    def _adopt_boot(self) -> None:
        """Re-time the requests of another boot as sent when this one began, once per boot."""
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (BOOT_META,)).fetchone()
        if row is not None and row[0] == self._boot:
            return
        moved = self._db.execute("UPDATE requests SET sent = ?", (BOOT_ORIGIN,)).rowcount
        if moved:
            logger.info("rate budget: %d request(s) of an earlier boot counted as sent at boot", moved)
        self._set_boot()


    def _set_boot(self) -> None:
        """Name this boot as the one whose clock the file's times are read on."""
        self._db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (BOOT_META, self._boot))



def _wait_for(db: sqlite3.Connection, key: str, limit: Limit, now: float) -> float:
    """Seconds until `limit` has room: when the request that fills it leaves its window."""
    allowed, seconds = limit
    filling = db.execute(
        "SELECT sent FROM requests WHERE key = ? AND sent > ? ORDER BY sent DESC LIMIT 1 OFFSET ?",
        (key, now - seconds, max(allowed - 1, 0)),
    ).fetchone()
    return 0.0 if filling is None else filling[0] + seconds - now


def _make_tables(db: sqlite3.Connection) -> None:
    """The requests (with how long each is kept) and the boot their times belong to."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS requests "
        "(key TEXT NOT NULL, sent REAL NOT NULL, keep REAL NOT NULL DEFAULT 0)"
    )
    db.execute("CREATE INDEX IF NOT EXISTS requests_by_key ON requests (key, sent)")
    db.execute("CREATE INDEX IF NOT EXISTS requests_by_time ON requests (sent)")
    db.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")


def _upgrade_old_format(db: sqlite3.Connection, now: float) -> None:
    """Give a file of the versions before (wall-clock times) the `keep` column and re-time its
    requests onto this boot's clock by the age the wall clock gives them (none in the future)."""
    db.execute("ALTER TABLE requests ADD COLUMN keep REAL NOT NULL DEFAULT 0")
    db.execute("UPDATE requests SET sent = ? - MAX(? - sent, 0)", (now, time.time()))


def _is_old_format(db: sqlite3.Connection) -> bool:
    """Whether the requests table is the one of the versions before (wall-clock times)."""
    return "keep" not in {row[1] for row in db.execute("PRAGMA table_info(requests)")}


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
