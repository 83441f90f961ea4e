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
from kore_sessions.source.api.arrow_rows import page_tables
from kore_sessions.source.messages.columnar_messages import message_columns
from kore_sessions.source.messages.message_columns import KNOWN_API_FIELDS
from kore_sessions.source.messages.message_fields import to_row
from kore_sessions.source.messages.message_tables import MESSAGES_SPEC

from .record_changes import assert_built_alike, drop_field, set_field

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
    rows = lambda: [to_row(raw, keep) for raw in copy.deepcopy(records)]  # noqa: E731
    return assert_built_alike(built, lambda: page_tables(MESSAGES_SPEC, rows(), LOAD_ID), LOAD_ID, must_build)


@pytest.mark.parametrize("keep", [False, True])
@pytest.mark.parametrize(("seed", "per_day", "limit"), [(0, 300, 4000), (1, 40, 10000), (2, 900, 2500)])
def test_generated_pages_are_built_alike(seed: int, per_day: int, limit: int, keep: bool) -> None:
    records = generated_messages(seed, 2, per_day, limit)
    assert assert_same_tables(records, keep, must_build=True)


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
    "no id": drop_field("_id"),
    "empty id": set_field(("_id",), ""),
    "numeric id": set_field(("_id",), 3),
    "no session": drop_field("sessionId"),
    "numeric session": set_field(("sessionId",), 3),
    "no created": drop_field("createdOn"),
    "created as a date": set_field(("createdOn",), "2026-06-01"),
    "created with offset": set_field(("createdOn",), "2026-06-01T01:00:00.000+01:00"),
    "no modified": drop_field("lmodifiedOn"),
    "modified as text": set_field(("lmodifiedOn",), "yesterday"),
    "control type": set_field(("type",), "ctrlmsg"),
    "no type": drop_field("type"),
    "numeric type": set_field(("type",), 2),
    "numeric status": set_field(("status",), 1),
    "no chnl": drop_field("chnl"),
    "empty chnl": set_field(("chnl",), ""),
    "channel spelled out": lambda raw: raw.update(channel=raw.pop("chnl", None)),
    "numeric channel": set_field(("channel",), 5),
    "float source": set_field(("ms",), 3.0),
    "text source": set_field(("ms",), "2"),
    "null source": set_field(("ms",), None),
    "no source": drop_field("ms"),
    "object source": set_field(("ms",), {"a": 1}),
    "boolean flag": set_field(("isD",), True),
    "text flag": set_field(("isBB",), "1"),
    "float flag": set_field(("isD",), 1.0),
    "big flag": set_field(("isD",), 2**70),
    "text stamp": set_field(("timestampValue",), "1780272005215"),
    "float stamp": set_field(("timestampValue",), 17.0),
    "boolean stamp": set_field(("timestampValue",), True),
    "agent": set_field(("author",), {"id": "a-7", "name": "Dana"}),
    "empty agent": set_field(("author",), {}),
    "agent as text": set_field(("author",), "Dana"),
    "components as text": set_field(("components",), "x"),
    "null components": set_field(("components",), None),
    "no components": drop_field("components"),
    "a component as text": set_field(("components",), ["x"]),
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
    "null tags": set_field(("tags",), None),
    "tags as a list": set_field(("tags",), [1]),
    "tag list as text": set_field(("tags", "userTags"), "x"),
    "a tag as text": set_field(("tags", "sessionTags"), ["plain"]),
    "numeric tag name": _tag("name", 7),
    "object tag value": _tag("value", {"b": [1, 2.5], "a": None}),
    "float tag value": _tag("value", 1e-7),
    "non-ascii tag value": _tag("value", {"city": "Zürich"}),
    "tag with more keys": _tag("source", "crm"),
    "other tag list": set_field(("tags", "botTags"), [{"name": "n", "value": 1}]),
    "extra text": set_field(("note",), "free text"),
    "extra number": set_field(("score",), 0.5),
    "extra boolean": set_field(("flagged",), False),
    "extra object": set_field(("agentAssistDetails",), {"said": "typed"}),
    "extra mixed": set_field(("iv",), "3"),
    "extra named as a column": set_field(("text",), "typed"),
    "extra clashing names": lambda raw: raw.update(fooBar=1, foo_bar=2),
    "extra infinity": set_field(("score",), float("inf")),
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
