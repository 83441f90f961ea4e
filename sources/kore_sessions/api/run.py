"""What one run of the source owns, over all its load packages: counters, where each bot
stands, and the server's clock as its answers showed it.

The caller makes a `SourceRun`, hands it to the source and asks it, after each package,
whether more is left (`more_to_fetch`); the summary of the run is read from it (`totals`).
Nothing here knows a resource: each counts its records under its own noun (`add`) and keeps
what else it needs of the run in a record of its own (`record`, e.g. the sessions' open
sessions and the values the docs do not list).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from kore_sessions.source.api.client import ClientStats

# A resource's record of the run (`SourceRun.record`).
Record = TypeVar("Record")


class ServerClock:
    """A lower bound of the server's clock: the newest start_time its answers have shown.

    The loader's own clock says nothing about what the server has (it may lag by hours or lead
    by minutes); the sessions in the server's answers do. End times are not taken: a bogus or
    scheduled end_time could lie ahead of the server's clock.
    """

    def __init__(self) -> None:
        """Nothing seen yet."""
        self.latest: datetime | None = None
        self._lock = threading.Lock()

    def observe(self, started: datetime | None) -> None:
        """Take a start_time the server has shown."""
        if started is None:
            return
        with self._lock:
            if self.latest is None or started > self.latest:
                self.latest = started


@dataclass
class BotRun:
    """What one run, over all its load packages, knows of one bot.

    Attributes:
        walked_through: End of the last window this run completed; a later package of the run
            resumes there, whether or not those windows held sessions.
        more_to_fetch: The bot's windows were cut at the package's size (or wait for
            another resource's): another package is due.
        finished: Every window of this run is loaded; later packages leave the bot alone.
    """

    walked_through: datetime | None = None
    more_to_fetch: bool = False
    finished: bool = False


@dataclass
class RunTotals:
    """What a run did, for progress and the summary.

    Attributes:
        windows: Windows completed, of every resource.
        pages: Pages read, of every resource.
        counted: What the resources counted, by name: the records of each (its noun, e.g.
            `sessions`) and whatever else a resource counts (e.g. `refreshed`, `deleted`).
    """

    windows: int = 0
    pages: int = 0
    counted: dict[str, int] = field(default_factory=dict)

    def of(self, name: str) -> int:
        """The count `name` (0 when nothing was counted under it)."""
        return self.counted.get(name, 0)


@dataclass
class SourceRun:
    """One run of the source: give a new one to every run (a source run again starts anew).

    Attributes:
        totals: Windows, pages and the resources' counts of the run.
        client: The HTTP client's counters (requests, retries, 429s) of the run.
        bots: Where each bot stands, per resource: `{(resource, bot key): BotRun}`.
        server_clock: The server's clock as its answers showed it.
        bot_keys: The bots the source covers (`*`: every bot of the account), set by the source.
        earlier_start: Bots with state whose loaded range begins after the configured
            start_date: `(start_date, loaded_from)`. An incremental run does not go back there.
        short_windows: Windows that stayed short of their total (what the run failed on).
        records: What each resource keeps of the run besides its counts, by resource.
        begun: Per resource, the packages begun in this run.
        empty_tables: Tables with no rows of the bots the source covers, as the runtime counted
            them before the run (`kore_sessions.source.first_backfill`).
        appending: Per resource, whether this run's packages append (decided at its first).
        large_appends: The destination writes one large append faster than several small ones
            (DuckDB, set by the runtime): a first backfill's packages are then larger.
        fetch_ahead: Whether a resource may fetch its next package while dlt loads the last
            (set by a caller that takes every package or stops the run: `drop_ahead`).
        ahead: Per resource, its next package being fetched (`package_ahead.PackageFetch`).
    """

    totals: RunTotals = field(default_factory=RunTotals)
    client: ClientStats = field(default_factory=ClientStats)
    bots: dict[tuple[str, str], BotRun] = field(default_factory=dict)
    server_clock: ServerClock = field(default_factory=ServerClock)
    bot_keys: tuple[str, ...] = ()
    earlier_start: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)
    short_windows: list[str] = field(default_factory=list)
    records: dict[str, Any] = field(default_factory=dict)
    begun: dict[str, int] = field(default_factory=dict)
    empty_tables: frozenset[str] = frozenset()
    appending: dict[str, bool] = field(default_factory=dict)
    large_appends: bool = False
    fetch_ahead: bool = False
    ahead: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str, amount: int = 1) -> None:
        """Add `amount` to the total `name` (`windows`, `pages`, or any count of a resource)."""
        with self._lock:
            if name in ("windows", "pages"):
                setattr(self.totals, name, getattr(self.totals, name) + amount)
            else:
                self.totals.counted[name] = self.totals.counted.get(name, 0) + amount

    def record(self, resource: str, make: Callable[[], Record]) -> Record:
        """What `resource` keeps of this run besides its counts, made by `make` on first use."""
        with self._lock:
            if resource not in self.records:
                self.records[resource] = make()
            made: Record = self.records[resource]
            return made

    def bot(self, resource: str, bot_key: str) -> BotRun:
        """The run's record of one bot in one resource, made on first use."""
        return self.bots.setdefault((resource, bot_key), BotRun())

    def begin_package(self, resource: str) -> None:
        """Called as each resource's load package starts. The first resource to begin a package
        a round (a round: one package of every resource of the source, in any order) decides:
        the run goes on while a package of the previous round left more to fetch, and otherwise
        a new run begins (the same source run again). A resource beginning a package of a round
        already begun goes on whatever it finds (another resource may just have finished)."""
        packages = self.begun.get(resource, 0)
        first_of_round = packages >= max(self.begun.values(), default=0)
        if first_of_round and packages and not self.more_to_fetch:
            self.bots.clear()
            self.totals = RunTotals()
            self.client.reset()
            self.earlier_start.clear()
            self.short_windows.clear()
            self.records.clear()
            self.appending.clear()
            self.begun = {}
        self.begun[resource] = self.begun.get(resource, 0) + 1

    @property
    def more_to_fetch(self) -> bool:
        """Whether a bot's windows were cut, or a package is fetched ahead: another load
        package is due."""
        return bool(self.ahead) or any(bot.more_to_fetch for bot in self.bots.values())

    def has_more(self, resource: str, bot_key: str) -> bool:
        """Whether the bot's windows of `resource` were cut for a later package of this run."""
        bot = self.bots.get((resource, bot_key))
        return bot is not None and bot.more_to_fetch

    def more_of(self, resource: str) -> bool:
        """Whether a bot of `resource` has more left after this package (and it may fetch it
        while dlt loads this one)."""
        return self.fetch_ahead and any(
            bot.more_to_fetch for (name, _), bot in self.bots.items() if name == resource
        )

    def drop_ahead(self) -> None:
        """Stop every package fetched ahead (the run failed or ended): its state is dropped."""
        while self.ahead:
            _, fetch = self.ahead.popitem()
            fetch.stop()
