"""The sandbox's request log: one record per request received, oldest first."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class RequestRecord:
    """One request the sandbox received.

    Attributes:
        at: Wall-clock time (UTC) the request arrived.
        method: HTTP method.
        path: URL path without the query string.
        query: Query parameters (first value of each).
        body: The JSON body if it was a JSON object, else None.
        status: HTTP status answered; None when the connection was dropped.
        fault: The injected fault kind, if any.
        bot_id: The bot of the per-bot route, None on the admin route.
        claims: Verified JWT claims, None if the request did not pass auth.
        sandbox_now: The sandbox clock when the request was handled.
    """

    at: datetime
    method: str
    path: str
    query: dict[str, str]
    body: dict[str, Any] | None
    status: int | None
    fault: str | None
    bot_id: str | None
    claims: dict[str, Any] | None
    sandbox_now: datetime | None = None


class RequestLog:
    """The records of the requests received, safe to use from the HTTP threads."""

    def __init__(self) -> None:
        """Start empty."""
        self._records: list[RequestRecord] = []
        self._lock = threading.Lock()

    def append(self, record: RequestRecord) -> None:
        """Add the record of a request just answered."""
        with self._lock:
            self._records.append(record)

    def records(self) -> list[RequestRecord]:
        """A copy of the records, oldest first."""
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        """Forget every record."""
        with self._lock:
            self._records.clear()
