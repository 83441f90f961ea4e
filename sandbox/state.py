"""What the sandbox holds and a test may change: sessions, settings, faults, latency, the log.

The HTTP threads read it while a test changes it, so every change is thread-safe.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kore_sessions.sandbox.chat_history import ChatHistory
from kore_sessions.sandbox.clock import SandboxClock
from kore_sessions.sandbox.data import GeneratedSession
from kore_sessions.sandbox.faults import FaultPlan
from kore_sessions.sandbox.log import RequestLog, RequestRecord
from kore_sessions.sandbox.store import SessionStore

# Seconds the `latency` fault waits: longer than a client's short timeouts, short for a test.
DEFAULT_FAULT_LATENCY = 1.5


@dataclass(frozen=True)
class HiddenSessions:
    """Sessions the API has but does not show, as an index that lags may: the `sessionId`
    lookup neither returns them nor calls them invalid, and listings may leave them out.

    Attributes:
        lookup: Ids the lookup passes over in silence.
        listing: Ids the listings leave out.
        in_totals: The listings' `total` still counts the sessions they leave out (a server
            whose total disagrees with its own pages).
    """

    lookup: frozenset[str] = frozenset()
    listing: frozenset[str] = frozenset()
    in_totals: bool = False

    def from_lookup(self, answer: dict[str, Any]) -> dict[str, Any]:
        """A lookup's answer without the hidden sessions, and without them among the invalid."""
        if not self.lookup:
            return answer
        sessions = [view for view in answer["sessions"] if view.get("sessionId") not in self.lookup]
        invalid = [i for i in answer["invalidSessions"] if i not in self.lookup]
        return {**answer, "total": len(sessions), "sessions": sessions, "invalidSessions": invalid}


class SandboxState(SandboxClock):
    """The sandbox's sessions and settings, its faults and its request log, on its clock.

    Attributes:
        store: The account's sessions.
        page_cap: Largest page returned whatever ``limit`` asks.
        legacy: Serve the pre-9.0 session shape.
        retry_after: Seconds for a ``Retry-After`` header on 429 answers; None: none.
        fault_latency: Seconds the ``latency`` fault waits before answering.
        faults: The faults queued or drawn for the next API requests.
        log: The request log.
        chat: The messages of the sessions, and their page cap.
    """

    def __init__(
        self,
        sessions: Iterable[GeneratedSession],
        now: datetime | None = None,
        page_cap: int = 100,
        legacy: bool = False,
        retry_after: int | None = None,
        fault_latency: float = DEFAULT_FAULT_LATENCY,
        bot_ids: Iterable[str] = (),
        *,
        message_page_cap: int | None = None,
    ) -> None:
        """Hold the sessions and settings.

        Args:
            sessions: The account's sessions (final truth).
            now: Initial sandbox time (naive means UTC); default: the wall clock.
            page_cap: Largest page returned whatever ``limit`` asks.
            legacy: Serve the pre-9.0 session shape.
            retry_after: Seconds for a ``Retry-After`` header on 429 answers; None: none.
            fault_latency: Seconds the ``latency`` fault waits before answering.
            bot_ids: Extra bots that exist without sessions.
            message_page_cap: Largest page of messages whatever ``limit`` asks; None: only
                the version's maximum.
        """
        if page_cap < 1:
            raise ValueError("page_cap must be >= 1")
        super().__init__(now)
        self.store = SessionStore(sessions, bot_ids)
        self.page_cap = page_cap
        self.legacy = legacy
        self.retry_after = retry_after
        self.fault_latency = fault_latency
        self.faults = FaultPlan()
        self.log = RequestLog()
        self.latency = 0.0
        self.hidden = HiddenSessions()
        self.chat = ChatHistory() if message_page_cap is None else ChatHistory(message_page_cap)
        self._lock = threading.Lock()

    # faults, latency -------------------------------------------------------

    def inject(self, kind: str, count: int = 1) -> None:
        """Queue fault ``kind`` for the next ``count`` requests to the API routes.

        Args:
            kind: ``429``, ``500``, ``502``, ``503``, ``drop``, ``truncate`` (no
                Content-Length), ``truncate_length`` (full Content-Length),
                ``bad_shape`` (200, `sessions` not a list), ``short`` (200, the page's last
                third left out, `total` and `moreAvailable` as if whole) or
                ``latency`` (normal answer after ``fault_latency`` seconds).
            count: How many consecutive API requests get it.
        """
        self.faults.inject(kind, count)

    def set_fault_rates(self, rates: Mapping[str, float], seed: int = 0) -> None:
        """Fault each API request at random with these probabilities; ``{}`` turns off.

        Args:
            rates: ``{kind: probability}``, summing to at most 1.
            seed: Seed, so the sequence of faults is deterministic.
        """
        self.faults.set_rates(rates, seed)

    def clear_faults(self) -> None:
        """Drop queued faults and random fault rates."""
        self.faults.clear()

    def set_latency(self, seconds: float) -> None:
        """Delay every API answer (`latency`; a float is read and written whole, no lock).

        Args:
            seconds: The delay; 0 turns it off.
        """
        self.latency = max(0.0, float(seconds))

    # sessions and the request log ------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """A copy of the request log, oldest first."""
        return self.log.records()

    def clear_requests(self) -> None:
        """Empty the request log."""
        self.log.clear()

    @property
    def bot_ids(self) -> list[str]:
        """Every bot of the account."""
        return self.store.bot_ids

    def hide_sessions(
        self, from_lookup: Iterable[str] = (), from_listing: Iterable[str] = (), in_totals: bool = False
    ) -> None:
        """Have the API pass over sessions it still has: the id lookup neither returns them nor
        calls them invalid, listings leave them out (an index that lags). Replaces what was hidden.

        Args:
            from_lookup: Ids the `sessionId` lookup passes over in silence.
            from_listing: Ids the listings leave out.
            in_totals: The listings' `total` counts them all the same.
        """
        self.hidden = HiddenSessions(frozenset(from_lookup), frozenset(from_listing), in_totals)

    def remove_sessions(self, session_ids: Iterable[str]) -> None:
        """Delete sessions from the account, as the platform does (retention, erasure)."""
        with self._lock:
            self.store = self.store.without(session_ids)

    def visible_sessions(self, bot_id: str | None = None) -> list[dict[str, Any]]:
        """Every session the API shows now (newest first), optionally for one bot.

        Args:
            bot_id: Only this bot's sessions; None for all.

        Returns:
            The session views, as listing requests would return them.
        """
        return self.store.views(self.now, self.legacy, bot_id)

    def visible_messages(self, bot_id: str | None = None, version: int = 1) -> list[dict[str, Any]]:
        """Every message the API serves now on every channel (newest first), optionally for one bot.

        Args:
            bot_id: Only this bot's messages; None for all.
            version: 1 (every message) or 2 (no alert or action task messages).

        Returns:
            The message views, as the messages routes would return them.
        """
        return self.chat.visible(self.store, self.now, bot_id, version)
