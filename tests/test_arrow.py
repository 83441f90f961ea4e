"""Arrow tables of a page: typed columns, flattened extras, and the keys dlt's merge needs."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa

from sources.kore_sessions.arrow import SESSION_FIELDS, page_tables
from sources.kore_sessions.records import to_row

RAW = {
    "sessionId": "s-1",
    "botId": "st-1",
    "channel": "korevg",
    "userId": "u-1",
    "start_time": "2026-11-01T10:00:00.123Z",
    "end_time": "2026-11-01T10:05:00.000Z",
    "session_lang": ["en", "es"],
    "sessionType": "interactive",
    "containmentType": "agent",
    "isDeveloper": False,
    "sessionStatus": "closed",
    "tags": {
        "userTags": [{"name": "tier", "value": "gold"}],
        "sessionTags": [{"name": "callId", "value": "c-9"}, {"name": "wait", "value": 63.6}],
        "altText": [],
    },
    "noOfMessagesExchanged": 7,
    "noOfTasksExecuted": 2,
    "sentiment": {"score": 0.5, "label": "calm"},
    "callId": "c-9",
}


def test_root_table_is_typed_with_flattened_extras_and_row_keys() -> None:
    """Known fields keep their types; new ones are flattened like dlt's normalizer names them."""
    second = {**RAW, "sessionId": "s-2", "sentiment": {"score": 1}, "callId": None}
    tables = page_tables([to_row(RAW), to_row(second)], "load-1")
    root = tables["sessions"]
    assert root.schema.names[: len(SESSION_FIELDS)] == SESSION_FIELDS.names
    assert root.schema.field("start_time").type == pa.timestamp("us", tz="UTC")
    assert root.column("start_time")[0].as_py() == datetime(2026, 11, 1, 10, 0, 0, 123000, tzinfo=UTC)
    assert root.column("sentiment__score").to_pylist() == [0.5, 1.0]
    assert root.column("sentiment__label").to_pylist() == ["calm", None]
    assert root.column("call_id").to_pylist() == ["c-9", None]
    assert "tags__alt_text" not in root.column_names, "an empty list makes no column"
    assert root.column("_dlt_id").to_pylist() == ["s-1", "s-2"]
    assert root.column("_dlt_load_id").to_pylist() == ["load-1", "load-1"]


def test_child_tables_point_to_their_session() -> None:
    """Each child row carries its session as root and parent key, and a unique row key."""
    tables = page_tables([to_row(RAW)], "load-1")
    tags = tables["sessions__session_tags"].to_pylist()
    assert [(t["name"], t["value"], t["value_type"]) for t in tags] == [
        ("callId", "c-9", "string"),
        ("wait", "63.6", "number"),
    ]
    assert {(t["_dlt_root_id"], t["_dlt_parent_id"]) for t in tags} == {("s-1", "s-1")}
    assert [t["_dlt_id"] for t in tags] == ["s-1:0", "s-1:1"]
    assert [t["_dlt_list_idx"] for t in tags] == [0, 1]
    langs = tables["sessions__session_lang"].to_pylist()
    assert [(row["session_id"], row["lang"]) for row in langs] == [("s-1", "en"), ("s-1", "es")]


def test_deletions_and_sessions_without_children() -> None:
    """A deletion row is a root row with the delete flag; empty child lists make no table."""
    bare = {**RAW, "session_lang": [], "tags": {}}
    tables = page_tables([to_row(bare), {"session_id": "gone", "deleted_in_source": True}], "l")
    assert set(tables) == {"sessions"}
    assert tables["sessions"].column("deleted_in_source").to_pylist() == [None, True]
    assert tables["sessions"].column("session_id").to_pylist() == [RAW["sessionId"], "gone"]


def test_extra_values_of_mixed_types_become_text() -> None:
    """A new field whose values disagree in type is kept as text (JSON for non-strings)."""
    rows = [to_row({**RAW, "sessionId": f"s-{i}", "mood": value}) for i, value in enumerate([1, "x", [1, 2]])]
    root = page_tables(rows, "l")["sessions"]
    assert root.column("mood").to_pylist() == ["1", "x", "[1,2]"]
