"""A page's tables built column by column, with no Python per record: the fast path of a
resource's record transform and `arrow_rows.page_tables`, for pages in the documented shape.

A resource's builder (sessions: `sessions/columnar_sessions.py`) turns the parsed records of a
page into a `ColumnarPage` (its root table's typed columns, and each child table with dlt's
nested keys), or gives None for a page with anything else, which then takes the record
transform. The walk keeps a window's records of the page with a mask (`ColumnarPage.select`),
and the resource gives the tables their load's id (`ColumnarPage.tables`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import repeat
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from kore_sessions.source.api.arrow_rows import TableSpec, with_nested_keys, with_root_keys
from kore_sessions.source.api.columns import TIMESTAMP
from kore_sessions.source.api.timestamps import API_INSTANT_PATTERN

# What a builder meets on a value of another type than the page's documented one: pyarrow's
# ArrowInvalid is a ValueError and its ArrowTypeError a TypeError; a number beyond 64 bits
# overflows. The page then takes the record transform, which fails the run in one line if it
# must (the messages of these errors quote values, so they are never passed on).
FALLBACK_ERRORS = (TypeError, ValueError, OverflowError, KeyError, AttributeError)
# The JSON type of each Python type orjson decodes a value to.
JSON_KINDS: dict[type, str] = {
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
    dict: "object",
    list: "array",
}
# The JSON types whose text orjson does not write: a string is its own text, a null has none.
UNWRITTEN_KINDS = pa.array(["string", "null"], pa.string())
# Where orjson's compact JSON may differ from `json.dumps`'s or from a float's `repr`: a float in
# exponent form or under 1e-4 (`1e-05` vs `0.00001`), one of 16 digits or more before its
# point, any character but printable ASCII (`json.dumps` escapes it). Checked against 75,000
# random values: every text that differs matches; one that matches is only left to the record
# transform (`tests/test_value_texts.py` checks it on every run).
JSON_TEXT_DIFFERS = r"[0-9][eE]|0\.0000|[0-9]{16}\.|[^ -~]"


@dataclass(frozen=True)
class ChildColumns:
    """One child table of a page built column by column.

    Attributes:
        table: Its typed columns and dlt's nested keys.
        parents: Each item's record, by its row in the page's root table.
    """

    table: pa.Table
    parents: pa.Array


@dataclass(frozen=True)
class ColumnarPage:
    """The tables of one page of records, built column by column.

    Attributes:
        spec: The resource's tables.
        root: The root table's typed columns (dlt's keys are added by `tables`).
        children: Each child table by its dlt name, in the order of `spec.children`.
        extras: The root has fields beyond the typed ones: typed by the page's values, they
            would be typed otherwise by a part of them (`select` keeps them as they are).
    """

    spec: TableSpec
    root: pa.Table
    children: dict[str, ChildColumns]
    extras: bool = False

    def __len__(self) -> int:
        """The page's records."""
        return self.root.num_rows

    def column(self, name: str) -> pa.Array:
        """One column of the root table, as one array."""
        return self.root.column(name).combine_chunks()

    def select(self, mask: pa.BooleanArray) -> ColumnarPage:
        """The page with only the records `mask` keeps, and their items."""
        if mask.true_count == len(self):
            return self
        new_rows = pc.subtract(pc.cumulative_sum(pc.cast(mask, pa.int64())), 1)
        children = {}
        for name, child in self.children.items():
            kept = pc.take(mask, child.parents)
            parents = pc.take(new_rows, child.parents.filter(kept))
            children[name] = ChildColumns(child.table.filter(kept), parents)
        return ColumnarPage(self.spec, self.root.filter(mask), children, self.extras)

    def tables(self, load_id: str) -> dict[str, pa.Table]:
        """The root table with dlt's keys, and the non-empty child tables, by dlt name."""
        tables = {self.spec.name: with_root_keys(self.spec, self.root, load_id)}
        tables.update({name: c.table for name, c in self.children.items() if c.table.num_rows})
        return tables


def item_places(counts: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Where each item of the records' lists belongs: its record (row) and its place in the list.

    Args:
        counts: Each record's number of items (int64, no nulls).
    """
    offsets = pa.concat_arrays([pa.array([0], pa.int64()), pc.cumulative_sum(counts)])
    return list_places(pa.LargeListArray.from_arrays(offsets, pa.nulls(offsets[-1].as_py(), pa.int8())))


def list_places(lists: pa.ListArray | pa.LargeListArray) -> tuple[pa.Array, pa.Array]:
    """Each item of a list array: its list's row (`parents`) and its place in that list."""
    parents = pc.cast(pc.list_parent_indices(lists), pa.int64())
    starts = pc.cast(lists.offsets, pa.int64())
    first = starts[0].as_py()
    count = starts[-1].as_py() - first
    everywhere = pa.array(range(first, first + count), pa.int64())
    return parents, pc.subtract(everywhere, pc.take(starts, parents))


def child_columns(
    parent_ids: pa.Array, parents: pa.Array, positions: pa.Array, columns: list[pa.Array], schema: pa.Schema
) -> ChildColumns:
    """A child table from its typed columns, with dlt's nested keys pointing at each item's record.

    Args:
        parent_ids: The ids of the page's records.
        parents: Each item's record, by row.
        positions: Each item's place in its record's list.
        columns: The typed columns, in the order of `schema`.
        schema: The child table's typed columns.
    """
    table = pa.Table.from_arrays(columns, schema=schema)
    return ChildColumns(with_nested_keys(table, pc.take(parent_ids, parents), positions), parents)


def value_texts(values: list[Any]) -> tuple[pa.Array, pa.Array] | None:
    """Loose values (tags) as text and the name of their JSON type, as `values.tag_value_text`
    writes them; None when one is of another type or would be written otherwise (left to it).

    Every step runs in C (`map` over builtins, orjson, Arrow compute): a string is its own
    text; a number, a boolean, an object or an array is written by orjson (sorted keys), kept
    where that is `tag_value_text`'s text too (an integer's or a float's `repr`, JSON's
    `true`, `json.dumps`'s compact text).
    """
    kinds = list(map(JSON_KINDS.get, map(type, values)))
    if None in kinds:
        return None
    kind = pa.array(kinds, pa.string())
    strings = pc.equal(kind, "string")
    if strings.true_count == len(values):
        return pa.array(values, pa.string()), kind
    text = pa.nulls(len(values), pa.string())
    if strings.true_count:
        text = pc.replace_with_mask(text, strings, pa.array(_picked(values, strings), pa.string()))
    written = pc.invert(pc.is_in(kind, UNWRITTEN_KINDS))
    if written.true_count:
        dumped = _json_texts(_picked(values, written))
        if dumped is None:
            return None
        text = pc.replace_with_mask(text, written, dumped)
    return text, kind


def _picked(values: list[Any], mask: pa.BooleanArray) -> list[Any]:
    """The values where the mask holds, in order."""
    return list(map(values.__getitem__, pc.indices_nonzero(mask).to_pylist()))


def _json_texts(values: list[Any]) -> pa.Array | None:
    """Values as compact JSON with sorted keys, or None where orjson's text could differ from
    `tag_value_text`'s (see JSON_TEXT_DIFFERS), lose a value (a non-finite float) or cannot be
    written (an integer beyond 64 bits)."""
    try:
        dumped = list(map(orjson.dumps, values, repeat(None), repeat(orjson.OPT_SORT_KEYS)))
    except orjson.JSONEncodeError:
        return None
    if list(map(orjson.loads, dumped)) != values:
        return None
    texts = pc.cast(pa.array(dumped, pa.binary()), pa.string())
    return None if pc.any(pc.match_substring_regex(texts, JSON_TEXT_DIFFERS)).as_py() else texts


def keys_of(records: list[dict[str, Any]]) -> set[str]:
    """Every key any of the records has (in C: one set filled from each record's keys, cheaper
    than a set of each record's own)."""
    return set().union(*records)


def every(mask: pa.BooleanArray) -> bool:
    """Whether a mask holds for every item (null counts as not)."""
    return mask.false_count == 0 and mask.null_count == 0


def instants(texts: pa.Array) -> pa.Array | None:
    """Times in the API's own form as UTC timestamps (nulls kept); None when one has another form."""
    if not every(pc.match_substring_regex(texts.drop_null(), API_INSTANT_PATTERN)):
        return None
    return pc.cast(texts, TIMESTAMP)


def newest(times: pa.Array) -> datetime | None:
    """The latest of some times (UTC), or None when there is none."""
    latest = pc.max(times).as_py()
    return None if latest is None else latest.astimezone(UTC)


def per_record(count: int, parents: pa.Array, values: pa.Array, how: str) -> pa.Array:
    """One value per record from its items' values (`parents`: each item's record, in order):
    `how` is `list` (the values in their order) or `sum`; null for a record with no item."""
    items = pa.table({"record": parents, "value": values})
    grouped = pa.TableGroupBy(items, "record", use_threads=False).aggregate([("value", how)])
    where = pc.index_in(pa.array(range(count), pa.int64()), value_set=grouped["record"])
    return pc.take(grouped[f"value_{how}"], where)


def scattered(values: pa.Array, kept: pa.BooleanArray) -> pa.Array:
    """Values of the kept places, spread back over every place (null where not kept)."""
    places = pc.subtract(pc.cumulative_sum(pc.cast(kept, pa.int64())), 1)
    return pc.take(values, pc.if_else(kept, places, pa.scalar(None, pa.int64())))
