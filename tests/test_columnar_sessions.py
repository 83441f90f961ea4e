"""The sessions' columnar path gives the tables of the record transform, or steps aside.

For generated pages and for hand-made odd ones, `session_columns` either gives None (the page
takes `records.to_row`) or tables equal to `arrow.page_tables` of the rows: same tables, same
schema, same values, same dlt keys. A page the record transform refuses is never built.
"""

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest
from kore_sessions.sandbox.generator import generate_sessions, make_bot_ids
from kore_sessions.source.sessions.arrow import page_tables
from kore_sessions.source.sessions.columnar_sessions import session_columns
from kore_sessions.source.sessions.records import to_row

from .record_changes import assert_built_alike, drop_field, set_field

pytestmark = pytest.mark.unit

LOAD_ID = "1767225600.123"
START = datetime(2026, 6, 1, tzinfo=UTC)


def generated_page(seed: int, days: int, per_day: int, hours_after: float) -> list[dict[str, Any]]:
    """The sessions a page shows `hours_after` the generated period (open ones while it is short)."""
    sessions = generate_sessions(make_bot_ids(2, seed), START, START + timedelta(days=days), per_day, seed)
    now = START + timedelta(days=days, hours=hours_after)
    return [view for session in sessions if (view := session.view(now, legacy=False)) is not None]


def python_tables(records: list[dict[str, Any]]) -> dict[str, pa.Table]:
    """The tables of the record transform."""
    return page_tables([to_row(raw) for raw in records], LOAD_ID)


def assert_same_tables(records: list[dict[str, Any]], must_build: bool = False) -> bool:
    """The columnar tables equal the record transform's, or the page is left to it.

    Returns:
        Whether the columnar path built the page.
    """
    built = session_columns(copy.deepcopy(records), None)
    expected = lambda: python_tables(copy.deepcopy(records))  # noqa: E731
    return assert_built_alike(built, expected, LOAD_ID, must_build, _first_difference)


def _first_difference(got: pa.Table, expected: pa.Table) -> str:
    """The first column that differs, for the failure's message."""
    for name in expected.column_names:
        if not got.column(name).equals(expected.column(name)):
            return f"{name}: {got.column(name).to_pylist()[:5]} != {expected.column(name).to_pylist()[:5]}"
    return "same columns"


@pytest.mark.parametrize(
    ("seed", "days", "per_day", "hours_after"),
    [(0, 3, 400, 0.5), (1, 1, 1500, 0.1), (2, 7, 150, 48), (3, 2, 600, 0), (4, 5, 60, 1)],
)
def test_generated_pages_are_built_alike(seed: int, days: int, per_day: int, hours_after: float) -> None:
    records = generated_page(seed, days, per_day, hours_after)
    for start in range(0, len(records), 1000):
        assert_same_tables(records[start : start + 1000], must_build=True)
    assert {raw["sessionStatus"] for raw in records} >= {"closed"}


def test_open_sessions_and_every_tag_type_are_on_the_columnar_path() -> None:
    records = generated_page(5, 2, 2000, 0.05)
    assert {raw["sessionStatus"] for raw in records} == {"active", "closed"}
    kinds = {
        type(tag["value"]) for raw in records for tag in raw["tags"]["userTags"] + raw["tags"]["sessionTags"]
    }
    assert kinds >= {str, int, float, bool, dict}
    assert assert_same_tables(records[:1000], must_build=True)


def _first_tag(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A change of the first user tag (one added if there is none)."""

    def change(raw: dict[str, Any]) -> None:
        tags = raw["tags"].setdefault("userTags", [])
        if not tags:
            tags.append({"name": "added", "value": "x"})
        tags[0][key] = value

    return change


ODD_CHANGES: dict[str, Callable[[dict[str, Any]], None]] = {
    "extra field": set_field(("sentiment",), {"score": 0.4, "words": ["ok"]}),
    "extra scalar": set_field(("priority",), 3),
    "no id": drop_field("sessionId"),
    "null id": set_field(("sessionId",), None),
    "empty id": set_field(("sessionId",), ""),
    "numeric id": set_field(("sessionId",), 42),
    "no start": drop_field("start_time"),
    "empty start": set_field(("start_time",), ""),
    "start as a date": set_field(("start_time",), "2026-06-01"),
    "start with offset": set_field(("start_time",), "2026-06-01T02:00:05.196+02:00"),
    "start in nanoseconds": set_field(("start_time",), "2026-06-01T00:00:05.123456789Z"),
    "start in microseconds": set_field(("start_time",), "2026-06-01T00:00:05.123456Z"),
    "start without fraction": set_field(("start_time",), "2026-06-01T00:00:05Z"),
    "start of no day": set_field(("start_time",), "2026-02-30T00:00:05.000Z"),
    "start in year 0": set_field(("start_time",), "0000-01-01T00:00:00Z"),
    "start as a number": set_field(("start_time",), 1780272005215),
    "no end": drop_field("end_time"),
    "null end": set_field(("end_time",), None),
    "empty end": set_field(("end_time",), ""),
    "alias containment": set_field(("containmentType",), "selfservice"),
    "capital containment": set_field(("containmentType",), "DropOff"),
    "undocumented containment": set_field(("containmentType",), "transfer"),
    "null containment": set_field(("containmentType",), None),
    "no containment": drop_field("containmentType"),
    "numeric containment": set_field(("containmentType",), 1),
    "legacy session type": lambda raw: raw.update(sessionType=raw.pop("containmentType")),
    "odd session type": set_field(("sessionType",), "batch"),
    "numeric session type": set_field(("sessionType",), 5),
    "capital status": set_field(("sessionStatus",), "Active"),
    "padded status": set_field(("sessionStatus",), " closed"),
    "undocumented status": set_field(("sessionStatus",), "expired"),
    "no status": drop_field("sessionStatus"),
    "null status": set_field(("sessionStatus",), None),
    "empty status": set_field(("sessionStatus",), ""),
    "numeric developer flag": set_field(("isDeveloper",), 1),
    "text developer flag": set_field(("isDeveloper",), "true"),
    "null developer flag": set_field(("isDeveloper",), None),
    "fractional count": set_field(("noOfMessagesExchanged",), 2.5),
    "text count": set_field(("noOfMessagesExchanged",), "3"),
    "boolean count": set_field(("noOfTasksExecuted",), True),
    "huge count": set_field(("noOfTasksExecuted",), 2**70),
    "null count": set_field(("noOfTasksExecuted",), None),
    "numeric bot": set_field(("botId",), 7),
    "null channel": set_field(("channel",), None),
    "no user": drop_field("userId"),
    "languages as text": set_field(("session_lang",), "en"),
    "null languages": set_field(("session_lang",), None),
    "numeric language": set_field(("session_lang",), [1]),
    "null language": set_field(("session_lang",), ["en", None]),
    "languages as an object": set_field(("session_lang",), {"en": 1}),
    "no tags": drop_field("tags"),
    "null tags": set_field(("tags",), None),
    "tags as text": set_field(("tags",), "x"),
    "null user tags": set_field(("tags", "userTags"), None),
    "user tags as text": set_field(("tags", "userTags"), "x"),
    "a tag as text": set_field(("tags", "sessionTags"), ["plain"]),
    "a tag with more keys": _first_tag("source", "crm"),
    "numeric tag name": _first_tag("name", 3),
    "no tag value": lambda raw: raw["tags"].setdefault("userTags", [{"name": "n"}]),
    "null tag value": _first_tag("value", None),
    "boolean tag value": _first_tag("value", False),
    "integer tag value": _first_tag("value", -12),
    "big integer tag value": _first_tag("value", 2**70),
    "float tag value": _first_tag("value", 1e16),
    "small float tag value": _first_tag("value", 1.5e-7),
    "negative zero tag value": _first_tag("value", -0.0),
    "infinite tag value": _first_tag("value", float("inf")),
    "nan tag value": _first_tag("value", float("nan")),
    "text tag value like inf": _first_tag("value", "inf"),
    "text tag value True": _first_tag("value", "True"),
    "list tag value": _first_tag("value", [3, "a", None, True]),
    "object tag value": _first_tag("value", {"b": 1, "a": {"d": 0.1, "c": [1.0]}}),
    "object with small float": _first_tag("value", {"a": 0.00002}),
    "object with big float": _first_tag("value", {"a": 1.5e17}),
    "object with non-ascii": _first_tag("value", {"city": "Zürich"}),
    "object with control character": _first_tag("value", {"a": "x\x7fy\x01"}),
    "object with infinity": _first_tag("value", {"a": float("inf")}),
    "empty object tag value": _first_tag("value", {}),
    "other tag list": set_field(("tags", "other"), [1]),
    "other empty tag list": set_field(("tags", "other"), []),
    "alt text with items": set_field(("tags", "altText"), ["hello"]),
    "null alt text": set_field(("tags", "altText"), None),
    "alt text as text": set_field(("tags", "altText"), "x"),
    "no alt text": lambda raw: raw["tags"].pop("altText", None),
}


@pytest.fixture(scope="module")
def base_page() -> list[dict[str, Any]]:
    """A small generated page with open sessions and every tag type."""
    return generated_page(6, 1, 400, 0.05)[:60]


@pytest.mark.parametrize("where", ["one", "every"])
@pytest.mark.parametrize("name", list(ODD_CHANGES))
def test_odd_pages_are_built_alike_or_left_to_the_record_transform(
    base_page: list[dict[str, Any]], name: str, where: str
) -> None:
    records = copy.deepcopy(base_page)
    for raw in records[3:4] if where == "one" else records:
        ODD_CHANGES[name](raw)
    assert_same_tables(records)


def test_documented_odd_values_stay_on_the_columnar_path(base_page: list[dict[str, Any]]) -> None:
    """The changes within the documented shape are built, not only left to the transform."""
    for name in ("null end", "no end", "odd session type", "undocumented status", "null channel", "no user"):
        records = copy.deepcopy(base_page)
        ODD_CHANGES[name](records[3])
        assert assert_same_tables(records, must_build=True), name


def test_a_filtered_request_or_an_empty_page_takes_the_record_transform(
    base_page: list[dict[str, Any]],
) -> None:
    assert session_columns(base_page, "agent") is None
    assert session_columns([], None) is None


def test_a_kept_subset_keeps_its_child_rows(base_page: list[dict[str, Any]]) -> None:
    built = session_columns(base_page, None)
    assert built is not None
    mask = pa.array([index % 3 == 1 for index in range(len(base_page))])
    kept = built.select(mask)
    expected = python_tables([raw for index, raw in enumerate(base_page) if index % 3 == 1])
    tables = kept.tables(LOAD_ID)
    assert list(tables) == list(expected)
    for name, table in expected.items():
        assert tables[name].equals(table), name
