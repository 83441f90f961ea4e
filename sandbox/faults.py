"""Injected faults and the rolling rate limits of the sandbox."""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

FAULT_KINDS = (
    "400",  # a request the API refuses (Kore-like JSON error)
    "429",  # the documented rate-limit answer
    "500",  # Kore-like JSON error
    "502",  # gateway HTML page
    "503",  # gateway HTML page
    "drop",  # connection closed without any response
    "truncate",  # 200, half a JSON body, no Content-Length, connection closed
    "truncate_length",  # 200, half a JSON body, Content-Length of the full body, closed
    "latency",  # normal answer after a delay (SandboxServer.fault_latency seconds)
    "bad_shape",  # 200 with valid JSON that is not the documented shape (`sessions` an object)
    "short",  # 200, the page with its last third of sessions left out; total and moreAvailable as if whole
)


def check_kind(kind: str) -> str:
    """Validate a fault kind.

    Args:
        kind: A fault kind (an int like 500 is accepted as "500").

    Returns:
        The kind as a string.

    Raises:
        ValueError: For an unknown kind.
    """
    kind = str(kind)
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS}")
    return kind


class FaultPlan:
    """Which fault, if any, the next API request gets: queued first, then random."""

    def __init__(self) -> None:
        self._queue: deque[str] = deque()
        self._rates: list[tuple[str, float]] = []
        self._rng = random.Random(0)
        self._lock = threading.Lock()

    def inject(self, kind: str, count: int = 1) -> None:
        """Queue ``kind`` for the next ``count`` API requests."""
        kind = check_kind(kind)
        if count < 0:
            raise ValueError("count must be >= 0")
        with self._lock:
            self._queue.extend([kind] * count)

    def set_rates(self, rates: Mapping[str, float], seed: int = 0) -> None:
        """Give each kind a probability per request (deterministic for a seed).

        Args:
            rates: ``{kind: probability}``; the sum must not exceed 1; ``{}`` turns off.
            seed: Seed of the random draws.
        """
        checked = sorted((check_kind(kind), float(p)) for kind, p in rates.items())
        if any(p < 0 for _, p in checked) or sum(p for _, p in checked) > 1.0 + 1e-9:
            raise ValueError("fault probabilities must be >= 0 and sum to at most 1")
        with self._lock:
            self._rates = checked
            self._rng = random.Random(seed)

    def clear(self) -> None:
        """Drop queued faults and random rates."""
        with self._lock:
            self._queue.clear()
            self._rates = []

    def next_fault(self) -> str | None:
        """Take the fault for the request being handled, if any."""
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            if not self._rates:
                return None
            draw = self._rng.random()
            for kind, probability in self._rates:
                if draw < probability:
                    return kind
                draw -= probability
            return None


@dataclass(frozen=True)
class RateLimit:
    """Rolling request limits, with a time scale so tests need not wait real minutes.

    Attributes:
        per_minute: Requests allowed in any rolling minute.
        per_hour: Requests allowed in any rolling hour.
        seconds_per_minute: Real seconds that count as one minute (an hour is 60 of
            them); 60.0 is real time.
    """

    per_minute: int = 60
    per_hour: int = 1800
    seconds_per_minute: float = 60.0

    @classmethod
    def coerce(cls, value: RateLimit | tuple[int, int] | None) -> RateLimit | None:
        """Accept a RateLimit, a ``(per_minute, per_hour)`` tuple or None."""
        if value is None or isinstance(value, RateLimit):
            return value
        per_minute, per_hour = value
        return cls(per_minute=per_minute, per_hour=per_hour)


class RateLimiter:
    """Sliding-window limiter keyed by bucket (a bot id, or the account)."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        """Create the limiter.

        Args:
            limit: The limits.
            clock: Monotonic seconds (injectable for tests).
        """
        self.limit = limit
        self.clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def admit(self, bucket: str) -> bool:
        """Count a request in ``bucket`` unless a limit is reached.

        Rejected requests are not counted, so a client that backs off recovers.

        Returns:
            True if admitted, False if over the minute or the hour limit.
        """
        minute = self.limit.seconds_per_minute
        with self._lock:
            now = self.clock()
            hits = self._hits.setdefault(bucket, deque())
            while hits and hits[0] <= now - 60 * minute:
                hits.popleft()
            last_minute = sum(1 for hit in hits if hit > now - minute)
            if last_minute >= self.limit.per_minute or len(hits) >= self.limit.per_hour:
                return False
            hits.append(now)
            return True
