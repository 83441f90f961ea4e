"""The walk of one bot's windows: paging, pre-9.0 detection, refresh of open sessions, state.

State of one bot (in the `sessions` resource's dlt state, committed with the load package):
`cursor`, the instant up to which every window has been fetched, and `open_sessions`,
`{session_id: start_time}` of sessions last seen active, refreshed on every run until closed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import partial
from typing import Any

from .client import ClientStats, KoreApiError, KoreClient, SessionsPage
from .config import RunConfig
from .pool import RequestPool
from .records import format_api_timestamp, is_legacy_shape, parse_timestamp, to_row
from .settings import (
    ALL_BOTS_KEY,
    CONTAINMENT_TYPES,
    DELETED_COLUMN,
    LOOKUP_TAGS_HORIZON,
    MAX_IDS_PER_LOOKUP,
    MAX_WORKERS,
    STATUS_ACTIVE,
    UNKNOWN_STATUS_QUIET_PERIOD,
)
from .windows import Window, incremental_start, plan_windows

logger = logging.getLogger("kore_sessions")

# Readings of a window whose sessions came out fewer than the API's total (the list moved).
MAX_WINDOW_ATTEMPTS = 3
# Half-width of the small window that refreshes an open session too old for the id lookup.
POINT_WINDOW_HALF_WIDTH = timedelta(seconds=1)


@dataclass
class ExtractStats:
    """What the source did in one run, for progress and the summary."""

    windows: int = 0
    pages: int = 0
    sessions: int = 0
    refreshed: int = 0
    deleted: int = 0
    legacy_bots: set[str] = field(default_factory=set)
    more_to_fetch: bool = False
    undocumented_containment: dict[str, int] = field(default_factory=dict)
    client: ClientStats = field(default_factory=ClientStats)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str, amount: int = 1) -> None:
        """Add `amount` to the counter `name`."""
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)


def bot_label(bot_key: str) -> str:
    """How a bot key reads in messages."""
    return "all bots" if bot_key == ALL_BOTS_KEY else f"bot {bot_key}"


@dataclass(frozen=True)
class PageRequest:
    """One getSessions call of a bot's run: a page of one window (and containment type)."""

    window_index: int
    containment_type: str | None
    skip: int
    limit: int
    generation: int


@dataclass
class WindowProgress:
    """What is known of one window (and containment type) while its pages come in."""

    ids: set[str] = field(default_factory=set)
    outstanding: set[int] = field(default_factory=set)
    frontier: int = 0
    frontier_more: bool = False
    total: int | None = None
    attempts: int = 1
    done: bool = False


class PageCap:
    """The largest page the server returns, learned from the first page it cut short."""

    def __init__(self, page_size: int) -> None:
        """Start from the page size asked for."""
        self.page_size = page_size
        self.learned: int | None = None

    @property
    def limit(self) -> int:
        """What to ask for: the page size, or the server's cap once known."""
        return min(self.page_size, self.learned) if self.learned else self.page_size

    def learn(self, asked: int, page: SessionsPage) -> None:
        """A page shorter than asked while more is available shows the server's cap."""
        got = len(page.sessions)
        if page.more_available and 0 < got < asked and (self.learned is None or got > self.learned):
            self.learned = got
            logger.info("the server returns at most %d sessions a page; planning with that", got)


class BotExtractor:
    """Fetches one bot's sessions for one run and keeps its state up to date.

    Windows are fetched concurrently: `plan` gives the first request, `handle` takes each
    answer (in any order) and gives the rows to load and the requests to send next, and
    `finish` refreshes the open sessions. The cursor only moves over windows that are
    complete, together with every window before them.
    """

    def __init__(
        self,
        client: KoreClient,
        bot_key: str,
        bot_state: dict[str, Any],
        config: RunConfig,
        stats: ExtractStats,
        cap: PageCap | None = None,
    ) -> None:
        self.client = client
        self.bot_key = bot_key
        self.state = bot_state
        self.config = config
        self.stats = stats
        self.cap = cap or PageCap(config.page_size)
        self.now = config.clock()
        self.legacy = False
        self.generation = 0
        self.open_sessions: dict[str, str] = dict(bot_state.get("open_sessions") or {})
        self.previously_open = set(self.open_sessions)
        self.seen_open: set[str] = set()
        self.windows: list[Window] = self.plan_windows()
        self.progress: dict[tuple[int, str | None], WindowProgress] = {}
        self.window_ids: dict[int, set[str]] = {}
        self.complete_through = 0
        self.later_planned = False

    def plan_windows(self) -> list[Window]:
        """The windows of this run: the bounded range, or from the cursor less lookback to now."""
        config = self.config
        if config.bounded:
            return plan_windows(config.start_date, config.end_date, config.window_span)
        cursor = parse_timestamp(self.state.get("cursor"))
        start = incremental_start(cursor, config.start_date, config.lookback)
        windows = plan_windows(start, self.now, config.window_span)
        if len(windows) > config.windows_per_run:
            # A long backfill goes in several load packages: bounded memory in the load, and
            # the work done survives a crash. The caller runs again while more is left.
            self.stats.more_to_fetch = True
            windows = windows[: config.windows_per_run]
        return windows

    def plan(self) -> list[PageRequest]:
        """The first request: the oldest window's first page, which also shows the answer's shape."""
        return [self._first_page(0, None)] if self.windows else []

    def call(self, request: PageRequest) -> Callable[[], SessionsPage]:
        """The client call that answers a request."""
        window = self.windows[request.window_index]
        return partial(
            self.client.get_sessions_page,
            self.bot_key,
            window.start,
            window.end,
            request.skip,
            request.limit,
            request.containment_type,
        )

    def handle(
        self, request: PageRequest, page: SessionsPage
    ) -> tuple[list[dict[str, Any]], list[PageRequest]]:
        """Take one answer: the new rows it holds and the requests it makes necessary."""
        if request.generation != self.generation:
            return [], []  # asked before the server turned out to answer in the pre-9.0 shape
        self.stats.add("pages")
        if request.skip == 0 and not self.legacy and is_legacy_shape(page.sessions):
            return [], self._switch_to_legacy()
        key = (request.window_index, request.containment_type)
        progress = self.progress[key]
        progress.outstanding.discard(request.skip)
        rows = self._new_rows(request, page, progress)
        self.cap.learn(request.limit, page)
        return rows, self._next_requests(request, page, progress)

    def finish(self) -> Iterator[dict[str, Any]]:
        """After every window: refresh the open sessions not seen this run and save the state."""
        if not self.config.bounded:
            yield from self._refresh_open_sessions()
        self._save_open_sessions()

    def _first_page(self, window_index: int, containment_type: str | None) -> PageRequest:
        """The first page of a window, with its progress started afresh."""
        self.progress[(window_index, containment_type)] = WindowProgress(outstanding={0})
        return PageRequest(window_index, containment_type, 0, self.cap.limit, self.generation)

    def _new_rows(
        self, request: PageRequest, page: SessionsPage, progress: WindowProgress
    ) -> list[dict[str, Any]]:
        """Rows of sessions this window owns and has not given yet."""
        window = self.windows[request.window_index]
        given = self.window_ids.setdefault(request.window_index, set())
        rows = []
        for raw in page.sessions:
            row = to_row(raw, request.containment_type)
            session_id = row["session_id"]
            progress.ids.add(session_id)
            if session_id in given or not window.owns(row["start_time"]):
                continue
            given.add(session_id)
            self._track(row)
            rows.append(row)
        self.stats.add("sessions", len(rows))
        return rows

    def _next_requests(
        self, request: PageRequest, page: SessionsPage, progress: WindowProgress
    ) -> list[PageRequest]:
        """Pages still to ask for; once none are left, the window is checked and closed."""
        got = len(page.sessions)
        self._refuse_endless_paging(page, request.skip)
        if page.total is not None:
            progress.total = max(progress.total or 0, page.total)
        end = request.skip + got
        if end >= progress.frontier:
            progress.frontier, progress.frontier_more = end, page.more_available
        skips: list[int] = []
        if request.skip == 0 and page.more_available and progress.total and self.cap.learned:
            skips = list(range(end, progress.total, self.cap.learned))
        if not skips and not progress.outstanding and progress.frontier_more:
            skips = [progress.frontier]
        if not skips and not progress.outstanding:
            return self._close(request, progress)
        progress.outstanding.update(skips)
        limit = self.cap.limit
        return [replace(request, skip=skip, limit=limit) for skip in skips]

    def _close(self, request: PageRequest, progress: WindowProgress) -> list[PageRequest]:
        """Check a finished window against the total the API gave; read it again if short.

        Only when the pages reached the total and still held fewer distinct sessions (the list
        moved while it was paged); a server whose `total` disagrees with its own paging is
        trusted on `moreAvailable`, not asked again.
        """
        moved = progress.total is not None and progress.frontier >= progress.total > len(progress.ids)
        if moved:
            if progress.attempts < MAX_WINDOW_ATTEMPTS:
                logger.warning(
                    "%s: window %s gave %d of %d sessions (the list moved while paging); reading again",
                    bot_label(self.bot_key),
                    self.windows[request.window_index],
                    len(progress.ids),
                    progress.total,
                )
                attempts = progress.attempts + 1
                again = self._first_page(request.window_index, request.containment_type)
                self.progress[(request.window_index, request.containment_type)].attempts = attempts
                return [again]
            logger.warning(
                "%s: window %s still gives %d of %d sessions after %d readings",
                bot_label(self.bot_key),
                self.windows[request.window_index],
                len(progress.ids),
                progress.total,
                progress.attempts,
            )
        progress.done = True
        progress.ids = set()  # only needed while the window is open: memory stays bounded
        self._advance_cursor()
        if self.later_planned:
            return []
        self.later_planned = True
        return self._later_first_pages()

    def _later_first_pages(self) -> list[PageRequest]:
        """After the first window showed the shape of the answers, every other window."""
        types = CONTAINMENT_TYPES if self.legacy else (None,)
        return [
            self._first_page(index, containment_type)
            for index in range(1, len(self.windows))
            for containment_type in types
        ]

    def _advance_cursor(self) -> None:
        """Move the cursor over the windows complete in every containment type, in order."""
        types = CONTAINMENT_TYPES if self.legacy else (None,)
        while self.complete_through < len(self.windows):
            index = self.complete_through
            if not all(self.progress.get((index, t), WindowProgress()).done for t in types):
                return
            self.complete_through += 1
            self.stats.add("windows")
            logger.info(
                "%s: window %s: %d sessions",
                bot_label(self.bot_key),
                self.windows[index],
                len(self.window_ids.pop(index, ())),
            )
            if not self.config.bounded:
                self.state["cursor"] = format_api_timestamp(self.windows[index].end)

    def _window_sessions(self, window: Window) -> Iterator[tuple[dict[str, Any], str | None]]:
        """Raw sessions of one small window, page after page (refresh of old open sessions)."""
        if not self.legacy:
            pages = list(self._pages(window, None))
            if not any(is_legacy_shape(page.sessions) for page in pages):
                for page in pages:
                    yield from ((raw, None) for raw in page.sessions)
                return
            self._mark_legacy()
        for containment_type in CONTAINMENT_TYPES:
            for page in self._pages(window, containment_type):
                yield from ((raw, containment_type) for raw in page.sessions)

    def _pages(self, window: Window, containment_type: str | None) -> Iterator[SessionsPage]:
        """Every page of a window, advancing skip by the sessions actually returned."""
        skip = 0
        while True:
            page = self.client.get_sessions_page(
                self.bot_key, window.start, window.end, skip, self.cap.limit, containment_type
            )
            self.stats.add("pages")
            yield page
            if not page.more_available:
                return
            self._refuse_endless_paging(page, skip)
            skip += len(page.sessions)

    def _refuse_endless_paging(self, page: SessionsPage, skip: int) -> None:
        """Fail on a page that says more is available but holds nothing (it would loop)."""
        if page.more_available and not page.sessions:
            raise KoreApiError(
                f"{bot_label(self.bot_key)}: the API said moreAvailable at skip={skip} "
                "but returned no sessions; stopping rather than looping"
            )

    def _switch_to_legacy(self) -> list[PageRequest]:
        """Ask per containment type from now on: the server answers in the pre-9.0 shape.

        Only first pages with sessions show the shape, so nothing was loaded before; requests
        still in flight belong to the old generation and are ignored when they come back.
        """
        self._mark_legacy()
        self.generation += 1
        self.progress.clear()
        self.window_ids.clear()
        self.complete_through = 0
        self.later_planned = False
        return [self._first_page(0, containment_type) for containment_type in CONTAINMENT_TYPES]

    def _mark_legacy(self) -> None:
        """Remember (and say once) that the server answers in the pre-9.0 shape."""
        self.legacy = True
        self.stats.legacy_bots.add(self.bot_key)
        logger.warning(
            "%s: the server answers in the pre-9.0 shape (containment in sessionType); "
            "asking once per containment type",
            bot_label(self.bot_key),
        )

    def _track(self, row: dict[str, Any]) -> None:
        """Remember active sessions for refresh, forget closed ones; count odd containments."""
        containment = row.get("containment_type")
        if containment is not None and containment not in CONTAINMENT_TYPES:
            counts = self.stats.undocumented_containment
            counts[containment] = counts.get(containment, 0) + 1
        session_id = row["session_id"]
        if session_id in self.previously_open:
            self.seen_open.add(session_id)
        if self._may_be_open(row):
            self.open_sessions[session_id] = format_api_timestamp(row["start_time"])
        else:
            self.open_sessions.pop(session_id, None)

    def _may_be_open(self, row: dict[str, Any]) -> bool:
        """Active, or of unknown status (pre-9.0) with activity in the last quiet period."""
        status = row.get("session_status")
        if status is not None:
            return status == STATUS_ACTIVE
        end_time = row.get("end_time")
        return end_time is None or end_time >= self.now - UNKNOWN_STATUS_QUIET_PERIOD

    def _save_open_sessions(self) -> None:
        """Write the open sessions into the bot's state."""
        self.state["open_sessions"] = dict(sorted(self.open_sessions.items()))

    def _refresh_open_sessions(self) -> Iterator[dict[str, Any]]:
        """Bring every session last seen active and not re-fetched this run up to date."""
        stale = sorted(self.previously_open - self.seen_open)
        horizon = self.now - LOOKUP_TAGS_HORIZON
        recent = [s for s in stale if parse_timestamp(self.open_sessions[s]) >= horizon]
        old = sorted(set(stale) - set(recent))
        for start in range(0, len(recent), MAX_IDS_PER_LOOKUP):
            yield from self._lookup(recent[start : start + MAX_IDS_PER_LOOKUP])
        for session_id in old:
            yield from self._refresh_by_window(session_id)
        if stale:
            logger.info("%s: refreshed %d open sessions", bot_label(self.bot_key), len(stale))

    def _lookup(self, session_ids: list[str]) -> Iterator[dict[str, Any]]:
        """Refresh sessions by id; ids the API no longer knows are deleted from the warehouse."""
        page = self.client.lookup_sessions(self.bot_key, session_ids)
        self.stats.add("pages")
        asked = set(session_ids)
        for raw in page.sessions:
            row = to_row(raw)
            if row["session_id"] in asked:
                self._track(row)
                self.stats.add("refreshed")
                yield row
        for session_id in asked.intersection(page.invalid_sessions):
            yield self._deletion(session_id)

    def _refresh_by_window(self, session_id: str) -> Iterator[dict[str, Any]]:
        """Refresh an open session older than the id lookup's tag horizon through its window.

        The id lookup returns session tags only for the last 14 days, so an older session is
        fetched by a window around its start_time to keep its tags.
        """
        started = parse_timestamp(self.open_sessions[session_id])
        window = Window(started - POINT_WINDOW_HALF_WIDTH, started + POINT_WINDOW_HALF_WIDTH)
        for raw, containment_type in self._window_sessions(window):
            if raw.get("sessionId") == session_id:
                row = to_row(raw, containment_type)
                self._track(row)
                self.stats.add("refreshed")
                yield row
                return
        self.open_sessions.pop(session_id, None)
        logger.warning(
            "%s: open session %s was not found around its start_time; no longer refreshed",
            bot_label(self.bot_key),
            session_id,
        )

    def _deletion(self, session_id: str) -> dict[str, Any]:
        """A row that deletes a session the API reports it no longer has."""
        self.open_sessions.pop(session_id, None)
        self.stats.add("deleted")
        logger.warning(
            "%s: session %s is no longer known to the API; deleting it from the warehouse",
            bot_label(self.bot_key),
            session_id,
        )
        return {"session_id": session_id, DELETED_COLUMN: True}


def fetch_concurrently(
    extractors: dict[str, BotExtractor], max_in_flight: int
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
