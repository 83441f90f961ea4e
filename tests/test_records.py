"""Unit tests of the pure record transforms."""

import json
import traceback
from datetime import UTC, datetime

import pytest
from kore_sessions.source.api.timestamps import format_api_timestamp, parse_timestamp
from kore_sessions.source.sessions.records import (
    InvalidRecordError,
    is_legacy_shape,
    normalize_containment,
    session_status,
    tag_value_text,
    to_row,
)

pytestmark = pytest.mark.unit

SAMPLE = {
    "sessionId": "6465cf6e4769ed4e822b82a1",
    "botId": "st-dc600cf5-b1c5-581e-a2c3-eb81fe39c927",
    "channel": "korevg",
    "userId": "u-8c4ca335",
    "start_time": "2023-05-18T07:10:38.695Z",
    "end_time": "2023-05-18T07:10:39.201Z",
    "session_lang": ["en", "es"],
    "sessionType": "interactive",
    "isDeveloper": 0,
    "sessionStatus": "closed",
    "tags": {
        "userTags": [{"name": "tier", "value": {"level": 2}}, {"name": "vip", "value": True}],
        "sessionTags": [
            {"value": "+1123456789", "name": "callerNumber"},
            {"name": "n", "value": 4.5},
        ],
        "altText": [],
    },
    "noOfMessagesExchanged": 4,
    "noOfTasksExecuted": 1,
    "containmentType": "agent",
    "sentiment": {"score": 0.4},
}


def test_row_has_typed_columns_and_child_lists() -> None:
    row = to_row(SAMPLE)
    assert row["session_id"] == SAMPLE["sessionId"]
    assert row["start_time"] == datetime(2023, 5, 18, 7, 10, 38, 695000, tzinfo=UTC)
    assert row["is_developer"] is False
    assert row["containment_type"] == "agent"
    assert row["session_type"] == "interactive"
    assert [lang["lang"] for lang in row["session_lang"]] == ["en", "es"]
    values = {(t["name"], t["value"], t["value_type"]) for t in row["user_tags"]}
    assert values == {("tier", '{"level":2}', "object"), ("vip", "true", "boolean")}
    assert {t["value_type"] for t in row["session_tags"]} == {"string", "number"}
    assert all(t["session_id"] == SAMPLE["sessionId"] for t in row["session_tags"])
    assert row["tags"] == {"altText": []}
    assert row["sentiment"] == {"score": 0.4}, "unknown fields pass through"


def test_legacy_shape_is_detected_and_normalized() -> None:
    legacy = {k: v for k, v in SAMPLE.items() if k not in ("containmentType", "sessionStatus")}
    legacy["sessionType"] = "Selfservice"
    assert is_legacy_shape([legacy])
    assert not is_legacy_shape([SAMPLE])
    row = to_row(legacy)
    assert row["containment_type"] == "selfService"
    assert row["session_type"] is None, "containment never lands in session_type"
    assert to_row(legacy, "dropOff")["containment_type"] == "dropOff"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("Selfservice", "selfService"), ("DROPOFF", "dropOff"), ("agent", "agent"), ("x", None)],
)
def test_containment_spellings(value: str, expected: str | None) -> None:
    assert normalize_containment(value) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2026-03-01T10:00:00.123Z",
        "2026-03-01T10:00:00.123000+00:00",
        "2026-03-01T11:00:00.123+01:00",
        "2026-03-01T10:00:00.123000Z",
    ],
)
def test_timestamps_parse_tolerantly(text: str) -> None:
    assert parse_timestamp(text) == datetime(2026, 3, 1, 10, 0, 0, 123000, tzinfo=UTC)


def test_bare_date_is_midnight_utc_and_format_has_milliseconds() -> None:
    assert parse_timestamp("2026-03-01") == datetime(2026, 3, 1, tzinfo=UTC)
    moment = datetime(2026, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert format_api_timestamp(moment) == "2026-03-01T10:00:00.123Z"


def test_records_without_id_or_start_are_refused() -> None:
    with pytest.raises(InvalidRecordError):
        to_row({k: v for k, v in SAMPLE.items() if k != "sessionId"})
    with pytest.raises(InvalidRecordError, match="no start_time"):
        to_row({k: v for k, v in SAMPLE.items() if k != "start_time"})
    with pytest.raises(InvalidRecordError, match="start_time is not a timestamp"):
        to_row({**SAMPLE, "start_time": "yesterday-ish"})


# Values of SAMPLE that are a person's data (or could be): none may reach a message.
SAMPLE_VALUES = (SAMPLE["userId"], "+1123456789", "callerNumber", "tier", "korevg", SAMPLE["botId"])


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"sessionId": None}, "a session without a sessionId (fields present: botId, channel, "),
        ({"sessionId": 42}, "a session whose sessionId is a number, not text (fields present: "),
        (
            {"start_time": "Jane Doe"},
            f"session {SAMPLE['sessionId']}: start_time is not a timestamp (it is a string)",
        ),
        (
            {"end_time": {"by": "u-8c4ca335"}},
            f"session {SAMPLE['sessionId']}: end_time is not a timestamp (it is an object)",
        ),
        ({"start_time": None}, f"session {SAMPLE['sessionId']} has no start_time"),
    ],
    ids=["no-id", "id-not-text", "bad-start", "bad-end", "no-start"],
)
def test_a_refused_record_is_named_by_its_id_and_field_never_by_its_values(
    change: dict[str, object], expected: str
) -> None:
    """The error names the session id and the field (or, without an id, the fields present),
    never the user id, a tag or any other value of the session, the bad one included."""
    with pytest.raises(InvalidRecordError) as caught:
        to_row({**SAMPLE, **change})
    message = str(caught.value)
    assert message.startswith(expected), message
    printed = "".join(traceback.format_exception(caught.value))  # a parser's chained message too
    for value in (*SAMPLE_VALUES, "Jane Doe"):
        assert value not in printed, f"{value!r} in {printed!r}"


def test_status_without_session_status_is_unknown_unless_no_end_time() -> None:
    assert session_status({"end_time": None}) == "active"
    assert session_status({"end_time": "2026-01-01T00:00:00.000Z"}) is None
    assert session_status({"sessionStatus": "Active"}) == "active"
    assert session_status({}) is None


def test_an_undocumented_containment_value_is_kept_as_sent() -> None:
    """A containment type the docs do not list is not dropped: it stays as the API sent it."""
    raw = {"sessionId": "s-1", "start_time": "2026-11-01T10:00:00.000Z", "containmentType": "escalated"}
    assert to_row(raw)["containment_type"] == "escalated"
    assert to_row({**raw, "containmentType": "Selfservice"})["containment_type"] == "selfService"


@pytest.mark.parametrize(
    "value",
    [0, -7, 2**70, 2.7, -0.0, 1e22, 1.5e-7, float("nan"), float("inf"), float("-inf"), 1.2345678901234567e19],
)
def test_a_number_tag_value_reads_as_json_writes_it(value: float) -> None:
    assert tag_value_text(value) == (json.dumps(value), "number")


def test_tag_keys_beyond_name_and_value_and_odd_tags_pass_through() -> None:
    row = to_row(
        {
            "sessionId": "s1",
            "start_time": "2026-10-01T10:00:00Z",
            "tags": {"userTags": [{"name": "a", "value": 1, "source": "crm"}, "bare"], "extra": [1]},
            "newField": {"x": 1},
        }
    )
    first, second = row["user_tags"]
    assert first == {"session_id": "s1", "position": 0, "name": "a", "value": "1", "value_type": "number"} | {
        "source": "crm"
    }
    assert second == {
        "session_id": "s1",
        "position": 1,
        "name": None,
        "value": "bare",
        "value_type": "string",
    }
    assert row["tags"] == {"extra": [1]}
    assert row["newField"] == {"x": 1}
    plain = to_row({"sessionId": "s2", "start_time": "2026-10-01T10:00:00Z", "tags": {"userTags": []}})
    assert "tags" not in plain and "newField" not in plain
