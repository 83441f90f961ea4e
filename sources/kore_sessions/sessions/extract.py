"""The walk of one bot's session windows.

`BotExtractor` plans a bot's windows, hands each answer to the window's `WindowPaging`, keeps the
rows each window owns, moves the cursor over windows complete in order, and switches to asking
per containment type when the server answers in the pre-9.0 shape. Every bot's extractor
runs on the pool at once (`kore_sessions.source.api.walk.fetch_concurrently`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import partial
from typing import Any

from kore_sessions.source.api.answers import Page
from kore_sessions.source.api.client import KoreClient
from kore_sessions.source.api.paging import PageCap, PageRequest, WindowPaging
from kore_sessions.source.api.run import SourceRun
from kore_sessions.source.api.settings import CLOCK_SKEW_ALLOWANCE, bot_label
from kore_sessions.source.api.walk import WindowLedger
from kore_sessions.source.api.windows import Window, first_windows, plan_windows, windows_of_ranges
from kore_sessions.source.config import RunConfig
from kore_sessions.source.sessions.endpoint import SESSIONS_LISTING, AnswerShape, get_sessions_page
from kore_sessions.source.sessions.open_sessions import SessionsBotState
from kore_sessions.source.sessions.records import is_legacy_shape, to_row
from kore_sessions.source.sessions.refresh import Refresher, mark_legacy

logger = logging.getLogger("kore_sessions")


class BotExtractor:
    """Fetches one bot's sessions for one load package and keeps its state up to date.

    Windows are fetched concurrently: `plan` gives the first request, `handle` takes each
    answer (in any order) and gives the rows to load and the requests to send next, and
    `finish` refreshes the open sessions (or verifies a repair's held sessions).
    """

    def __init__(
        self,
        client: KoreClient,
        bot_key: str,
        bot_state: dict[str, Any],
        config: RunConfig,
        run: SourceRun,
        cap: PageCap | None = None,
    ) -> None:
        """Plan the bot's windows of this package from its state and the run so far."""
        self.client = client
        self.bot_key = bot_key
        self.config = config
        self.run = run
        self.cap = cap or PageCap(config.page_size)
        self.now = config.clock()
        self.shape = AnswerShape()
        self.state = SessionsBotState(bot_state, bot_key, run)
        self.refresher = Refresher(client, bot_key, self.state, run, self.shape, self.cap, self.now)
        self.windows: list[Window] = (
            [] if self.state.bot.finished else package_windows(config, self.state, self.now)
        )
        self.generation = 0
        self.pagings: dict[tuple[int, str | None], WindowPaging] = {}
        self.ledger = WindowLedger(self.windows, "session_id", "start_time")
        self.complete_through = 0
        self.stopped = False
        self.later_planned = False
        # A repair checks the sessions the warehouse holds against every id its windows list.
        self.listed: set[str] | None = set() if config.repair else None

    def plan(self) -> list[PageRequest]:
        """The first request: the oldest window's first page, which also shows the answer's shape."""
        return [self._first_page(0, None)] if self.windows else []

    def call(self, request: PageRequest) -> Callable[[], Page]:
        """The client call that answers a request."""
        window = self.windows[request.window_index]
        return partial(
            get_sessions_page,
            self.client,
            self.bot_key,
            window.start,
            window.end,
            request.skip,
            request.limit,
            request.variant,
        )

    def handle(
        self, request: PageRequest, page: Page
    ) -> tuple[list[dict[str, Any]], list[PageRequest]]:
        """Take one answer: the new rows it holds and the requests it makes necessary."""
        if request.generation != self.generation:
            return [], []  # asked before the server turned out to answer in the pre-9.0 shape
        self.run.add("pages")
        if request.skip == 0 and not self.shape.legacy and is_legacy_shape(page.records):
            return [], self._switch_to_legacy()
        rows = self._new_rows(request, page)
        paging = self.pagings[(request.window_index, request.variant)]
        follow_ups = paging.take(request, page)
        if paging.done:
            follow_ups += self._window_done()
        return rows, follow_ups

    def finish(self) -> Iterator[dict[str, Any]]:
        """After every window of the package: in the run's last package of the bot, refresh the
        open sessions this run has not fetched (a repair: verify the held ones); save the state."""
        bot = self.state.bot
        if bot.finished:
            return
        if not bot.more_to_fetch:
            if self.config.repair is not None and self.listed is not None:
                held = self.config.repair.held_ids.get(self.bot_key, frozenset())
                yield from self.refresher.verify_held(held, self.listed)
            elif self.config.end_date is not None:
                self.state.bounded_backfill_loaded(self.config.start_date, self.config.end_date)
            else:
                yield from self.refresher.refresh_open_sessions()
                self.state.finish_run()
            bot.finished = True
        self.state.save_open_sessions()

    def _first_page(self, window_index: int, containment_type: str | None) -> PageRequest:
        """The first page of a window, its paging started afresh."""
        label = f"{bot_label(self.bot_key)}: window {self.windows[window_index]}"
        paging = WindowPaging(window_index, containment_type, self.cap, SESSIONS_LISTING, label)
        paging.generation = self.generation
        self.pagings[(window_index, containment_type)] = paging
        return paging.first()

    def _new_rows(self, request: PageRequest, page: Page) -> list[dict[str, Any]]:
        """Rows of sessions this window owns and has not given yet."""
        rows = []
        for raw in page.records:
            row = to_row(raw, request.variant)
            if self.listed is not None:
                self.listed.add(row["session_id"])
            self.run.server_clock.observe(row["start_time"])
            if self.ledger.take(request.window_index, row):
                self.state.track(row)
                rows.append(row)
        self.run.add("sessions", len(rows))
        return rows

    def _window_done(self) -> list[PageRequest]:
        """A window is complete: move over the windows complete in order; after the first one
        (which showed the shape of the answers), ask for every other window."""
        self._advance()
        if self.later_planned:
            return []
        self.later_planned = True
        return [
            self._first_page(index, containment_type)
            for index in range(1, len(self.windows))
            for containment_type in self.shape.containment_types
        ]

    def _advance(self) -> None:
        """Move over the windows complete in every containment type, in order. A window short of
        its total stops the bot there for the run: the cursor stays before it, and no later
        package of the run walks on (the run then fails, naming it)."""
        while self.complete_through < len(self.windows) and not self.stopped:
            index = self.complete_through
            pagings = [self.pagings.get((index, t)) for t in self.shape.containment_types]
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
            sessions, newest = self.ledger.close(index)
            logger.info("%s: window %s: %d sessions", bot_label(self.bot_key), self.windows[index], sessions)
            if not self.config.bounded:
                self.state.window_complete(self.windows[index], newest)

    def _switch_to_legacy(self) -> list[PageRequest]:
        """Ask per containment type from now on: the server answers in the pre-9.0 shape.

        Only first pages with sessions show the shape, so nothing was loaded before; requests
        still in flight belong to the old generation and are ignored when they come back.
        """
        mark_legacy(self.shape, self.run, self.bot_key)
        self.generation += 1
        self.pagings.clear()
        self.ledger = WindowLedger(self.windows, "session_id", "start_time")
        self.complete_through = 0
        self.later_planned = False
        return [self._first_page(0, containment_type) for containment_type in self.shape.containment_types]


def package_windows(config: RunConfig, state: SessionsBotState, now: datetime) -> list[Window]:
    """The windows of one bot's load package: a repair's ranges, the bounded range, or from the
    cursor less lookback (or where this run's previous package stopped) to now, at most
    `windows_per_run` (a long backfill goes in several packages: bounded memory, and the work
    done survives a crash; the caller runs again while a bot has more left)."""
    if config.repair is not None:
        return windows_of_ranges(config.repair.ranges.get(state.bot_key, ()), config.window_span)
    if config.end_date is not None:
        return plan_windows(config.start_date, config.end_date, config.window_span)
    start, end = state.incremental_start(config), now + CLOCK_SKEW_ALLOWANCE
    windows, state.bot.more_to_fetch = first_windows(start, end, config.window_span, config.windows_per_run)
    return windows
