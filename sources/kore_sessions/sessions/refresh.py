"""Sessions fetched by id: open sessions brought up to date, held sessions verified, deletions.

The id lookup (50 ids a request) blanks session tags of sessions older than 14 days on the
server's clock, so a session older than the horizon is fetched by a small window around its
start_time instead, paged by the same `WindowPaging` as every other window; so is a session the
lookup neither returns nor calls invalid. Ids the API reports in `invalidSessions` are deleted
from the warehouse, and only those. An open session found in neither place stays in refresh for
a bounded time (`SessionsBotState.missed`), named in the summary, then is given up.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from kore_sessions.source.api.answers import Page
from kore_sessions.source.api.client import KoreClient
from kore_sessions.source.api.paging import IncompleteWindowError, PageCap, WindowPaging
from kore_sessions.source.api.rules import bot_label
from kore_sessions.source.api.run import SourceRun
from kore_sessions.source.api.windows import Window
from kore_sessions.source.sessions.endpoint import (
    SESSIONS_LISTING,
    AnswerShape,
    get_sessions_page,
    lookup_sessions,
)
from kore_sessions.source.sessions.open_sessions import SessionsBotState
from kore_sessions.source.sessions.records import is_legacy_shape, to_row
from kore_sessions.source.sessions.run_record import sessions_record
from kore_sessions.source.sessions.spec import DELETED_COLUMN, LOOKUP_TAGS_HORIZON, MAX_IDS_PER_LOOKUP

logger = logging.getLogger("kore_sessions")

# Half-width of the small window that refreshes a session too old for the id lookup.
POINT_WINDOW_HALF_WIDTH = timedelta(seconds=1)


@dataclass
class Refresher:
    """Fetches one bot's sessions by id for one run, sharing the bot's client, state, answer
    shape and page cap with its extractor."""

    client: KoreClient
    bot_key: str
    state: SessionsBotState
    run: SourceRun
    shape: AnswerShape
    cap: PageCap
    now: datetime

    def refresh_open_sessions(self) -> Iterator[dict[str, Any]]:
        """Bring every session open when the run began, and not fetched since, up to date."""
        stale = self.state.stale_open_sessions()
        before = self.run.totals.of("refreshed")
        yield from self.fetch_by_id(stale)
        for session_id in stale:
            if session_id in self.state.open_sessions and session_id not in self.state.seen_open:
                logger.warning(
                    "%s: open session %s was found neither by id nor in its window",
                    bot_label(self.bot_key),
                    session_id,
                )
                self.state.missed(session_id, self.now)
        if stale:
            fetched = self.run.totals.of("refreshed") - before  # the others: deleted, erased or not found
            logger.info("%s: refreshed %d of %d open sessions", bot_label(self.bot_key), fetched, len(stale))

    def verify_held(self, held: frozenset[str], listed: set[str]) -> Iterator[dict[str, Any]]:
        """Sessions the warehouse holds in repaired ranges that no window listed: fetched by id
        (their start_time may have moved), deleted only when the API calls them invalid."""
        unlisted = sorted(held - listed)
        if unlisted:
            logger.info("%s: %d sessions not listed, asked by id", bot_label(self.bot_key), len(unlisted))
        yield from self.fetch_by_id(dict.fromkeys(unlisted))

    def fetch_by_id(self, sessions: dict[str, datetime | None]) -> Iterator[dict[str, Any]]:
        """Fetch sessions by id, `{session_id: start_time if known}`: by lookup, or by window
        when older than the horizon (after a lookup when their start_time is not known).

        The horizon is taken from the later of the loader's now and the server's newest start:
        an uncertain age errs toward the window, which is always right (only dearer).
        """
        server_now = self.run.server_clock.latest
        horizon = max(self.now, server_now or self.now) - LOOKUP_TAGS_HORIZON
        old = {s: started for s, started in sessions.items() if started is not None and started < horizon}
        ids = sorted(set(sessions) - set(old))
        for start in range(0, len(ids), MAX_IDS_PER_LOOKUP):
            chunk = ids[start : start + MAX_IDS_PER_LOOKUP]
            answered: set[str] = set()
            for row in self._lookup(chunk):
                answered.add(row["session_id"])
                if row.get(DELETED_COLUMN) is None and row["start_time"] < horizon:
                    old[row["session_id"]] = row["start_time"]
                    continue
                self._fetched(row)
                yield row
            for session_id in chunk:  # neither returned nor invalid: read where it started
                if session_id not in answered and sessions[session_id] is not None:
                    old[session_id] = sessions[session_id]
        for session_id, started in sorted(old.items()):
            yield from self._by_window(session_id, started)

    def _fetched(self, row: dict[str, Any]) -> None:
        """Track a session fetched by id and count it."""
        if not row.get(DELETED_COLUMN):
            self.state.track(row)
            self.run.add("refreshed")

    def _lookup(self, session_ids: list[str]) -> Iterator[dict[str, Any]]:
        """Sessions by id as the lookup gives them, and deletions of the ids it calls invalid."""
        page = lookup_sessions(self.client, self.bot_key, session_ids)
        self.run.add("pages")
        asked = set(session_ids)
        for raw in page.records:
            row = to_row(raw)
            self.run.server_clock.observe(row["start_time"])
            if row["session_id"] in asked:
                yield row
        for session_id in asked.intersection(page.invalid_ids):
            yield self._deletion(session_id)

    def _by_window(self, session_id: str, started: datetime) -> Iterator[dict[str, Any]]:
        """Fetch a session through the small window around its start_time (keeps its tags)."""
        window = Window(started - POINT_WINDOW_HALF_WIDTH, started + POINT_WINDOW_HALF_WIDTH)
        for raw, containment_type in self._window_sessions(window):
            if raw.get("sessionId") == session_id:
                row = to_row(raw, containment_type)
                self.run.server_clock.observe(row["start_time"])
                self._fetched(row)
                yield row
                return

    def _window_sessions(self, window: Window) -> Iterator[tuple[dict[str, Any], str | None]]:
        """Raw sessions of one small window; asked again per containment type if its answer
        shows the pre-9.0 shape."""
        if not self.shape.legacy:
            pages = list(self._pages(window, None))
            if not any(is_legacy_shape(page.records) for page in pages):
                yield from ((raw, None) for page in pages for raw in page.records)
                return
            mark_legacy(self.shape, self.run, self.bot_key)
        for containment_type in self.shape.containment_types:
            yield from (
                (raw, containment_type)
                for page in self._pages(window, containment_type)
                for raw in page.records
            )

    def _pages(self, window: Window, containment_type: str | None) -> Iterator[Page]:
        """Every page of a window, one request after another (counted in the run)."""
        for page in window_pages(self.client, self.bot_key, window, self.cap, containment_type):
            self.run.add("pages")
            yield page

    def _deletion(self, session_id: str) -> dict[str, Any]:
        """A row that deletes a session the API reports it no longer has."""
        self.state.forget(session_id)
        self.run.add("deleted")
        logger.warning(
            "%s: session %s is no longer known to the API; deleting it from the warehouse",
            bot_label(self.bot_key),
            session_id,
        )
        return {"session_id": session_id, DELETED_COLUMN: True}


def window_pages(
    client: KoreClient,
    bot_key: str,
    window: Window,
    cap: PageCap,
    containment_type: str | None = None,
    call_id: str | None = None,
) -> Iterator[Page]:
    """Every page of one window, one request after another, as its `WindowPaging` plans them.

    Raises:
        IncompleteWindowError: the window stayed short of its total in every reading.
    """
    label = f"{bot_label(bot_key)}: window {window}"
    paging = WindowPaging(0, containment_type, cap, SESSIONS_LISTING, label)
    queue = deque([paging.first()])
    while queue:
        request = queue.popleft()
        page = get_sessions_page(client, bot_key, window, request, call_id)
        yield page
        queue.extend(paging.take(request, page))
    if paging.shortfall:
        raise IncompleteWindowError(paging.shortfall)


def mark_legacy(shape: AnswerShape, run: SourceRun, bot_key: str) -> None:
    """Remember (and say once) that the server answers in the pre-9.0 shape."""
    shape.legacy = True
    sessions_record(run).legacy_bots.add(bot_key)
    logger.warning(
        "%s: the server answers in the pre-9.0 shape (containment in sessionType); "
        "asking once per containment type",
        bot_label(bot_key),
    )
