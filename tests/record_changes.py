"""Changes to a raw record (a session, a message), and the check that a page built column by
column equals the record transform's tables, for the tests of the columnar paths."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa
from kore_sessions.source.api.answers import InvalidRecordError

# A change made to one raw record, in place.
Change = Callable[[dict[str, Any]], None]


def set_field(path: tuple[str, ...], value: Any) -> Change:
    """A change that sets a field (a path into the record) to a value."""

    def change(raw: dict[str, Any]) -> None:
        for key in path[:-1]:
            raw = raw.setdefault(key, {})
        raw[path[-1]] = value

    return change


def drop_field(key: str) -> Change:
    """A change that removes a field."""
    return lambda raw: raw.pop(key, None)


def assert_built_alike(
    built: Any,
    expected: Callable[[], dict[str, pa.Table]],
    load_id: str,
    must_build: bool = False,
    describe: Callable[[pa.Table, pa.Table], str] = lambda built, expected: "",
) -> bool:
    """The tables of a page built column by column (`ColumnarPage`, or None when the builder
    left the page to the record transform) equal the record transform's, or the page is left
    to it.

    Returns:
        Whether the columnar path built the page.
    """
    try:
        tables_expected = expected()
    except (InvalidRecordError, TypeError, ValueError):
        assert built is None, "a page the record transform refuses is never built"
        return False
    assert built is not None or not must_build, "a page in the documented shape is built"
    if built is None:
        return False
    tables = built.tables(load_id)
    assert list(tables) == list(tables_expected)
    for name, table in tables_expected.items():
        assert tables[name].schema == table.schema, name
        assert tables[name].equals(table), f"{name}: {describe(tables[name], table)}"
    return True
