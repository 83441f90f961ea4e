"""What every resource's walk of windows shares: the ledger of the rows each window gave, and
the pool that runs every bot's requests at once. State changes all happen in the caller's thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any, Protocol

from kore_sessions.source.api.answers import Page
from kore_sessions.source.api.paging import PageRequest
from kore_sessions.source.api.pool import RequestPool
from kore_sessions.source.api.settings import MAX_WORKERS
from kore_sessions.source.api.windows import Window


class Extractor(Protocol):
    """One bot's walk of one resource's windows, fed its answers in any order."""

    def plan(self) -> list[PageRequest]:
        """The first requests."""
        ...

    def call(self, request: PageRequest) -> Callable[[], Page]:
        """The client call that answers a request."""
        ...

    def handle(self, request: PageRequest, page: Page) -> tuple[list[dict[str, Any]], list[PageRequest]]:
        """Take one answer: the new rows it holds and the requests it makes necessary."""
        ...


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

    def close(self, index: int) -> tuple[int, datetime | None]:
        """A complete window: how many rows it gave and the newest time (then forgotten)."""
        return len(self.given.pop(index, ())), self.newest.pop(index, None)


def fetch_concurrently(
    extractors: Mapping[str, Extractor], max_in_flight: int
) -> Iterator[list[dict[str, Any]]]:
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
