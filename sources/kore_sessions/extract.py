"""The walk of one bot's windows: paging, pre-9.0 detection, refresh of open sessions, state.

State of one bot (in the `sessions` resource's dlt state, committed with the load package):
`cursor`, the instant up to which every window has been fetched, and `open_sessions`,
`{session_id: start_time}` of sessions last seen active, refreshed on every run until closed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import chain
from typing import Any

from .client import ClientStats, KoreApiError, KoreClient, SessionsPage
from .config import RunConfig
from .records import format_api_timestamp, is_legacy_shape, parse_timestamp, to_row
from .settings import (
    ALL_BOTS_KEY,
    CONTAINMENT_TYPES,
    DELETED_COLUMN,
    LOOKUP_TAGS_HORIZON,
    MAX_IDS_PER_LOOKUP,
    STATUS_ACTIVE,
    UNKNOWN_STATUS_QUIET_PERIOD,
)
from .windows import Window, incremental_start, plan_windows

logger = logging.getLogger("kore_sessions")

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
    client: ClientStats = field(default_factory=ClientStats)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str, amount: int = 1) -> None:
        """Add `amount` to the counter `name`."""
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)


def bot_label(bot_key: str) -> str:
    """How a bot key reads in messages."""
    return "all bots" if bot_key == ALL_BOTS_KEY else f"bot {bot_key}"


class BotExtractor:
    """Fetches one bot's sessions for one run and keeps its state up to date."""

    def __init__(
        self,
        client: KoreClient,
        bot_key: str,
        bot_state: dict[str, Any],
        config: RunConfig,
        stats: ExtractStats,
    ) -> None:
        self.client = client
        self.bot_key = bot_key
        self.state = bot_state
        self.config = config
        self.stats = stats
        self.now = config.clock()
        self.legacy = False
        self.open_sessions: dict[str, str] = dict(bot_state.get("open_sessions") or {})
        self.previously_open = set(self.open_sessions)
        self.seen_open: set[str] = set()
        self.previous_window_ids: set[str] = set()

    def run(self) -> Iterator[dict[str, Any]]:
        """Yield rows of every window to fetch, then of the refreshed open sessions."""
        for window in self.windows():
            yield from self._window_rows(window)
            if not self.config.bounded:
                self.state["cursor"] = format_api_timestamp(window.end)
            self._save_open_sessions()
        if not self.config.bounded:
            yield from self._refresh_open_sessions()
        self._save_open_sessions()

    def windows(self) -> list[Window]:
        """The windows of this run: the bounded range, or from the cursor less lookback to now."""
        config = self.config
        if config.bounded:
            return plan_windows(config.start_date, config.end_date, config.window_span)
        cursor = parse_timestamp(self.state.get("cursor"))
        start = incremental_start(cursor, config.start_date, config.lookback)
        return plan_windows(start, self.now, config.window_span)

    def _window_rows(self, window: Window) -> Iterator[dict[str, Any]]:
        """Rows of one window, each session once (windows overlap at their edges)."""
        ids_in_window: set[str] = set()
        for raw, containment_type in self._window_sessions(window):
            row = to_row(raw, containment_type)
            session_id = row["session_id"]
            if session_id in ids_in_window or session_id in self.previous_window_ids:
                continue
            ids_in_window.add(session_id)
            self._track(row)
            yield row
        self.previous_window_ids = ids_in_window
        self.stats.add("windows")
        self.stats.add("sessions", len(ids_in_window))
        logger.info("%s: window %s: %d sessions", bot_label(self.bot_key), window, len(ids_in_window))

    def _window_sessions(self, window: Window) -> Iterator[tuple[dict[str, Any], str | None]]:
        """Raw sessions of a window with the containment type asked for (pre-9.0 only)."""
        if self.legacy:
            for containment_type in CONTAINMENT_TYPES:
                for page in self._pages(window, containment_type):
                    yield from ((raw, containment_type) for raw in page.sessions)
            return
        pages = self._pages(window, None)
        first = next(pages)
        if is_legacy_shape(first.sessions):
            pages.close()
            self._switch_to_legacy()
            yield from self._window_sessions(window)
            return
        for page in chain([first], pages):
            yield from ((raw, None) for raw in page.sessions)

    def _pages(self, window: Window, containment_type: str | None) -> Iterator[SessionsPage]:
        """Every page of a window, advancing skip by the sessions actually returned."""
        skip = 0
        while True:
            page = self.client.get_sessions_page(
                self.bot_key,
                window.start,
                window.end,
                skip,
                self.config.page_size,
                containment_type,
            )
            self.stats.add("pages")
            yield page
            if not page.more_available:
                return
            if not page.sessions:
                raise KoreApiError(
                    f"{bot_label(self.bot_key)}: the API said moreAvailable at skip={skip} "
                    "but returned no sessions; stopping rather than looping"
                )
            skip += len(page.sessions)

    def _switch_to_legacy(self) -> None:
        """Ask per containment type from now on: the server answers in the pre-9.0 shape."""
        self.legacy = True
        self.stats.legacy_bots.add(self.bot_key)
        logger.warning(
            "%s: the server answers in the pre-9.0 shape (containment in sessionType); "
            "asking once per containment type",
            bot_label(self.bot_key),
        )

    def _track(self, row: dict[str, Any]) -> None:
        """Remember active sessions for refresh, forget closed ones."""
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
