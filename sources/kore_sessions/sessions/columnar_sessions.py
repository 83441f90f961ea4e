"""Pages of sessions to Arrow column by column, with no Python per session: the fast path of
`records.to_row` and `arrow.page_tables`, for pages in the documented shape and types.

A page is taken here when every session has only documented fields, an id, a start and end in
the API's own form, a containment type spelled as 9.x spells it (and the request filtered on
none), a status already in its loaded form, and tags that are lists of `{name, value}` objects
(a value of any JSON type, written as text in C where orjson and `json.dumps` write it alike).
Any other page (extra or legacy fields, loose types, aliases, a value the two would write
otherwise) gives None and takes the record transform, which keeps every rule and fails the run
in one line on a session without id or start. `tests/test_columnar_sessions.py` proves both
paths give the same tables.
"""

from __future__ import annotations

from itertools import chain, repeat
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from kore_sessions.source.api.columns import TIMESTAMP, ChildTable, Column
from kore_sessions.source.api.page_columns import (
    FALLBACK_ERRORS,
    ChildColumns,
    ColumnarPage,
    child_columns,
    every,
    instants,
    item_places,
    keys_of,
    list_places,
    value_texts,
)
from kore_sessions.source.sessions.arrow import SESSIONS_SPEC
from kore_sessions.source.sessions.records import TAG_KEYS
from kore_sessions.source.sessions.schema import CHILD_TABLES, KNOWN_API_FIELDS, SESSION_COLUMNS
from kore_sessions.source.sessions.spec import CONTAINMENT_TYPES, EMPTY_TAG_LISTS, PRIMARY_KEY, SESSION_TYPES

# The child table made of a plain list of each session (`session_lang`), and those made of
# the lists inside its `tags` object (`user_tags`, `session_tags`).
LIST_CHILDREN = tuple(child for child in CHILD_TABLES if len(child.api_path) == 1)
TAG_CHILDREN = tuple(child for child in CHILD_TABLES if len(child.api_path) == 2)
TAGS_FIELD = TAG_CHILDREN[0].api_path[0]
# The keys a session's `tags` object may have on this path.
TAG_LIST_KEYS = frozenset(child.api_path[1] for child in TAG_CHILDREN) | EMPTY_TAG_LISTS
# How a page's own fields are read: each column's API field in its Arrow type (times as text,
# cast once their form is checked), and each plain list as a list of text.
RAW_SESSION = pa.struct(
    [(c.api_field, pa.string() if c.arrow == TIMESTAMP else c.arrow) for c in SESSION_COLUMNS if c.api_field]
    + [(child.api_path[0], pa.list_(child.columns[-1].arrow)) for child in LIST_CHILDREN]
)
NO_TEXT = pa.scalar(None, pa.string())
CONTAINMENT_VALUES = pa.array(CONTAINMENT_TYPES, pa.string())
SESSION_TYPE_VALUES = pa.array(SESSION_TYPES, pa.string())
# A status already in the form `records.session_status` gives it (printable ASCII, lower case,
# nothing to strip), so it passes unchanged.
PLAIN_STATUS = r"^[!-~](?:[ -~]*[!-~])?$"


def session_columns(records: list[dict[str, Any]], containment_type: str | None) -> ColumnarPage | None:
    """The tables of a page of sessions, or None when the page is not in the documented shape.

    Args:
        records: The page's sessions, as parsed.
        containment_type: The containment type the request filtered on (pre-9.0 servers):
            such pages take the record transform.
    """
    if containment_type is not None or not records:
        return None
    if not keys_of(records) <= KNOWN_API_FIELDS:
        return None
    try:
        return _page(records)
    except FALLBACK_ERRORS:
        return None


def _page(records: list[dict[str, Any]]) -> ColumnarPage | None:
    """The page's tables once its shape is known to be the documented one."""
    raw = pa.array(records, RAW_SESSION)
    fields = {name: raw.field(name) for name in (field.name for field in RAW_SESSION)}
    root = _root_columns(fields, len(records))
    if root is None:
        return None
    ids = root[SESSIONS_SPEC.primary_key]
    children = {child.table: _list_child(child, ids, fields[child.api_path[0]]) for child in LIST_CHILDREN}
    tags = _tag_children(records, ids)
    if tags is None:
        return None
    children.update(tags)
    table = pa.Table.from_arrays([root[c.name] for c in SESSION_COLUMNS], schema=SESSIONS_SPEC.fields)
    ordered = {child.table: children[child.table] for child in CHILD_TABLES}
    return ColumnarPage(SESSIONS_SPEC, table, ordered)


def _root_columns(fields: dict[str, pa.Array], count: int) -> dict[str, pa.Array] | None:
    """The root table's columns by name, as `records.to_row` derives them; None when a value
    needs its rules (no id or start, another form of time, an alias, a status to normalise)."""
    by_column = {c.name: c for c in SESSION_COLUMNS}
    ids = fields[by_column[PRIMARY_KEY].api_field]
    starts = instants(fields[by_column["start_time"].api_field])
    ends = instants(fields[by_column["end_time"].api_field])
    containment = fields[by_column["containment_type"].api_field]
    status = fields[by_column["session_status"].api_field]
    session_type = fields[by_column["session_type"].api_field]
    if ids.null_count or not every(pc.not_equal(ids, "")) or starts is None or ends is None:
        return None
    if starts.null_count or not every(pc.is_in(containment, CONTAINMENT_VALUES)):
        return None
    if not (
        every(pc.match_substring_regex(status, PLAIN_STATUS))
        and every(pc.equal(pc.ascii_lower(status), status))
    ):
        return None
    derived = {
        "start_time": starts,
        "end_time": ends,
        "session_type": pc.if_else(pc.is_in(session_type, SESSION_TYPE_VALUES), session_type, NO_TEXT),
    }
    return {c.name: derived.get(c.name, _read(c, fields, count)) for c in SESSION_COLUMNS}


def _read(column: Column, fields: dict[str, pa.Array], count: int) -> pa.Array:
    """A column read as the page has it, or all nulls for one the source sets (deletions)."""
    return fields[column.api_field] if column.api_field else pa.nulls(count, column.arrow)


def _list_child(child: ChildTable, ids: pa.Array, lists: pa.ListArray) -> ChildColumns:
    """A child table of a plain list (`session_lang`): the record's id and each item."""
    parents, positions = list_places(lists)
    columns = [pc.take(ids, parents) if c.name == PRIMARY_KEY else lists.flatten() for c in child.columns]
    return child_columns(ids, parents, positions, columns, SESSIONS_SPEC.child_fields[child.key])


def _tag_children(records: list[dict[str, Any]], ids: pa.Array) -> dict[str, ChildColumns] | None:
    """The tag tables (`user_tags`, `session_tags`); None unless every `tags` is an object of
    tag lists (and an empty `altText`) whose tags are `{name, value}` objects, each value one
    `value_texts` writes as `tag_value_text` does."""
    tags = list(map(dict.get, records, repeat(TAGS_FIELD), repeat({})))
    if set(map(type, tags)) != {dict} or not keys_of(tags) <= TAG_LIST_KEYS:
        return None
    for key in EMPTY_TAG_LISTS:
        empty = list(map(dict.get, tags, repeat(key)))
        if not set(map(type, empty)) <= {list, type(None)} or any(empty):
            return None
    children = {}
    for child in TAG_CHILDREN:
        lists = list(map(dict.get, tags, repeat(child.api_path[1]), repeat(())))
        items = list(chain.from_iterable(lists))
        if not set(map(type, lists)) <= {list, tuple} or not set(map(type, items)) <= {dict}:
            return None
        if not keys_of(items) <= TAG_KEYS:
            return None
        built = _tag_child(child, ids, lists, items)
        if built is None:
            return None
        children[child.table] = built
    return children


def _tag_child(
    child: ChildTable, ids: pa.Array, lists: list[list[dict[str, Any]]], items: list[dict[str, Any]]
) -> ChildColumns | None:
    """One tag table: the record's id, the tag's place, name, value as text and its JSON type."""
    texts = value_texts(list(map(dict.get, items, repeat("value"))))
    if texts is None:
        return None
    parents, positions = item_places(pa.array(list(map(len, lists)), pa.int64()))
    by_field = {
        "name": pa.array(list(map(dict.get, items, repeat("name"))), pa.string()),
        "value": texts[0],
    }
    made = {PRIMARY_KEY: pc.take(ids, parents), "position": positions, "value_type": texts[1]}
    columns = [by_field[c.api_field] if c.api_field else made[c.name] for c in child.columns]
    return child_columns(ids, parents, positions, columns, SESSIONS_SPEC.child_fields[child.key])
