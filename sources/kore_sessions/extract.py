"""The walk of one bot's windows: paging, pre-9.0 detection, refresh of open sessions, state.

State of one bot (in the `sessions` resource's dlt state, committed with the load package):
- `cursor`: the newest `start_time` the server has shown in windows that are complete together
  with every window before them. It follows the server's data, never the loader's clock, so a
  server whose clock lags (or sessions it shows late) cannot leave sessions behind it.
- `loaded_from`: where the first backfill began (the audit checks nothing before it).
- `server_seen`: the newest `start_time` the server has shown (for any bot of the run), a
  lower bound of the server's clock for the rules that depend on it.
- `open_sessions`: `{session_id: start_time}` of sessions last seen active, refreshed on every
  run until closed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from .client import ClientStats, KoreApiError, KoreClient, SessionsPage
from .config import RunConfig
from .pool import RequestPool
from .records import format_api_timestamp, is_legacy_shape, parse_timestamp, to_row
from .settings import (
    ALL_BOTS_KEY,
    CLOCK_SKEW_ALLOWANCE,
    CONTAINMENT_TYPES,
    DELETED_COLUMN,
    LOOKUP_TAGS_HORIZON,
    MAX_IDS_PER_LOOKUP,
    MAX_WORKERS,
    STATE_VERSION,
    STATUS_ACTIVE,
    UNKNOWN_STATUS_QUIET_PERIOD,
)
from .windows import Window, incremental_start, plan_windows

logger = logging.getLogger("kore_sessions")

# Readings of a window whose sessions came out fewer than the API's total (the list moved).
MAX_WINDOW_ATTEMPTS = 3
# Half-width of the small window that refreshes an open session too old for the id lookup.
POINT_WINDOW_HALF_WIDTH = timedelta(seconds=1)


class ServerClock:
    """A lower bound of the server's clock: the newest start_time its answers have shown.

    The loader's own clock says nothing about what the server has (it may lag by hours or lead
    by minutes); the sessions in the server's answers do.
    """

    def __init__(self) -> None:
        """Nothing seen yet."""
        self.latest: datetime | None = None
        self._lock = threading.Lock()

    def observe(self, *moments: datetime | None) -> None:
        """Take instants the server has shown."""
        newest = max((m for m in moments if m is not None), default=None)
        if newest is None:
            return
        with self._lock:
            if self.latest is None or newest > self.latest:
                self.latest = newest


@dataclass
class BotRun:
    """What one run, over all its load packages, knows of one bot.

    Attributes:
        walked_through: End of the last window this run completed; a later package of the run
            resumes there, whether or not those windows held sessions.
        more_to_fetch: The bot's windows were cut at `windows_per_run`: another package is due.
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
class ExtractStats:
    """What the source did in one run (over all its packages), for progress and the summary.

    It also carries what the packages of one run hand on to each other: where each bot stands
    (`bots`) and the server's clock as its answers showed it. The caller asks `more_to_fetch`.
    """

    windows: int = 0
    pages: int = 0
    sessions: int = 0
    refreshed: int = 0
    deleted: int = 0
    legacy_bots: set[str] = field(default_factory=set)
    undocumented_containment: dict[str, int] = field(default_factory=dict)
    client: ClientStats = field(default_factory=ClientStats)
    bots: dict[str, BotRun] = field(default_factory=dict)
    server_clock: ServerClock = field(default_factory=ServerClock)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str, amount: int = 1) -> None:
        """Add `amount` to the counter `name`."""
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def bot(self, bot_key: str) -> BotRun:
        """The run's record of one bot, made on first use."""
        return self.bots.setdefault(bot_key, BotRun())

    def begin_package(self) -> None:
        """Called as each load package starts: it continues the run while the previous package
        left more to fetch, and otherwise begins a new run (the same source run again)."""
        if self.more_to_fetch or not self.bots:
            return
        self.bots.clear()
        self.windows = self.pages = self.sessions = self.refreshed = self.deleted = 0
        self.legacy_bots.clear()
        self.undocumented_containment.clear()
        self.client = ClientStats()

    @property
    def more_to_fetch(self) -> bool:
        """Whether a bot's windows were cut and another load package is due."""
        return any(bot.more_to_fetch for bot in self.bots.values())


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
        self.run = stats.bot(bot_key)
        self.cap = cap or PageCap(config.page_size)
        self.now = config.clock()
        self.legacy = False
        self.generation = 0
        self.open_sessions: dict[str, str] = dict(bot_state.get("open_sessions") or {})
        if self.run.open_at_start is None:
            self.run.open_at_start = set(self.open_sessions)
        self._observe(parse_timestamp(bot_state.get("server_seen")))
        self.windows: list[Window] = [] if self.run.finished else self.plan_windows()
        self.progress: dict[tuple[int, str | None], WindowProgress] = {}
        self.window_ids: dict[int, set[str]] = {}
        self.window_newest: dict[int, datetime] = {}
        self.complete_through = 0
        self.later_planned = False
        # A repair checks the sessions the warehouse holds against every id its windows list.
        self.listed: set[str] | None = set() if config.repair else None

    def plan_windows(self) -> list[Window]:
        """The windows of this package: the bounded range, or from the cursor less lookback
        (or where this run's previous package stopped) to now, at most `windows_per_run`."""
        config = self.config
        if config.repair is not None:
            ranges = config.repair.ranges.get(self.bot_key, ())
            return [w for start, end in ranges for w in plan_windows(start, end, config.window_span)]
        if config.end_date is not None:
            return plan_windows(config.start_date, config.end_date, config.window_span)
        cursor = parse_timestamp(self.state.get("cursor"))
        if cursor is None:
            self.state.setdefault("loaded_from", format_api_timestamp(config.start_date))
        elif self.state.get("version") != STATE_VERSION:
            cursor -= config.window_span  # the loader's clock once: read a window behind it again
        start = incremental_start(cursor, config.start_date, config.lookback, self.run.walked_through)
        windows = plan_windows(start, self.now + CLOCK_SKEW_ALLOWANCE, config.window_span)
        # A long backfill goes in several load packages: bounded memory in the load, and the
        # work done survives a crash. The caller runs again while a bot has more left.
        self.run.more_to_fetch = len(windows) > config.windows_per_run
        return windows[: config.windows_per_run]

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
        """After every window of the package: in the run's last package of the bot, refresh the
        open sessions this run has not fetched; then save the state."""
        if self.run.finished:
            return
        if not self.run.more_to_fetch:
            if self.config.repair is not None:
                yield from self._verify_held_sessions()
            elif not self.config.bounded:
                yield from self._refresh_open_sessions()
                self._save_clock_and_version()
            self.run.finished = True
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
            if self.listed is not None:
                self.listed.add(session_id)
            self._observe(row["start_time"])
            if session_id in given or not window.owns(row["start_time"]):
                continue
            given.add(session_id)
            newest = self.window_newest.get(request.window_index)
            if newest is None or row["start_time"] > newest:
                self.window_newest[request.window_index] = row["start_time"]
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
        """Move over the windows complete in every containment type, in order: the run walks
        on to each one's end, the cursor to the newest session the server showed in it."""
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
            newest = self.window_newest.pop(index, None)
            if self.config.bounded:
                continue
            self.run.walked_through = self.windows[index].end
            if newest is not None:
                self.state["cursor"] = format_api_timestamp(newest)
                self.state["version"] = STATE_VERSION

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
        self.window_newest.clear()
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
        if self.run.open_at_start and session_id in self.run.open_at_start:
            self.run.seen_open.add(session_id)
        if self._may_be_open(row):
            self.open_sessions[session_id] = format_api_timestamp(row["start_time"])
        else:
            self.open_sessions.pop(session_id, None)

    def _may_be_open(self, row: dict[str, Any]) -> bool:
        """Active, or of unknown status (pre-9.0) with activity in the server's last quiet period.

        The quiet period is measured against the newest session the server has shown, not the
        loader's clock (which may run hours ahead and would close such sessions too early).
        """
        status = row.get("session_status")
        if status is not None:
            return status == STATUS_ACTIVE
        end_time = row.get("end_time")
        server_now = self.stats.server_clock.latest
        return end_time is None or server_now is None or end_time >= server_now - UNKNOWN_STATUS_QUIET_PERIOD

    def _observe(self, started: datetime | None) -> None:
        """Take a session's start_time as evidence of the server's clock (end times are not:
        a bogus or scheduled end_time could lie ahead of it)."""
        self.stats.server_clock.observe(started)

    def _save_clock_and_version(self) -> None:
        """At the end of a bot's run: the server's clock as its answers showed it, and, for a
        bot that has never had a session, a cursor there (the server has shown nothing of it
        up to its own clock, so later runs need not walk from start_date again)."""
        latest = self.stats.server_clock.latest
        self.state["server_seen"] = _latest_text(latest, self.state)
        walked = self.run.walked_through
        if self.state.get("cursor") is None and latest is not None and walked is not None:
            self.state["cursor"] = format_api_timestamp(min(latest, walked))
        self.state["version"] = STATE_VERSION

    def _save_open_sessions(self) -> None:
        """Write the open sessions into the bot's state."""
        self.state["open_sessions"] = dict(sorted(self.open_sessions.items()))

    def _refresh_open_sessions(self) -> Iterator[dict[str, Any]]:
        """Bring every session last seen active and not re-fetched this run up to date."""
        open_at_start = self.run.open_at_start or set()
        stale = sorted(open_at_start - self.run.seen_open)
        known = {s: parse_timestamp(self.open_sessions[s]) for s in stale if s in self.open_sessions}
        yield from self._fetch_by_id(known)
        for session_id in known:
            if session_id in self.open_sessions and session_id not in self.run.seen_open:
                self.open_sessions.pop(session_id)
                logger.warning(
                    "%s: open session %s was not found around its start_time; no longer refreshed",
                    bot_label(self.bot_key),
                    session_id,
                )
        if known:
            logger.info("%s: refreshed %d open sessions", bot_label(self.bot_key), len(known))

    def _verify_held_sessions(self) -> Iterator[dict[str, Any]]:
        """Sessions the warehouse holds in the repaired ranges that no window listed: fetched
        by id (their start_time may have moved), deleted only when the API calls them invalid."""
        assert self.config.repair is not None and self.listed is not None
        unlisted = sorted(self.config.repair.held_ids.get(self.bot_key, frozenset()) - self.listed)
        if unlisted:
            logger.info("%s: %d sessions not listed, asked by id", bot_label(self.bot_key), len(unlisted))
        yield from self._fetch_by_id(dict.fromkeys(unlisted))

    def _fetch_by_id(self, sessions: dict[str, datetime | None]) -> Iterator[dict[str, Any]]:
        """Fetch sessions by id, `{session_id: start_time if known}`.

        The id lookup (50 ids a request) blanks session tags of sessions older than 14 days on
        the server's clock, so a session older than the horizon is fetched by a small window
        around its start_time instead (after a lookup when its start_time is not known). The
        horizon is taken from the later of both clocks: an uncertain age errs toward the window,
        which is always right (only dearer). Ids the API calls invalid are deleted.
        """
        server_now = self.stats.server_clock.latest
        horizon = max(self.now, server_now or self.now) - LOOKUP_TAGS_HORIZON
        old = {s: started for s, started in sessions.items() if started is not None and started < horizon}
        ids = sorted(set(sessions) - set(old))
        for start in range(0, len(ids), MAX_IDS_PER_LOOKUP):
            for row in self._lookup(ids[start : start + MAX_IDS_PER_LOOKUP]):
                if row.get(DELETED_COLUMN) is None and row["start_time"] < horizon:
                    old[row["session_id"]] = row["start_time"]
                    continue
                self._count_fetched(row)
                yield row
        for session_id, started in sorted(old.items()):
            yield from self._refresh_by_window(session_id, started)

    def _count_fetched(self, row: dict[str, Any]) -> None:
        """Track a session fetched by id and count it."""
        if not row.get(DELETED_COLUMN):
            self._track(row)
            self.stats.add("refreshed")

    def _lookup(self, session_ids: list[str]) -> Iterator[dict[str, Any]]:
        """Sessions by id as the lookup gives them, and deletions of the ids it calls invalid."""
        page = self.client.lookup_sessions(self.bot_key, session_ids)
        self.stats.add("pages")
        asked = set(session_ids)
        for raw in page.sessions:
            row = to_row(raw)
            self._observe(row["start_time"])
            if row["session_id"] in asked:
                yield row
        for session_id in asked.intersection(page.invalid_sessions):
            yield self._deletion(session_id)

    def _refresh_by_window(self, session_id: str, started: datetime) -> Iterator[dict[str, Any]]:
        """Fetch a session older than the id lookup's tag horizon through its window, which
        keeps its session tags."""
        window = Window(started - POINT_WINDOW_HALF_WIDTH, started + POINT_WINDOW_HALF_WIDTH)
        for raw, containment_type in self._window_sessions(window):
            if raw.get("sessionId") == session_id:
                row = to_row(raw, containment_type)
                self._observe(row["start_time"])
                self._count_fetched(row)
                yield row
                return

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


def _latest_text(latest: datetime | None, state: dict[str, Any]) -> str | None:
    """The later of the server clock seen this run and the one saved, as state text."""
    saved = parse_timestamp(state.get("server_seen"))
    newest = max((m for m in (latest, saved) if m is not None), default=None)
    return format_api_timestamp(newest) if newest is not None else None


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
