"""The getSessions calls (a page of one window, a lookup by id) over the shared client, what
their pages list, and the shape a server answers in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kore_sessions.source.api.answers import Page, parse_page
from kore_sessions.source.api.client import KoreClient, Route
from kore_sessions.source.api.paging import Listing, PageRequest
from kore_sessions.source.api.timestamps import format_api_timestamp
from kore_sessions.source.api.windows import Window
from kore_sessions.source.sessions.spec import (
    ADMIN_SESSIONS_PATH,
    BOT_SESSIONS_PATH,
    CONTAINMENT_TYPES,
    MAX_IDS_PER_LOOKUP,
    SESSIONS_SCOPE,
)

# Where the Sessions History API is served, and the scope its app needs.
SESSIONS_ROUTE = Route(BOT_SESSIONS_PATH, ADMIN_SESSIONS_PATH, SESSIONS_SCOPE)
# What its pages list: sessions, told apart by `sessionId` (the row's `session_id`), placed in
# windows by `start_time`.
SESSIONS_LISTING = Listing("sessionId", "sessions", "session_id", "start_time")


@dataclass
class AnswerShape:
    """Whether the server answers in the pre-9.0 shape (containment in `sessionType`)."""

    legacy: bool = False

    @property
    def containment_types(self) -> tuple[str | None, ...]:
        """What to filter on: nothing, or each containment type once (pre-9.0)."""
        return CONTAINMENT_TYPES if self.legacy else (None,)


def parse_sessions_page(payload: dict[str, Any]) -> Page:
    """Check the documented shape of a getSessions answer and wrap it.

    Raises:
        KoreApiError: `sessions` is missing or not a list of objects.
    """
    return parse_page(payload, "sessions", "invalidSessions")


def get_sessions_page(
    client: KoreClient, bot_key: str, window: Window, request: PageRequest, call_id: str | None = None
) -> Page:
    """Fetch one page of the sessions that started in a window.

    Args:
        client: The shared client (budget, retries, answers).
        bot_key: A bot id, or `ALL_BOTS_KEY` for the admin route.
        window: Its start and end (aware UTC, under 7 days apart) are sent as full timestamps.
        request: The page: `skip` (newest first), `limit` (the server may return fewer), and
            its variant, the containment type to filter on (only for pre-9.0 servers).
        call_id: Optional external voice call id (the API's `callId` filter).
    """
    body = {
        "dateFrom": format_api_timestamp(window.start),
        "dateTo": format_api_timestamp(window.end),
        "skip": request.skip,
        "limit": request.limit,
    }
    filters = (("containmentType", request.variant), ("callId", call_id))
    params = {name: value for name, value in filters if value}
    return parse_sessions_page(client.post(SESSIONS_ROUTE, bot_key, body, params or None))


def lookup_sessions(client: KoreClient, bot_key: str, session_ids: Sequence[str]) -> Page:
    """Fetch sessions by id (at most 50); ids the API does not know come back as invalid."""
    if not 0 < len(session_ids) <= MAX_IDS_PER_LOOKUP:
        raise ValueError(f"a lookup takes 1 to {MAX_IDS_PER_LOOKUP} ids, got {len(session_ids)}")
    return parse_sessions_page(client.post(SESSIONS_ROUTE, bot_key, {"sessionId": list(session_ids)}))
