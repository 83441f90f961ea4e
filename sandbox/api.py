"""The Sessions History API's request rules and answers, without any HTTP.

Parsing follows the vendor pages (see shared/spec/sessions-api.md): the 7-day window
rule, inclusive date bounds, newest-first paging with a server page cap, the
``sessionId`` lookup that ignores every other filter, and its 14-day session-tag quirk.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from kore_sessions.sandbox.data import GeneratedSession, to_utc_ms
from kore_sessions.sandbox.errors import ApiError
from kore_sessions.sandbox.store import SessionStore, session_order

# The documented rule: dateFrom to dateTo must be less than 7 days; a missing bound is 7 days away.
MAX_WINDOW = timedelta(days=7)
# A `sessionId` lookup returns sessions older than this without their session tags (vendor quirk).
SESSION_TAG_LOOKUP_DAYS = 14
# Most ids one `sessionId` lookup accepts, duplicates counted (documented limit).
MAX_SESSION_IDS = 50
# Page size when the request gives no `limit` (documented default).
DEFAULT_LIMIT = 100
# Accepted `containmentType` values, lower-cased (old spellings too), to the API's spelling.
CONTAINMENT_PARAM = {"dropoff": "dropOff", "selfservice": "selfService", "agent": "agent"}
# Accepted `sessionType` values, lower-cased, to the API's spelling.
SESSION_TYPE_PARAM = {"interactive": "interactive", "non-interactive": "non-interactive"}
# A date without a time: the start of that day, GMT.
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# The start of an ISO date-time; the rest is left to datetime.fromisoformat.
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def bad_request(msg: str) -> ApiError:
    """The 400 answer with ``msg``."""
    return ApiError(400, msg, 400)


@dataclass(frozen=True)
class Query:
    """One parsed getSessions request."""

    skip: int
    limit: int
    date_from: datetime
    date_to: datetime
    user_id: str | None = None
    session_type: str | None = None
    containment: str | None = None
    call_id: str | None = None
    session_ids: tuple[str, ...] | None = None


def parse_body(raw: bytes) -> dict[str, Any]:
    """Parse the JSON request body; an empty body or ``null`` is ``{}``.

    Raises:
        ApiError: 400 if the body is not a JSON object.
    """
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(f"Invalid JSON in request body: {exc}") from exc
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object")
    return body


def parse_paging(values: Mapping[str, Any]) -> tuple[int, int]:
    """`skip` (or its other name `offset`; default 0) and `limit` (default DEFAULT_LIMIT).

    Raises:
        ApiError: 400 for a value that is not a whole number, a negative skip or a limit below 1.
    """
    skip_value = values.get("skip") if values.get("skip") is not None else values.get("offset")
    skip = parse_integer("skip", skip_value, 0)
    limit = parse_integer("limit", values.get("limit"), DEFAULT_LIMIT)
    if skip < 0 or limit < 1:
        raise bad_request("skip must be >= 0 and limit must be >= 1")
    return skip, limit


def parse_query(params: Mapping[str, str], body: Mapping[str, Any], now: datetime) -> Query:
    """Validate query parameters and body into a :class:`Query`.

    Args:
        params: Query string parameters (first value of each).
        body: The parsed JSON body.
        now: Sandbox time, the default ``dateTo``.

    Returns:
        The query.

    Raises:
        ApiError: 400 for any invalid value, including a window of 7 days or more.
    """
    date_from, date_to = parse_window(body.get("dateFrom"), body.get("dateTo"), now)
    skip, limit = parse_paging(body)
    return Query(
        skip=skip,
        limit=limit,
        date_from=date_from,
        date_to=date_to,
        user_id=optional_text("userId", body.get("userId")),
        session_type=_choice("sessionType", body.get("sessionType"), SESSION_TYPE_PARAM),
        containment=_choice("containmentType", params.get("containmentType"), CONTAINMENT_PARAM),
        call_id=optional_text("callId", params.get("callId")),
        session_ids=_session_ids(body.get("sessionId")),
    )


def parse_integer(name: str, value: Any, default: int) -> int:
    """A whole number given as a number or digits; ``default`` when absent.

    Raises:
        ApiError: 400 for any other value.
    """
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise bad_request(f"{name} must be a number")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    raise bad_request(f"{name} must be a whole number")


def optional_text(name: str, value: Any) -> str | None:
    """A string, or None when absent or empty.

    Raises:
        ApiError: 400 for a value that is not a string.
    """
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise bad_request(f"{name} must be a string")
    return value


def _choice(name: str, value: Any, allowed: Mapping[str, str]) -> str | None:
    text = optional_text(name, value)
    if text is None:
        return None
    try:
        return allowed[text.strip().lower()]
    except KeyError:
        valid = ", ".join(sorted(set(allowed.values())))
        raise bad_request(f"Invalid {name} {text!r}; valid values: {valid}") from None


def parse_date(name: str, value: Any) -> datetime:
    """Parse ``yyyy-mm-dd`` (start of that day, GMT) or an ISO date-time (GMT if no offset).

    Raises:
        ApiError: 400 if the value is not such a date.
    """
    text = value.strip() if isinstance(value, str) else ""
    try:
        if _DATE_ONLY.match(text):
            return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
        if not _DATE_TIME.match(text):
            raise ValueError(text)
        return to_utc_ms(datetime.fromisoformat(text))
    except ValueError:
        raise bad_request(f"Invalid {name} {value!r}: use yyyy-mm-dd or yyyy-mm-ddThh:mm:ss.mmmZ") from None


def parse_window(raw_from: Any, raw_to: Any, now: datetime) -> tuple[datetime, datetime]:
    """The inclusive window of ``dateFrom``/``dateTo``: under 7 days; a missing bound is 7 days
    from the other; both missing: the 7 days up to ``now``.

    Raises:
        ApiError: 400 for a bad date, reversed bounds or a span of 7 days or more.
    """
    given_from = None if raw_from in (None, "") else parse_date("dateFrom", raw_from)
    given_to = None if raw_to in (None, "") else parse_date("dateTo", raw_to)
    if given_from is not None and given_to is not None:
        if given_from > given_to:
            raise bad_request("dateFrom must not be later than dateTo")
        if given_to - given_from >= MAX_WINDOW:
            raise bad_request("The duration between dateFrom and dateTo should be less than 7 days")
        return given_from, given_to
    if given_from is not None:
        return given_from, given_from + MAX_WINDOW
    date_to = given_to if given_to is not None else to_utc_ms(now)
    return date_to - MAX_WINDOW, date_to


def _session_ids(value: Any) -> tuple[str, ...] | None:
    if value is None or value == [] or value == "":
        return None
    ids = [value] if isinstance(value, str) else value
    if not isinstance(ids, list) or not all(isinstance(item, str) for item in ids):
        raise bad_request("sessionId must be an array of session id strings")
    if len(ids) > MAX_SESSION_IDS:
        raise bad_request(
            f"sessionId accepts at most {MAX_SESSION_IDS} ids (duplicates count); got {len(ids)}"
        )
    return tuple(dict.fromkeys(ids))


def _matches(session: GeneratedSession, query: Query, now: datetime) -> bool:
    return (
        session.is_visible(now)
        and (query.user_id is None or session.user_id == query.user_id)
        and (query.session_type is None or session.session_type == query.session_type)
        and (query.containment is None or session.containment_at(now) == query.containment)
        and (query.call_id is None or session.call_id == query.call_id)
    )


def list_sessions(
    store: SessionStore,
    bots: frozenset[str] | None,
    query: Query,
    now: datetime,
    page_cap: int,
    legacy: bool = False,
) -> dict[str, Any]:
    """Answer a listing request: filter, newest first, skip, then at most the page cap.

    Args:
        store: The sessions.
        bots: Bots the route covers (None: all).
        query: The parsed request.
        now: Sandbox time.
        page_cap: Largest page the server returns whatever ``limit`` asks.
        legacy: Pre-9.0 session shape.

    Returns:
        ``{"total", "moreAvailable", "sessions"}``.
    """
    matching = [
        session
        for session in store.newest_first(bots, query.date_from, query.date_to)
        if _matches(session, query, now)
    ]
    page = matching[query.skip : query.skip + min(query.limit, page_cap)]
    return {
        "total": len(matching),
        "moreAvailable": query.skip + len(page) < len(matching),
        "sessions": [session.view(now, legacy=legacy) for session in page],
    }


def lookup_sessions(
    store: SessionStore,
    bots: frozenset[str] | None,
    session_ids: Sequence[str],
    now: datetime,
    legacy: bool = False,
) -> dict[str, Any]:
    """Answer a ``sessionId`` request: every other filter and the window are ignored.

    Sessions that started more than 14 days before ``now`` come back without session tags.

    Args:
        store: The sessions.
        bots: Bots the route covers (None: all).
        session_ids: Requested ids, already deduplicated.
        now: Sandbox time.
        legacy: Pre-9.0 session shape.

    Returns:
        ``{"total", "moreAvailable", "sessions", "invalidSessions"}``.
    """
    found: list[GeneratedSession] = []
    invalid: list[str] = []
    for session_id in session_ids:
        session = store.by_id.get(session_id)
        if session and session.is_visible(now) and (bots is None or session.bot_id in bots):
            found.append(session)
        else:
            invalid.append(session_id)
    found.sort(key=session_order, reverse=True)
    tag_cutoff = now - timedelta(days=SESSION_TAG_LOOKUP_DAYS)
    views = []
    for session in found:
        view = session.view(now, legacy=legacy) or {}
        if session.start < tag_cutoff and isinstance(view.get("tags"), dict):
            view["tags"]["sessionTags"] = []
        views.append(view)
    return {
        "total": len(views),
        "moreAvailable": False,
        "sessions": views,
        "invalidSessions": invalid,
    }
