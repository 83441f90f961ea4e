"""The sessions' completeness counts: a bot's sessions that started in a range, as the API
counts them (the `total` of one request, `limit` 1).

The rules of the counts (UTC day slices, stretches under 7 days, counts narrowed by halving)
are every resource's, in `kore_sessions.source.api.day_counts`; they are named here too, where
the sessions' audit has always found them.
"""

from __future__ import annotations

from datetime import datetime

from kore_sessions.source.api.answers import Page
from kore_sessions.source.api.client import KoreClient
from kore_sessions.source.api.day_counts import (
    RELOAD_PAGES_WORTH_A_SPLIT,
    SPAN_A_SERVER_MAY_ROUND_UP,
    TICK,
    Counter,
    DaySlice,
    SpanCounter,
    api_day_counts,
    day_slices,
    listing_total,
    ranges_to_reload,
    stretches,
)
from kore_sessions.source.api.paging import PageRequest
from kore_sessions.source.api.windows import Window
from kore_sessions.source.sessions.endpoint import SESSIONS_LISTING, get_sessions_page

__all__ = [
    "RELOAD_PAGES_WORTH_A_SPLIT",
    "SPAN_A_SERVER_MAY_ROUND_UP",
    "TICK",
    "Counter",
    "DaySlice",
    "SessionCounter",
    "api_day_counts",
    "count_sessions",
    "day_slices",
    "ranges_to_reload",
    "stretches",
]


class SessionCounter(SpanCounter):
    """Counts a bot's sessions in a range, one request each (two for a server that refuses a
    stretch of 7 whole days)."""

    def __init__(self, client: KoreClient, page_size: int) -> None:
        """Count through `client`; `page_size` only for a server that sends no total."""
        super().__init__()
        self.client = client
        self.page_size = page_size

    def count_once(self, bot_key: str, start: datetime, end: datetime) -> int:
        """The API's count of a bot's sessions that started in [start, end], one request."""
        return count_sessions(self.client, bot_key, start, end, self.page_size)


def count_sessions(client: KoreClient, bot_key: str, start: datetime, end: datetime, page_size: int) -> int:
    """The API's count of a bot's sessions that started in [start, end] (under 7 days): the
    `total` of one request (a server that sends no total is paged through instead)."""
    window = Window(start, end)

    def fetch(skip: int, limit: int) -> Page:
        return get_sessions_page(client, bot_key, window, PageRequest(0, None, skip, limit))

    return listing_total(fetch, SESSIONS_LISTING.id_key, page_size)
