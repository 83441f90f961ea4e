"""What one run of the source owns, over all its load packages: counters, where each bot
stands, and the server's clock as its answers showed it.

The caller makes a `SourceRun`, hands it to the source and asks it, after each package,
whether more is left (`more_to_fetch`); the summary of the run is read from it (`totals`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime

from kore_sessions.source.api.client import ClientStats


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
        more_to_fetch: The bot's windows were cut at `windows_per_package`: another package is due.
        finished: Every window of this run is loaded; later packages leave the bot alone.
        open_at_start: Sessions open when the run began, refreshed at its end unless fetched.
        seen_open: Those of them fetched by a window of this run.
    """

    walked_through: datetime | None = None
    more_to_fetch: bool = False
    finished: bool = False
    open_at_start: set[str] | None = None
    seen_open: set[str] = field(default_factory=set)


@dataclass
class RunTotals:
    """What a run did, for progress and the summary."""

    windows: int = 0
    pages: int = 0
    sessions: int = 0
    refreshed: int = 0
    deleted: int = 0


@dataclass
class SourceRun:
    """One run of the source: give a new one to every run (a source run again starts anew).

    Attributes:
        totals: Windows, pages and sessions of the run.
        client: The HTTP client's counters (requests, retries, 429s) of the run.
        legacy_bots: Bots whose server answered in the pre-9.0 shape.
        undocumented_containment: Containment values the docs do not list, with their counts.
        bots: Where each bot stands, per resource: `{(resource, bot key): BotRun}`.
        server_clock: The server's clock as its answers showed it.
        bot_keys: The bots the source covers (`*`: every bot of the account), set by the source.
        earlier_start: Bots with state whose loaded range begins after the configured
            start_date: `(start_date, loaded_from)`. An incremental run does not go back there.
        unresolved: Open sessions found neither by id nor in their window, still refreshed, per bot.
        given_up: Open sessions unfound for UNRESOLVED_OPEN_PATIENCE, no longer refreshed, per bot.
        short_windows: Windows that stayed short of their total (what the run failed on).
    """

    totals: RunTotals = field(default_factory=RunTotals)
    client: ClientStats = field(default_factory=ClientStats)
    legacy_bots: set[str] = field(default_factory=set)
    undocumented_containment: dict[str, int] = field(default_factory=dict)
    bots: dict[tuple[str, str], BotRun] = field(default_factory=dict)
    server_clock: ServerClock = field(default_factory=ServerClock)
    bot_keys: tuple[str, ...] = ()
    earlier_start: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)
    unresolved: dict[str, list[str]] = field(default_factory=dict)
    given_up: dict[str, list[str]] = field(default_factory=dict)
    short_windows: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str, amount: int = 1) -> None:
        """Add `amount` to the total `name`."""
        with self._lock:
            setattr(self.totals, name, getattr(self.totals, name) + amount)

    def count_containment(self, value: str) -> None:
        """Count a containment value the docs do not list."""
        with self._lock:
            self.undocumented_containment[value] = self.undocumented_containment.get(value, 0) + 1

    def bot(self, resource: str, bot_key: str) -> BotRun:
        """The run's record of one bot in one resource, made on first use."""
        return self.bots.setdefault((resource, bot_key), BotRun())

    def begin_package(self) -> None:
        """Called as each load package starts: it continues the run while the previous package
        left more to fetch, and otherwise begins a new run (the same source run again)."""
        if self.more_to_fetch or not self.bots:
            return
        self.bots.clear()
        self.totals = RunTotals()
        self.client.reset()
        self.legacy_bots.clear()
        self.undocumented_containment.clear()
        self.earlier_start.clear()
        self.unresolved.clear()
        self.given_up.clear()
        self.short_windows.clear()

    @property
    def more_to_fetch(self) -> bool:
        """Whether a bot's windows were cut and another load package is due."""
        return any(bot.more_to_fetch for bot in self.bots.values())
