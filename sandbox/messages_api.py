"""The Conversation History API's request rules and answers, without any HTTP.

Where shared/spec/messages-api.md leaves a question open, the sandbox takes the strictest
reading, so a loader that works here should work on a real tenant:

1. ``channelType`` absent means ``rtm`` only, on POST as on GET; one channel per call.
2. The 7-day rule (and the window's filter on ``createdOn``) applies with ``sessionId`` too.
3. A bare-date ``dateTo`` is the start of that day, GMT, as for sessions.
4. ``sessionId`` is a list (POST; a bare string is refused) of at most
   ``MAX_MESSAGE_SESSION_IDS`` ids; GET takes them comma-separated. Unknown ids match nothing.
5. ``limit`` above the version's maximum is clamped silently; the server's page cap may cut
   pages further (``moreAvailable`` stays true).
6. The Admin route (v1 only) answers with every bot the app may read; ``botId`` tells them apart.
7. Errors are the platform's usual ``{"errors": [{"msg", "code"}]}`` with status 400.

``skip`` (or ``offset``) counts messages. ``msgId``, ``direction`` and ``tags`` are not
implemented and are refused with 400; ``includeTraceId``, ``getAgentsInfo``,
``includeSecureForm`` and ``includeLatency`` are accepted and change nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kore_sessions.sandbox.api import (
    bad_request,
    optional_text,
    parse_paging,
    parse_window,
)
from kore_sessions.sandbox.chat_message import GeneratedMessage
from kore_sessions.sandbox.message_store import MessageStore

# Most messages a page holds per API version (documented); a larger `limit` is clamped silently.
VERSION_LIMITS = {1: 100, 2: 10_000}
# The channel read when `channelType` is absent: rtm only (open question 1, strictest reading).
DEFAULT_CHANNEL = "rtm"
# Most `sessionId` entries a request takes, duplicates counted: undocumented, so the strict
# batch size of a public client (open question 4).
MAX_MESSAGE_SESSION_IDS = 20
# Documented parameters the sandbox does not implement: refused rather than silently ignored.
UNSUPPORTED_PARAMS = ("msgId", "direction", "tags")
# `forward` as the strings one XO revision documents.
FORWARD_WORDS = {"true": True, "false": False}
# The bot logo URL every answer carries as `icon`.
ICON_URL = "https://sandbox.kore.invalid/bot-icon.png"


@dataclass(frozen=True)
class MessageQuery:
    """One parsed getMessages request."""

    skip: int
    limit: int
    date_from: datetime
    date_to: datetime
    channel: str = DEFAULT_CHANNEL
    forward: bool = False
    user_id: str | None = None
    call_id: str | None = None
    session_ids: frozenset[str] | None = None


def parse_message_query(params: Mapping[str, Any], now: datetime, *, from_query: bool) -> MessageQuery:
    """Validate a request's parameters into a :class:`MessageQuery`.

    Args:
        params: The JSON body of a POST, or the query string of a GET.
        now: Sandbox time, the default ``dateTo``.
        from_query: The parameters come from a GET's query string (``userId`` required,
            ``sessionId`` comma-separated).

    Returns:
        The query.

    Raises:
        ApiError: 400 for any invalid or unsupported value.
    """
    for name in UNSUPPORTED_PARAMS:
        if params.get(name) not in (None, ""):
            raise bad_request(f"{name} is not supported by the sandbox's getMessages")
    date_from, date_to = parse_window(params.get("dateFrom"), params.get("dateTo"), now)
    skip, limit = parse_paging(params)
    user_id = optional_text("userId", params.get("userId"))
    if from_query and user_id is None:
        raise bad_request("userId is required")
    return MessageQuery(
        skip=skip,
        limit=limit,
        date_from=date_from,
        date_to=date_to,
        channel=_channel(params.get("channelType")),
        forward=_forward(params.get("forward")),
        user_id=user_id,
        call_id=optional_text("callId", params.get("callId")),
        session_ids=_session_ids(params.get("sessionId"), from_query),
    )


def _channel(value: Any) -> str:
    if isinstance(value, list):
        raise bad_request("channelType takes one channel per call")
    return optional_text("channelType", value) or DEFAULT_CHANNEL


def _forward(value: Any) -> bool:
    if value is None or value == "" or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in FORWARD_WORDS:
        return FORWARD_WORDS[value.strip().lower()]
    raise bad_request("forward must be true or false")


def _session_ids(value: Any, from_query: bool) -> frozenset[str] | None:
    if value is None or value in ("", []):
        return None
    ids = value.split(",") if from_query and isinstance(value, str) else value
    if not isinstance(ids, list) or not all(isinstance(item, str) and item for item in ids):
        raise bad_request("sessionId must be an array of session id strings")
    if len(ids) > MAX_MESSAGE_SESSION_IDS:
        raise bad_request(
            f"sessionId accepts at most {MAX_MESSAGE_SESSION_IDS} ids (duplicates count); got {len(ids)}"
        )
    return frozenset(ids)


def _matches(message: GeneratedMessage, query: MessageQuery, now: datetime, version: int) -> bool:
    return (
        message.is_visible(now)
        and message.in_version(version)
        and message.channel == query.channel
        and (query.session_ids is None or message.session_id in query.session_ids)
        and (query.user_id is None or message.session.user_id == query.user_id)
        and (query.call_id is None or message.session.call_id == query.call_id)
    )


def list_messages(
    store: MessageStore,
    bots: frozenset[str] | None,
    query: MessageQuery,
    now: datetime,
    version: int,
    page_cap: int,
) -> dict[str, Any]:
    """Answer a getMessages request: filter, order, skip, then at most the page's size.

    Newest first (ties: ``_id`` descending); ``forward`` true: oldest first (``_id`` ascending).

    Args:
        store: The messages.
        bots: Bots the route covers (None: all).
        query: The parsed request.
        now: Sandbox time.
        version: The API version of the route (1 or 2).
        page_cap: Largest page the server returns whatever ``limit`` asks.

    Returns:
        ``{"total", "moreAvailable", "icon", "messages"}``.
    """
    matching = [
        message
        for message in store.between(bots, query.date_from, query.date_to)
        if _matches(message, query, now, version)
    ]
    if not query.forward:
        matching.reverse()
    size = min(query.limit, VERSION_LIMITS[version], page_cap)
    page = matching[query.skip : query.skip + size]
    return {
        "total": len(matching),
        "moreAvailable": query.skip + len(page) < len(matching),
        "icon": ICON_URL,
        "messages": [message.view() for message in page],
    }
