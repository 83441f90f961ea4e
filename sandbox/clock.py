"""The sandbox's clock: fixed, it moves only when a test sets or advances it."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from kore_sessions.sandbox.data import to_utc_ms


class SandboxClock:
    """The sandbox time, read by the HTTP threads while a test moves it."""

    def __init__(self, now: datetime | None = None) -> None:
        """Start the clock.

        Args:
            now: Initial sandbox time (naive means UTC); default: the wall clock.
        """
        self._now = to_utc_ms(now or datetime.now(UTC))
        self._clock_lock = threading.Lock()

    @property
    def now(self) -> datetime:
        """The sandbox time (aware UTC, ms precision)."""
        with self._clock_lock:
            return self._now

    def set_now(self, now: datetime) -> None:
        """Set the sandbox time.

        Args:
            now: The new time (naive means UTC).
        """
        with self._clock_lock:
            self._now = to_utc_ms(now)

    def advance(self, delta: timedelta) -> datetime:
        """Move the sandbox time.

        Args:
            delta: How far to move (may be negative).

        Returns:
            The new sandbox time.
        """
        with self._clock_lock:
            self._now = to_utc_ms(self._now + delta)
            return self._now
