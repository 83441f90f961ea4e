"""What every resource's walk of windows shares: the walk of one bot's windows (`WindowWalk`),
the ledger of the rows each window gave, and the pool that runs every bot's requests at once.
State changes all happen in the caller's thread.

A resource subclasses `WindowWalk` with its call (`call`), its rows (`to_row`) and, if it needs
them, its variants (filters a window is asked in) and what it does with each row (`took`). A
resource that builds pages column by column (`columns`) has them walked without Python per
record (`took_page`); a page its builder does not take goes row by row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from itertools import compress
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc

from kore_sessions.source.api.answers import Page
from kore_sessions.source.api.columns import TIMESTAMP
from kore_sessions.source.api.cursor import BotState
from kore_sessions.source.api.page_columns import ColumnarPage, newest
from kore_sessions.source.api.paging import Listing, PageCap, PageRequest, WindowPaging
from kore_sessions.source.api.pool import RequestPool
from kore_sessions.source.api.rules import MAX_WORKERS, bot_label
from kore_sessions.source.api.run import ServerClock, SourceRun
from kore_sessions.source.api.windows import Window, kept_with_tail

logger = logging.getLogger("kore_sessions")

# The new records of one answer: rows of the record transform, or the page built column by column.
Rows = list[dict[str, Any]] | ColumnarPage


class Extractor(Protocol):
    """One bot's walk of one resource's windows, fed its answers in any order."""

    def plan(self) -> list[PageRequest]:
        """The first requests."""
        ...

    def call(self, request: PageRequest) -> Callable[[], Page]:
        """The client call that answers a request."""
        ...

    def handle(self, request: PageRequest, page: Page) -> tuple[Rows, list[PageRequest]]:
        """Take one answer: the new rows it holds and the requests it makes necessary."""
        ...


class ResourceHooks:
    """What a resource gives the walk of its windows: its call and its rows (its own), and,
    if it needs them, a page built column by column, the variants a window is asked in, and
    what it does with the records a window gives."""

    def call(self, request: PageRequest) -> Callable[[], Page]:
        """The client call that answers a request (the resource's own)."""
        raise NotImplementedError

    def to_row(self, raw: dict[str, Any], request: PageRequest) -> dict[str, Any]:
        """One raw record of an answer as a row (the resource's own)."""
        raise NotImplementedError

    def columns(self, records: list[dict[str, Any]], request: PageRequest) -> ColumnarPage | None:
        """A page built column by column, or None for the record transform (the default)."""
        return None

    def variants(self) -> tuple[str | None, ...]:
        """The filters each window is asked in: none by default."""
        return (None,)

    def took(self, row: dict[str, Any]) -> None:
        """A row a window gave (the resource may track it); nothing by default."""

    def took_page(self, page: ColumnarPage) -> None:
        """The records a window gave of a page built column by column; nothing by default."""


@dataclass(eq=False)
class WindowWalk(ResourceHooks):
    """One bot's walk of one resource's windows for one load package, fed answers in any order.

    `plan` gives the first request (the oldest window's first page: the answers' shape, the
    page cap), `handle` takes each answer and gives the rows to load and the requests to send
    next. The cursor moves over windows complete in order (a bounded walk leaves it alone); a
    window short of its total stops the bot for the run.

    Attributes:
        bot_key: The bot (or `*`, every bot of the account).
        state: The bot's state in the resource.
        run: The source's run.
        cap: The server's page cap, shared by every window of the run.
        listing: What the pages list, and the row columns that tell rows apart and place them.
        windows: The windows of this package, oldest first.
        bounded: A backfill or a repair: it moves no cursor.
        most_records: About how many records the package may hold of the bot: after its first
            window it keeps as many of its windows as hold that many at that window's count
            (and a short tail that ends the walk), the rest go to the next package (None: all).
        least_windows: The fewest windows a package cut by `most_records` keeps.
    """

    bot_key: str
    state: BotState
    run: SourceRun
    cap: PageCap
    listing: Listing
    windows: list[Window]
    bounded: bool
    most_records: int | None = None
    least_windows: int = 1
    generation: int = 0
    pagings: dict[tuple[int, str | None], WindowPaging] = field(default_factory=dict)
    complete_through: int = 0
    stopped: bool = False
    later_planned: bool = False

    def __post_init__(self) -> None:
        """An empty ledger for the walk's windows."""
        self.ledger = WindowLedger(self.windows, self.listing.id_column, self.listing.time_column)

    def plan(self) -> list[PageRequest]:
        """The first request: the oldest window's first page, which also shows the answer's shape."""
        return [self.first_page(0, None)] if self.windows else []

    def handle(self, request: PageRequest, page: Page) -> tuple[Rows, list[PageRequest]]:
        """Take one answer: the new rows it holds and the requests it makes necessary."""
        if request.generation != self.generation:
            return [], []  # asked before the walk started again (a new shape of the answers)
        self.run.add("pages")
        built = self.columns(page.records, request)
        ids = None if built is None else built.column(self.listing.id_column).to_pylist()
        if built is None or ids is None or len(set(ids)) < len(ids):  # a record twice: row by row
            rows, ids = self.new_rows(request, page), None
        else:
            rows = self.new_columns(request, page, built, ids)
        paging = self.pagings[(request.window_index, request.variant)]
        follow_ups = paging.take(request, page, ids)
        if paging.done:
            follow_ups += self._window_done()
        return rows, follow_ups

    def first_page(self, window_index: int, variant: str | None) -> PageRequest:
        """The first page of a window, its paging started afresh."""
        asked_in = f" ({variant})" if variant else ""
        label = f"{bot_label(self.bot_key)}: window {self.windows[window_index]}{asked_in}"
        paging = WindowPaging(window_index, variant, self.cap, self.listing, label, self.generation)
        self.pagings[(window_index, variant)] = paging
        return paging.first()

    def start_again(self) -> list[PageRequest]:
        """Walk the package's windows again from the first (answers still in flight are stale)."""
        self.generation += 1
        self.pagings.clear()
        self.ledger = WindowLedger(self.windows, self.listing.id_column, self.listing.time_column)
        self.complete_through = 0
        self.later_planned = False
        return [self.first_page(0, variant) for variant in self.variants()]

    def new_rows(self, request: PageRequest, page: Page) -> list[dict[str, Any]]:
        """Rows of records this window owns and has not given yet."""
        rows = []
        for raw in page.records:
            row = self.to_row(raw, request)
            self.run.server_clock.observe(row[self.listing.time_column])
            if self.ledger.take(request.window_index, row):
                self.took(row)
                rows.append(row)
        self.run.add(self.listing.noun, len(rows))
        return rows

    def new_columns(self, request: PageRequest, page: Page, built: ColumnarPage, ids: list[str]) -> Rows:
        """A built page's records (`ids`, each once) the window owns and has not given, as rows
        when only some are kept of a page with extra fields (typed by the records kept)."""
        times = built.column(self.listing.time_column)
        mask = self.ledger.take_page(request.window_index, ids, times, self.run.server_clock)
        self.took_page(kept := built.select(mask))
        self.run.add(self.listing.noun, len(kept))
        if built.extras and len(kept) < len(built):
            return [self.to_row(raw, request) for raw in compress(page.records, mask.to_pylist())]
        return kept

    def _window_done(self) -> list[PageRequest]:
        """A window is complete: move over the windows complete in order; after the first one
        (which showed the shape of the answers), ask for every other window."""
        self._advance()
        if self.later_planned:
            return []
        self.later_planned = True
        self._fit_package()
        later = range(1, len(self.windows))
        return [self.first_page(index, variant) for index in later for variant in self.variants()]

    def _fit_package(self) -> None:
        """Before the later windows are asked (nothing of them is): keep as many as hold about
        `most_records` at the first window's count, at least `least_windows`, and a short tail."""
        if self.most_records is None or len(self.windows) < 2 or self.stopped:
            return  # a stopped walk (a window short of its total) has no next package
        first = self.ledger.count(0)
        keep = max(self.least_windows, self.most_records // first) if first else len(self.windows)
        keep = keep if self.state.bot.more_to_fetch else kept_with_tail(self.windows, keep)  # none beyond
        if keep < len(self.windows):
            del self.windows[keep:]  # the ledger's list too
            self.state.bot.more_to_fetch = True

    def _advance(self) -> None:
        """Move over the windows complete in every variant, in order. A window short of its
        total stops the bot there for the run: the cursor stays before it, and no later package
        of the run walks on (the run then fails, naming it)."""
        while self.complete_through < len(self.windows) and not self.stopped:
            index = self.complete_through
            pagings = [self.pagings.get((index, variant)) for variant in self.variants()]
            if not all(paging and paging.done for paging in pagings):
                return
            shortfalls = [paging.shortfall for paging in pagings if paging and paging.shortfall]
            if shortfalls:
                self.stopped = True
                self.state.bot.more_to_fetch = False
                self.run.short_windows.extend(shortfalls)
                return
            self.complete_through += 1
            self.run.add("windows")
            given, newest = self.ledger.close(index)
            noun = self.listing.noun
            logger.info("%s: window %s: %d %s", bot_label(self.bot_key), self.windows[index], given, noun)
            if self.bounded:  # no cursor moves; a later package of the range resumes there
                self.state.bot.walked_through = self.windows[index].end
            else:
                self.state.window_complete(self.windows[index], newest)


class WindowLedger:
    """Which records each open window has given, and the newest of them.

    A window after the first overlaps its predecessor; a record is given by the window that
    owns its time, once (pages and variants may show it again).
    """

    def __init__(self, windows: list[Window], id_column: str, time_column: str) -> None:
        """An empty ledger for these windows, telling rows apart and placing them by the columns
        named."""
        self.windows = windows
        self.id_column = id_column
        self.time_column = time_column
        self.given: dict[int, set[str]] = {}
        self.newest: dict[int, datetime] = {}
        self.closed: dict[int, int] = {}

    def take(self, index: int, row: dict[str, Any]) -> bool:
        """Whether window `index` gives this row now (it owns it and has not given it)."""
        given = self.given.setdefault(index, set())
        started, key = row[self.time_column], row[self.id_column]
        if key in given or not self.windows[index].owns(started):
            return False
        given.add(key)
        if index not in self.newest or started > self.newest[index]:
            self.newest[index] = started
        return True

    def take_page(self, index: int, keys: list[str], times: pa.Array, clock: ServerClock) -> pa.BooleanArray:
        """Which records of a page window `index` gives now: those it owns and has not given.

        Args:
            index: The window.
            keys: The page's record ids, each once.
            times: Their times, in the same order.
            clock: The server's clock, shown the page's newest time.
        """
        clock.observe(newest(times))
        given = self.given.setdefault(index, set())
        window = self.windows[index]
        owned_after = window.owned_after
        mask = pc.invert(pa.array(list(map(given.__contains__, keys)), pa.bool_()))
        mask = pc.and_(mask, pc.less_equal(times, pa.scalar(window.end, TIMESTAMP)))  # as `Window.owns`
        if owned_after is not None:
            mask = pc.and_(mask, pc.greater(times, pa.scalar(owned_after, TIMESTAMP)))
        given.update(compress(keys, mask.to_pylist()))
        latest = newest(times.filter(mask))
        if latest is not None and (index not in self.newest or latest > self.newest[index]):
            self.newest[index] = latest
        return mask

    def close(self, index: int) -> tuple[int, datetime | None]:
        """A complete window: how many rows it gave and the newest time (its ids then forgotten)."""
        self.closed[index] = len(self.given.pop(index, ()))
        return self.closed[index], self.newest.pop(index, None)

    def count(self, index: int) -> int:
        """How many rows window `index` has given: in all once closed, else so far."""
        return self.closed.get(index, len(self.given.get(index, ())))


def fetch_concurrently(extractors: Mapping[str, Extractor], max_in_flight: int) -> Iterator[Rows]:
    """Every window of every bot, bots in parallel and up to `max_in_flight` requests a bot.

    Yields the rows of each answer as it comes; a failed request raises here, before the
    state of its bot (committed only with a finished load) can move past it.
    """
    workers = min(MAX_WORKERS, max_in_flight * max(1, len(extractors)))
    with RequestPool[PageRequest](max_in_flight, workers) as pool:
        for bot_key, extractor in extractors.items():
            for request in extractor.plan():
                pool.submit(bot_key, request, extractor.call(request))
        for bot_key, request, page in pool.completed():
            extractor = extractors[bot_key]
            rows, follow_ups = extractor.handle(request, page)
            for follow_up in follow_ups:
                pool.submit(bot_key, follow_up, extractor.call(follow_up))
            if rows:
                yield rows
