"""Arrow tables of a page: typed columns, flattened extras, and the keys dlt's merge needs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import dlt
import pyarrow as pa
import pytest
from kore_sessions.source.sessions.arrow import SESSION_FIELDS, TableBatches, page_tables, table_hints
from kore_sessions.source.sessions.records import InvalidRecordError, to_row

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

# dlt only extracts here: nothing is loaded.
pytestmark = pytest.mark.unit


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


def _page(first: int, count: int, extra: dict | None = None) -> dict[str, pa.Table]:
    rows = [
        to_row({"sessionId": f"s{first + i}", "start_time": "2026-10-01T10:00:00Z", **(extra or {})})
        for i in range(count)
    ]
    return page_tables(rows, "L")


def test_batches_join_pages_until_the_threshold() -> None:
    batches = TableBatches(5, "sessions")
    assert list(batches.add(_page(0, 2))) == []
    assert list(batches.add(_page(2, 2))) == []
    closed = dict(batches.add(_page(4, 2)))  # 6 sessions: the batch closes
    assert closed["sessions"].column("session_id").to_pylist() == [f"s{i}" for i in range(6)]
    assert list(batches.flush()) == []


def test_a_page_of_another_schema_closes_the_whole_batch_first() -> None:
    batches = TableBatches(100, "sessions")
    assert list(batches.add(_page(0, 2))) == []
    closed = list(batches.add(_page(2, 1, {"newField": 1})))
    assert [(name, table.num_rows) for name, table in closed] == [("sessions", 2)]
    rest = dict(batches.flush())
    assert rest["sessions"].column("new_field").to_pylist() == [1]
    assert rest["sessions"].column("session_id").to_pylist() == ["s2"]


def test_a_child_table_of_another_schema_never_goes_before_its_sessions(tmp_path: Path) -> None:
    """dlt refuses a child table it meets before its parent (a fresh schema: the first load)."""
    plain = {"tags": {"userTags": [{"name": "a", "value": 1}]}}
    richer = {"tags": {"userTags": [{"name": "a", "value": 1, "source": "crm"}]}}
    pages = [_page(0, 2, plain), _page(2, 2, richer), _page(4, 2, plain)]
    batches = TableBatches(100, "sessions")
    closed = [name for page in pages for name, _ in batches.add(page)] + [name for name, _ in batches.flush()]
    assert closed == ["sessions", "sessions__user_tags"] * 3
    hints = table_hints()

    @dlt.resource(name="sessions", write_disposition="merge")
    def sessions():  # type: ignore[no-untyped-def]
        replay = TableBatches(100, "sessions")
        for page in pages:
            for name, table in replay.add(page):
                yield dlt.mark.with_hints(table, hints[name], create_table_variant=True)
        for name, table in replay.flush():
            yield dlt.mark.with_hints(table, hints[name], create_table_variant=True)

    pipeline = dlt.pipeline("batches_order", destination="duckdb", pipelines_dir=str(tmp_path))
    pipeline.extract(sessions(), loader_file_format="parquet")
    assert "sessions__user_tags" in pipeline.default_schema.tables


def test_batches_keep_every_row_of_every_table_in_order() -> None:
    pages = [_page(i * 3, 3, {"session_lang": ["en", "de"]}) for i in range(7)]
    batches = TableBatches(4, "sessions")
    out: dict[str, list[pa.Table]] = {}
    for page in pages:
        for name, table in batches.add(page):
            out.setdefault(name, []).append(table)
    for name, table in batches.flush():
        out.setdefault(name, []).append(table)
    for name in pages[0]:
        joined = pa.concat_tables(out[name])
        assert joined.equals(pa.concat_tables([page[name] for page in pages]))
    assert [t.num_rows for t in out["sessions"]] == [6, 6, 6, 3]


@pytest.mark.parametrize(
    ("field", "value", "column"),
    [
        ("noOfMessagesExchanged", "jane.doe@example.com", "sessions.no_of_messages_exchanged"),
        ("noOfTasksExecuted", ["jane.doe@example.com"], "sessions.no_of_tasks_executed"),
        ("userId", {"email": "jane.doe@example.com"}, "sessions.user_id"),
    ],
)
def test_a_value_that_does_not_fit_its_column_is_named_by_session_and_column(
    field: str, value: object, column: str
) -> None:
    """pyarrow quotes a value it cannot convert ("Could not convert 'jane@...'"): the error
    names the session and the column instead, and the value's JSON type, never the value."""
    rows = [to_row(RAW), to_row({**RAW, "sessionId": "s-2", field: value})]
    with pytest.raises(InvalidRecordError) as caught:
        page_tables(rows, "l")
    message = str(caught.value)
    assert message.startswith(f"session s-2: {column} holds "), message
    assert "jane" not in message


def test_a_tag_that_does_not_fit_names_its_table() -> None:
    """A tag whose name is not text: the child table and column are named, not the tag."""
    raw = {**RAW, "tags": {"userTags": [{"name": 20550, "value": "jane.doe@example.com"}]}}
    with pytest.raises(
        InvalidRecordError, match=r"^session s-1: sessions__user_tags\.name holds a number"
    ) as caught:
        page_tables([to_row(raw)], "l")
    assert "jane" not in str(caught.value) and "20550" not in str(caught.value)
