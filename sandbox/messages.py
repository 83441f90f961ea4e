"""What the HTTP transport hands the sandbox application, and the answer it gets back."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Faults that send half the body and close: without, or with, the full body's Content-Length.
TRUNCATING_FAULTS = frozenset({"truncate", "truncate_length"})


@dataclass(frozen=True)
class Request:
    """One HTTP request as the transport read it.

    Attributes:
        method: HTTP method.
        path: URL path without the query string.
        query: Query parameters (first value of each).
        body: The raw body (chunked bodies already joined).
        token: The ``auth`` header, None when absent.
        arrived: Wall-clock time (UTC) the request arrived.
    """

    method: str
    path: str
    query: dict[str, str]
    body: bytes
    token: str | None
    arrived: datetime


@dataclass
class Outcome:
    """What to send back for one request.

    Attributes:
        status: HTTP status.
        payload: A JSON value, or text sent as HTML.
        headers: Extra response headers.
        fault: The injected fault kind, if any; it may change how the answer is sent.
        claims: Verified JWT claims, None if the request did not pass auth.
    """

    status: int
    payload: Any
    headers: dict[str, str] = field(default_factory=dict)
    fault: str | None = None
    claims: dict[str, Any] | None = None

    @property
    def dropped(self) -> bool:
        """Close the connection without any response."""
        return self.fault == "drop"

    @property
    def truncated(self) -> bool:
        """Send half the body, then close the connection."""
        return self.fault in TRUNCATING_FAULTS

    @property
    def full_length(self) -> bool:
        """With a truncated body: still announce the full body's Content-Length."""
        return self.fault == "truncate_length"
