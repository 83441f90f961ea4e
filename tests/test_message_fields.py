"""One raw message to one row: loose types kept, what users typed left out unless asked for,
a message the run cannot place failing in one line that quotes no value."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from kore_sessions.source.api.answers import InvalidRecordError
from kore_sessions.source.messages.message_fields import to_row

pytestmark = pytest.mark.unit

TYPED = "my card is 4111 1111 1111 1111, jane@example.com"


def raw(**fields: Any) -> dict[str, Any]:
    """A user's message as the API sends it, with `fields` over it."""
    message: dict[str, Any] = {
        "_id": "ms-1",
        "type": "incoming",
        "createdOn": "2025-03-18T10:00:00.123Z",
        "lmodifiedOn": "2025-03-18T10:00:00.200Z",
        "timestampValue": 1742292000200,
        "sessionId": "a" * 24,
        "botId": "st-1",
        "chnl": "rtm",
        "createdBy": "u-1",
        "ms": 1,
        "isD": 0,
        "components": [{"_id": "cp-1", "cT": "text", "data": {"text": TYPED}, "thumbnails": []}],
        "tags": {"messageTags": [{"name": "intent", "value": "card"}], "userTags": [], "sessionTags": []},
    }
    message.update(fields)
    return message


def test_what_a_user_typed_is_left_out_but_its_length_and_kind_are_kept() -> None:
    row = to_row(raw(note="free text", agentAssistDetails={"said": TYPED}, iv=3))
    assert row["text"] is None and row["components"][0]["text"] is None
    assert row["text_length"] == len(TYPED) and row["component_kinds"] == "text"
    assert "note" not in row and "agentAssistDetails" not in row and row["iv"] == 3
    assert TYPED not in repr(row)
    kept = to_row(raw(note="free text"), keep_user_text=True)
    assert kept["text"] == TYPED and kept["components"][0]["text"] == TYPED and kept["note"] == "free text"


def test_the_bot_s_words_are_kept_and_loose_types_pass() -> None:
    row = to_row(
        raw(type="outgoing", ms="4", timestampValue="1742292000200", isD="1", channel="x", chnl=None)
    )
    assert row["text"] == TYPED and row["message_type"] == "outgoing"
    assert row["message_source"] == "4" and row["timestamp_value"] == 1742292000200 and row["is_developer"]
    assert row["channel"] == "x" and row["created_on"] == datetime(2025, 3, 18, 10, 0, 0, 123000, tzinfo=UTC)
    control = to_row(raw(type="ctrlmsg", ms=3.0))
    assert (
        control["text"] is None
        and control["message_type"] == "ctrlmsg"
        and control["message_source"] == "3.0"
    )
    assert to_row(raw(timestampValue="soon"))["timestamp_value"] is None
    agent = to_row(raw(type="outgoing", author={"id": "a-7", "name": "Dana Agent"}))
    assert agent["from_agent"] is True and "Dana" not in repr(agent) and not to_row(raw())["from_agent"]
    assert to_row(raw(components="not a list"))["component_kinds"] is None
    assert [(t["scope"], t["name"], t["value"]) for t in to_row(raw())["tags"]] == [
        ("message", "intent", "card")
    ]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"_id": None}, "a message without a _id (fields present: "),
        ({"_id": 7}, "a message whose _id is a number, not text"),
        ({"createdOn": None}, "message ms-1 has no createdOn"),
        ({"createdOn": "jane@example.com"}, "message ms-1: createdOn is not a timestamp (it is a string)"),
        ({"sessionId": ""}, "message ms-1 has no sessionId"),
    ],
)
def test_a_message_the_run_cannot_place_fails_in_one_line_without_its_values(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidRecordError) as raised:
        to_row(raw(**fields))
    text = str(raised.value)
    assert message in text and "\n" not in text and "jane@" not in text and TYPED not in text
