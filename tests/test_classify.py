"""Unit tests of the one place that sorts answers into ok, retry and fail."""

import httpx
import pytest
from kore_sessions.source.api.answers import (
    KoreApiError,
    RetryableError,
    classify_response,
)
from kore_sessions.source.sessions.endpoint import parse_sessions_page

pytestmark = pytest.mark.unit


def answer(status: int, body: bytes | str, headers: dict[str, str] | None = None) -> httpx.Response:
    content = body.encode() if isinstance(body, str) else body
    return httpx.Response(status, content=content, headers=headers or {})


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_retryable_statuses(status: int) -> None:
    with pytest.raises(RetryableError):
        classify_response(answer(status, "{}"))


def test_retry_after_is_read() -> None:
    with pytest.raises(RetryableError) as caught:
        classify_response(answer(429, "{}", {"Retry-After": "7"}))
    assert caught.value.retry_after == 7.0


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b'{"total": 1, "sessions": [{"score": NaN}], "big": 123456789012345678901234567890}', {}),
        (
            '{"total": 1, "sessions": [{"channel": "rtm"}]}'.encode("utf-16"),
            {"Content-Type": "application/json; charset=utf-16"},
        ),
    ],
    ids=["nan-and-big-int", "utf-16"],
)
def test_bodies_json_takes_are_taken(body: bytes, headers: dict[str, str]) -> None:
    """orjson parses pages fast; what it refuses and `json` takes is still read, as before."""
    payload = classify_response(httpx.Response(200, content=body, headers=headers))
    assert payload["total"] == 1 and len(payload["sessions"]) == 1


def test_truncated_json_is_retryable() -> None:
    with pytest.raises(RetryableError, match="JSON"):
        classify_response(answer(200, '{"total": 3, "sessions": [{"sessionId"'))


@pytest.mark.parametrize(
    ("status", "hint"), [(400, "dates"), (401, "published"), (403, "scope"), (404, "bot id")]
)
def test_fail_fast_with_api_message_and_hint(status: int, hint: str) -> None:
    body = '{"errors": [{"msg": "Something specific went wrong", "code": 42}]}'
    with pytest.raises(KoreApiError) as caught:
        classify_response(answer(status, body))
    message = str(caught.value)
    assert "Something specific went wrong" in message
    assert hint in message
    assert caught.value.status == status


def test_error_body_of_any_shape_is_shown() -> None:
    with pytest.raises(KoreApiError, match="plain text reason"):
        classify_response(answer(400, "plain text reason"))
    with pytest.raises(KoreApiError, match="other"):
        classify_response(answer(401, '{"message": "other"}'))


def test_undocumented_shapes_fail() -> None:
    with pytest.raises(KoreApiError, match="documented shape"):
        parse_sessions_page({"sessions": {"not": "a list"}})
    with pytest.raises(KoreApiError, match="not a JSON object"):
        classify_response(answer(200, "[1, 2]"))
    page = parse_sessions_page({"sessions": [], "moreAvailable": False, "invalidSessions": ["x"]})
    assert page.invalid_ids == ["x"]


def test_redirects_fail_fast_naming_the_new_host() -> None:
    with pytest.raises(KoreApiError, match=r"redirects to https://platform\.kore\.ai"):
        classify_response(answer(301, "", {"Location": "https://platform.kore.ai/api"}))


def test_documented_rate_limit_message_is_retried_whatever_its_status() -> None:
    body = (
        '{"errors":[{"msg":"Rate limit for this API has been reached. Please try again after some time."}]}'
    )
    with pytest.raises(RetryableError) as caught:
        classify_response(answer(403, body))
    assert caught.value.status == 429


# A person's data in an answer that is not the documented shape.
USER_ID = "jane.doe@example.com"


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (
            {"total": 1, "sessions": {USER_ID: {"userId": USER_ID}}},
            "got an object (1 key); the answer is an object (sessions, total)",
        ),
        (
            {"sessions": [{"userId": USER_ID}, USER_ID], USER_ID: 1},
            "got an array of 2 items (object, string); the answer is an object (sessions and 1 other key)",
        ),
        (
            {"moreAvailable": False, "userId": USER_ID},
            "got null; the answer is an object (moreAvailable, userId)",
        ),
    ],
    ids=["object", "array-of-mixed", "missing"],
)
def test_a_bad_shape_is_described_by_its_shape_never_its_values(payload: dict, expected: str) -> None:
    """Types and schema key names only: no value, and no key that is itself data (an e-mail)."""
    with pytest.raises(KoreApiError) as caught:
        parse_sessions_page(payload)
    message = str(caught.value)
    assert message.endswith(expected), message
    assert "jane" not in message


def test_an_error_body_without_a_message_is_described_by_its_shape() -> None:
    """A refusal whose JSON body has no message: its shape is shown, not its values."""
    with pytest.raises(KoreApiError) as caught:
        classify_response(answer(400, '{"request": {"userId": "jane.doe@example.com"}, "code": 7}'))
    assert "no message in the body, which is an object (code, request)" in str(caught.value)
    assert "jane" not in str(caught.value)
