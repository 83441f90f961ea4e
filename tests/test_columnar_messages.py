"""The messages' columnar path gives the tables of the record transform, or steps aside.

For generated pages (with and without `keep_user_text`) and hand-made odd ones,
`message_columns` either gives None (the page takes `message_fields.to_row`) or tables equal to
the Arrow builder's tables of the rows: same tables, schema, values and dlt keys.
"""

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest
from kore_sessions.sandbox.conversations import conversation
from kore_sessions.sandbox.generator import generate_sessions, make_bot_ids
from kore_sessions.source.api.answers import InvalidRecordError
from kore_sessions.source.api.arrow_rows import page_tables
from kore_sessions.source.messages.columnar_messages import message_columns
from kore_sessions.source.messages.message_columns import KNOWN_API_FIELDS
from kore_sessions.source.messages.message_fields import to_row
from kore_sessions.source.messages.message_tables import MESSAGES_SPEC

pytestmark = pytest.mark.unit

LOAD_ID = "1767225600.123"
START = datetime(2026, 6, 1, tzinfo=UTC)


def generated_messages(seed: int, days: int, per_day: int, limit: int) -> list[dict[str, Any]]:
    """The messages of generated sessions, as the v2 route shows them."""
    sessions = generate_sessions(make_bot_ids(1, seed), START, START + timedelta(days=days), per_day, seed)
    views = (message.view() for session in sessions for message in conversation(session))
    return [view for _, view in zip(range(limit), views, strict=False)]


def assert_same_tables(records: list[dict[str, Any]], keep: bool, must_build: bool = False) -> bool:
    """The columnar tables equal the record transform's, or the page is left to it."""
    built = message_columns(copy.deepcopy(records), keep)
    try:
        expected = page_tables(MESSAGES_SPEC, [to_row(raw, keep) for raw in copy.deepcopy(records)], LOAD_ID)
    except (InvalidRecordError, TypeError, ValueError):
        assert built is None, "a page the record transform refuses is never built"
        return False
    assert built is not None or not must_build, "a page in the documented shape is built"
    if built is None:
        return False
    tables = built.tables(LOAD_ID)
    assert list(tables) == list(expected)
    for name, table in expected.items():
        assert tables[name].schema == table.schema, name
        assert tables[name].equals(table), name
    return True


@pytest.mark.parametrize("keep", [False, True])
@pytest.mark.parametrize(("seed", "per_day", "limit"), [(0, 300, 4000), (1, 40, 10000), (2, 900, 2500)])
def test_generated_pages_are_built_alike(seed: int, per_day: int, limit: int, keep: bool) -> None:
    records = generated_messages(seed, 2, per_day, limit)
    assert assert_same_tables(records, keep, must_build=True)


def _set(path: tuple[str, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    """A change that sets a field (a path into the message) to a value."""

    def change(raw: dict[str, Any]) -> None:
        for key in path[:-1]:
            raw = raw.setdefault(key, {})
        raw[path[-1]] = value

    return change


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    """A change that removes a field."""
    return lambda raw: raw.pop(key, None)


def _component(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A change of the first component (one added if there is none)."""

    def change(raw: dict[str, Any]) -> None:
        components = raw.setdefault("components", [])
        if not components:
            components.append({"_id": "cp-1", "cT": "text", "data": {"text": "hi"}})
        components[0][key] = value

    return change


def _tag(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A change of the first message tag (one added)."""

    def change(raw: dict[str, Any]) -> None:
        tags = raw.setdefault("tags", {}).setdefault("messageTags", [])
        tags.insert(0, {"name": "added", "value": "x"})
        tags[0][key] = value

    return change


ODD_CHANGES: dict[str, Callable[[dict[str, Any]], None]] = {
    "no id": _drop("_id"),
    "empty id": _set(("_id",), ""),
    "numeric id": _set(("_id",), 3),
    "no session": _drop("sessionId"),
    "numeric session": _set(("sessionId",), 3),
    "no created": _drop("createdOn"),
    "created as a date": _set(("createdOn",), "2026-06-01"),
    "created with offset": _set(("createdOn",), "2026-06-01T01:00:00.000+01:00"),
    "no modified": _drop("lmodifiedOn"),
    "modified as text": _set(("lmodifiedOn",), "yesterday"),
    "control type": _set(("type",), "ctrlmsg"),
    "no type": _drop("type"),
    "numeric type": _set(("type",), 2),
    "numeric status": _set(("status",), 1),
    "no chnl": _drop("chnl"),
    "empty chnl": _set(("chnl",), ""),
    "channel spelled out": lambda raw: raw.update(channel=raw.pop("chnl", None)),
    "numeric channel": _set(("channel",), 5),
    "float source": _set(("ms",), 3.0),
    "text source": _set(("ms",), "2"),
    "null source": _set(("ms",), None),
    "no source": _drop("ms"),
    "object source": _set(("ms",), {"a": 1}),
    "boolean flag": _set(("isD",), True),
    "text flag": _set(("isBB",), "1"),
    "float flag": _set(("isD",), 1.0),
    "big flag": _set(("isD",), 2**70),
    "text stamp": _set(("timestampValue",), "1780272005215"),
    "float stamp": _set(("timestampValue",), 17.0),
    "boolean stamp": _set(("timestampValue",), True),
    "agent": _set(("author",), {"id": "a-7", "name": "Dana"}),
    "empty agent": _set(("author",), {}),
    "agent as text": _set(("author",), "Dana"),
    "components as text": _set(("components",), "x"),
    "null components": _set(("components",), None),
    "no components": _drop("components"),
    "a component as text": _set(("components",), ["x"]),
    "no component data": _component("data", None),
    "component data as text": _component("data", "hi"),
    "numeric component text": _component("data", {"text": 4}),
    "empty component text": _component("data", {"text": ""}),
    "no component kind": _component("cT", None),
    "numeric component id": _component("_id", 9),
    "second component": lambda raw: raw.setdefault("components", []).append(
        {"_id": "cp-2", "cT": "image", "data": {"text": "Zürich ✓"}}
    ),
    "textless component": lambda raw: raw.setdefault("components", []).append({"_id": "cp-3", "cT": "image"}),
    "null tags": _set(("tags",), None),
    "tags as a list": _set(("tags",), [1]),
    "tag list as text": _set(("tags", "userTags"), "x"),
    "a tag as text": _set(("tags", "sessionTags"), ["plain"]),
    "numeric tag name": _tag("name", 7),
    "object tag value": _tag("value", {"b": [1, 2.5], "a": None}),
    "float tag value": _tag("value", 1e-7),
    "non-ascii tag value": _tag("value", {"city": "Zürich"}),
    "tag with more keys": _tag("source", "crm"),
    "other tag list": _set(("tags", "botTags"), [{"name": "n", "value": 1}]),
    "extra text": _set(("note",), "free text"),
    "extra number": _set(("score",), 0.5),
    "extra boolean": _set(("flagged",), False),
    "extra object": _set(("agentAssistDetails",), {"said": "typed"}),
    "extra mixed": _set(("iv",), "3"),
    "extra named as a column": _set(("text",), "typed"),
    "extra clashing names": lambda raw: raw.update(fooBar=1, foo_bar=2),
    "extra infinity": _set(("score",), float("inf")),
}


@pytest.fixture(scope="module")
def base_page() -> list[dict[str, Any]]:
    """A small generated page of messages."""
    return generated_messages(7, 1, 60, 80)


@pytest.mark.parametrize("keep", [False, True])
@pytest.mark.parametrize("where", ["one", "every"])
@pytest.mark.parametrize("name", list(ODD_CHANGES))
def test_odd_pages_are_built_alike_or_left_to_the_record_transform(
    base_page: list[dict[str, Any]], name: str, where: str, keep: bool
) -> None:
    records = copy.deepcopy(base_page)
    for raw in records[5:6] if where == "one" else records:
        ODD_CHANGES[name](raw)
    assert_same_tables(records, keep)


def test_documented_odd_values_stay_on_the_columnar_path(base_page: list[dict[str, Any]]) -> None:
    """Loose values `to_row` converts by rules the columnar path shares are built, not left."""
    built = (
        "control type", "no modified", "empty chnl", "channel spelled out", "float source", "text source",
        "agent", "empty agent", "null components", "no component data", "empty component text",
        "second component", "textless component", "numeric tag name", "object tag value",
        "tag with more keys", "other tag list", "extra text", "extra number", "extra boolean",
        "extra object", "extra mixed",
    )  # fmt: skip
    for name in built:
        for keep in (False, True):
            records = copy.deepcopy(base_page)
            ODD_CHANGES[name](records[5])
            assert assert_same_tables(records, keep, must_build=True), name


def test_a_kept_subset_keeps_its_child_rows(base_page: list[dict[str, Any]]) -> None:
    built = message_columns(base_page, True)
    assert built is not None and built.extras, "extra fields, typed by the whole page's values"
    documented = [{k: v for k, v in raw.items() if k in KNOWN_API_FIELDS} for raw in base_page]
    built = message_columns(documented, False)
    assert built is not None and not built.extras
    kept = built.select(pa.array([index % 4 == 1 for index in range(len(base_page))]))
    rows = [to_row(raw) for index, raw in enumerate(documented) if index % 4 == 1]
    expected = page_tables(MESSAGES_SPEC, rows, LOAD_ID)
    tables = kept.tables(LOAD_ID)
    assert list(tables) == list(expected)
    for name, table in expected.items():
        assert tables[name].equals(table), name
