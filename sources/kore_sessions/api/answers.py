"""What the API's answers mean: the one place that sorts them into ok, retry and fail.

Pure functions of an HTTP answer: what is retried (429, 5xx, incomplete JSON, the documented
rate-limit message whatever its status) and what fails at once (400, 401, 403, 404, any other
4xx, redirects) with the API's own message and a hint a person can act on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from itertools import repeat
from typing import Any

import httpx
import orjson

# What a person should check for each status that fails at once; `{scope}` is the scope the
# route's app needs (each resource names its own: `Route.scope`).
FAIL_FAST_HINTS = {
    400: "check the request: dates, page size and filters must be ones the API accepts",
    401: (
        "check the app's client id and secret (or private key) and the signing algorithm, "
        "and that the app's {scope} scope is published"
    ),
    403: (
        "check that the app has the {scope} scope (Bot Builder) or Bot Analytics > "
        "{scope} (Admin Console) and that the scope is published; only an Admin "
        "Console app may use the all-bots route"
    ),
    404: "check the host and the bot id (Bot ID or Stream ID from the bot's General Settings)",
}
# The scope a hint names when the caller does not say which.
ANY_SCOPE = "API"
# The documented rate-limit message; its HTTP status is not documented, so it is matched.
RATE_LIMIT_MARKER = "rate limit for this api has been reached"
# Longest piece of an error body quoted in a message.
MAX_QUOTED_BODY = 300
# Key names a shape may name: identifiers of a schema; any other key (an e-mail, a user id used
# as a key) could be a person's data, so it is counted, never shown.
SCHEMA_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")
# Most key names a shape names (a shape is a hint, not a dump of the answer).
MAX_NAMED_KEYS = 12


class KoreApiError(Exception):
    """The API refused a request in a way that retrying cannot fix."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class InvalidRecordError(ValueError):
    """A record the API returned that lacks what every such record must have."""


class RetryableError(Exception):
    """An answer (or no answer) worth trying again."""

    def __init__(self, reason: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(reason)
        self.status = status
        self.retry_after = retry_after


@dataclass
class Page:
    """One page of records of any listing (sessions, messages).

    Attributes:
        records: The page's records, as the API sent them.
        more_available: The API says more follow.
        total: The listing's total, when the API gives an integer.
        invalid_ids: Ids of a lookup the API does not know.
    """

    records: list[dict[str, Any]]
    more_available: bool
    total: int | None
    invalid_ids: list[str]


def classify_response(response: httpx.Response, scope: str = ANY_SCOPE) -> dict[str, Any]:
    """Sort an answer into ok, retry or fail.

    Args:
        response: The HTTP answer, body already read.
        scope: The app scope the route needs, as the vendor names it (for the hint).

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
        hint = FAIL_FAST_HINTS.get(status, "the API refused the request").format(scope=scope)
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


def parse_page(payload: dict[str, Any], records_key: str, invalid_key: str) -> Page:
    """Check the documented shape of a listing's answer and wrap it.

    Args:
        payload: The answer's JSON object.
        records_key: Where the listing's records are (`sessions`, `messages`).
        invalid_key: Where a lookup's unknown ids are (`invalidSessions`).

    Raises:
        KoreApiError: the records are missing or not a list of objects.
    """
    records = payload.get(records_key)
    if not isinstance(records, list) or not all(map(isinstance, records, repeat(dict))):
        raise KoreApiError(
            f"answer is not the documented shape: '{records_key}' must be a list of objects, got "
            f"{describe_shape(records, named=False)}; the answer is {describe_shape(payload)}"
        )
    invalid = payload.get(invalid_key) or []
    return Page(
        records=records,
        more_available=bool(payload.get("moreAvailable")),
        total=payload.get("total") if isinstance(payload.get("total"), int) else None,
        invalid_ids=[str(i) for i in invalid],
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
    return f"no message in the body, which is {describe_shape(payload)}"


def json_type(value: Any) -> str:
    """The JSON type of a decoded value: object, array, string, number, boolean or null."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "object" if isinstance(value, Mapping) else "array"


def a_json_type(value: Any) -> str:
    """The JSON type of a value with its article, for a message: `a string`, `an object`, `null`."""
    kind = json_type(value)
    if kind == "null":
        return kind
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"


def key_names(values: Mapping[Any, Any], named: bool = True) -> str:
    """The keys of an object, for a message: `a, b, c`, `a, b and 2 other keys`, or `3 keys`.

    Only names that look like a schema's identifiers are shown (at most MAX_NAMED_KEYS), so a
    key that is itself data (an id, an e-mail) never reaches a message: it is counted.

    Args:
        values: The object.
        named: False where the keys are likely data (an object in place of a list of
            sessions): every key is only counted.
    """
    names = sorted(k for k in values if isinstance(k, str) and SCHEMA_KEY.fullmatch(k)) if named else []
    shown = names[:MAX_NAMED_KEYS]
    others = len(values) - len(shown)
    if not shown:
        return _count(others, "key")
    listed = ", ".join(shown)
    return f"{listed} and {_count(others, 'other key')}" if others else listed


def describe_shape(value: Any, named: bool = True) -> str:
    """A decoded JSON value described by its shape, never by its values.

    Examples: `an object (moreAvailable, sessions, total)`, `an object (3 keys)`, `an array
    of 3 items (object, string)`, `a string`.

    Args:
        value: The decoded value.
        named: Whether an object's schema-like key names may be shown (see `key_names`).
    """
    if isinstance(value, Mapping) and value:
        return f"an object ({key_names(value, named)})"
    if isinstance(value, list) and value:
        items = ", ".join(sorted({json_type(item) for item in value}))
        return f"an array of {_count(len(value), 'item')} ({items})"
    return f"an empty {json_type(value)}" if isinstance(value, Mapping | list) else a_json_type(value)


def _count(count: int, noun: str) -> str:
    """`1 item`, `3 items`."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


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
