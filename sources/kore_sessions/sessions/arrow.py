"""Rows of one page as Arrow tables: `sessions` and its three child tables (pure transforms).

Yielding Arrow skips dlt's row-by-row normalizer. The tables carry the keys dlt's
normalizer would have added, made deterministic: a session's `_dlt_id` is its id, and its
child rows point to it through `_dlt_root_id`/`_dlt_parent_id`, so dlt's merge replaces a
session's child rows whenever the session is loaded again (or deleted).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import dlt
import pyarrow as pa
import pyarrow.compute as pc
from dlt.common.normalizers.naming.snake_case import NamingConvention
from dlt.extract.hints import TResourceHints

from kore_sessions.source.api.answers import a_json_type
from kore_sessions.source.sessions.records import InvalidRecordError
from kore_sessions.source.sessions.schema import (
    CHILD_TABLES,
    SESSION_COLUMNS,
    TIMESTAMP,
    arrow_schema,
    dlt_columns,
)
from kore_sessions.source.sessions.spec import PRIMARY_KEY, SESSIONS_TABLE

# Typed columns of `sessions`, in order (anything else the API sends follows them).
SESSION_FIELDS = arrow_schema(SESSION_COLUMNS)
# Typed columns of each child table, by its key in a row.
CHILD_FIELDS = {child.key: arrow_schema(child.columns) for child in CHILD_TABLES}
# The keys dlt's normalizer gives a root row and a nested row.
ROOT_KEY_FIELDS = [
    pa.field("_dlt_load_id", pa.string(), nullable=False),
    pa.field("_dlt_id", pa.string(), nullable=False),
]
NESTED_KEY_FIELDS = [
    pa.field("_dlt_root_id", pa.string(), nullable=False),
    pa.field("_dlt_parent_id", pa.string(), nullable=False),
    pa.field("_dlt_list_idx", pa.int64(), nullable=False),
    pa.field("_dlt_id", pa.string(), nullable=False),
]
NAMING = NamingConvention()
# What pyarrow raises on a value that does not fit a column's type; its message quotes the
# value ("Could not convert 'jane@example.com' with type str"), so it is never passed on.
ARROW_CONVERSION_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError)
# Keys of a row that are not extra fields of `sessions`.
KNOWN_ROOT_KEYS = frozenset(SESSION_FIELDS.names) | frozenset(child.key for child in CHILD_TABLES)
# Column hints of the dlt keys, as dlt's own normalizer sets them.
ROOT_KEY_HINTS: dict[str, dict[str, Any]] = {
    "_dlt_load_id": {"data_type": "text", "nullable": False},
    "_dlt_id": {"data_type": "text", "nullable": False, "unique": True, "row_key": True},
}
NESTED_KEY_HINTS: dict[str, dict[str, Any]] = {
    "_dlt_root_id": {"data_type": "text", "nullable": False, "root_key": True},
    "_dlt_parent_id": {"data_type": "text", "nullable": False, "parent_key": True},
    "_dlt_list_idx": {"data_type": "bigint", "nullable": False},
    "_dlt_id": {"data_type": "text", "nullable": False, "unique": True, "row_key": True},
}


def table_hints() -> dict[str, TResourceHints]:
    """dlt hints of each table: `sessions` merged on its key, the child tables nested in it."""
    hints = {
        SESSIONS_TABLE: dlt.mark.make_hints(
            table_name=SESSIONS_TABLE,
            primary_key=PRIMARY_KEY,
            columns={**dlt_columns(SESSION_COLUMNS), **ROOT_KEY_HINTS},
        )
    }
    for child in CHILD_TABLES:
        hints[child.table] = dlt.mark.make_hints(
            table_name=child.table,
            parent_table_name=SESSIONS_TABLE,
            columns={**dlt_columns(child.columns), **NESTED_KEY_HINTS},
        )
    return hints


def page_tables(rows: list[dict[str, Any]], load_id: str) -> dict[str, pa.Table]:
    """The root table and the non-empty child tables of one page of rows.

    Args:
        rows: Rows from `records.to_row` (or deletion rows), each session at most once.
        load_id: The load package's id, for `_dlt_load_id`.

    Returns:
        Arrow tables by dlt table name.
    """
    tables = {SESSIONS_TABLE: root_table(rows, load_id)}
    for child in CHILD_TABLES:
        items = child_table(rows, child.key)
        if items.num_rows:
            tables[child.table] = items
    return tables


class TableBatches:
    """Arrow tables of consecutive pages, joined into larger ones before they reach dlt.

    dlt pays a fixed cost for every item it takes, so pages are handed on together: tables of
    one name and one schema are joined (without copying) until the batch holds `max_sessions`
    sessions. A page with a table of another schema (extra fields) first closes the whole batch,
    `sessions` first: dlt must meet a parent table before its child tables.
    """

    def __init__(self, max_sessions: int) -> None:
        """An empty batch that closes at `max_sessions` sessions."""
        self.max_sessions = max_sessions
        self.pending: dict[str, list[pa.Table]] = {}
        self.sessions = 0

    def add(self, tables: dict[str, pa.Table]) -> Iterator[tuple[str, pa.Table]]:
        """Take one page's tables; yield `(table name, table)` of the batches this closes."""
        if any(
            self.pending.get(name) and self.pending[name][0].schema != t.schema for name, t in tables.items()
        ):
            yield from self.flush()
        for name, table in tables.items():
            self.pending.setdefault(name, []).append(table)
        self.sessions += tables[SESSIONS_TABLE].num_rows
        if self.sessions >= self.max_sessions:
            yield from self.flush()

    def flush(self) -> Iterator[tuple[str, pa.Table]]:
        """Yield what is held, joined per table name (`sessions` first), and start afresh."""
        pending, self.pending, self.sessions = self.pending, {}, 0
        for name, held in pending.items():
            if held:
                yield name, pa.concat_tables(held)


def root_table(rows: list[dict[str, Any]], load_id: str) -> pa.Table:
    """`sessions` rows: typed columns, then the fields the API added, flattened."""
    table = _typed_table(rows, SESSION_FIELDS, SESSIONS_TABLE)
    table = _with_extras(table, _extras(rows, KNOWN_ROOT_KEYS))
    ids = table.column(PRIMARY_KEY)
    table = table.append_column(ROOT_KEY_FIELDS[0], pa.array([load_id] * len(rows), pa.string()))
    return table.append_column(ROOT_KEY_FIELDS[1], ids)


def child_table(rows: list[dict[str, Any]], key: str) -> pa.Table:
    """One child table of the page, with the nested keys pointing to each session."""
    fields = CHILD_FIELDS[key]
    items, parents, indexes = [], [], []
    for row in rows:
        for index, item in enumerate(row.get(key) or ()):
            items.append(item)
            parents.append(row[PRIMARY_KEY])
            indexes.append(index)
    table = _typed_table(items, fields, f"{SESSIONS_TABLE}__{key}")
    table = _with_extras(table, _extras(items, frozenset(fields.names)))
    parent_ids, positions = pa.array(parents, pa.string()), pa.array(indexes, pa.int64())
    row_ids = pc.binary_join_element_wise(parent_ids, pc.cast(positions, pa.string()), ":")
    keys = [parent_ids, parent_ids, positions, row_ids]
    for field, column in zip(NESTED_KEY_FIELDS, keys, strict=True):
        table = table.append_column(field, column)
    return table


def _typed_table(rows: list[dict[str, Any]], schema: pa.Schema, table: str) -> pa.Table:
    """The typed columns of rows, built column by column (missing values as None)."""
    columns = [_typed_column(rows, field, table) for field in schema]
    return pa.Table.from_arrays(columns, schema=schema)


def _typed_column(rows: list[dict[str, Any]], field: pa.Field, table: str) -> pa.Array:
    """One typed column of rows; InvalidRecordError (naming the session and the column, not
    the value) when a value does not fit its type."""
    values = [row.get(field.name) for row in rows]
    try:
        return pa.array(values, field.type)
    except ARROW_CONVERSION_ERRORS:
        raise _misfit(rows, values, field, table) from None


def _misfit(rows: list[dict[str, Any]], values: list[Any], field: pa.Field, table: str) -> InvalidRecordError:
    """The error naming the first session whose value does not fit the column: its id, the
    column and the value's JSON type, never the value (it may be a person's data)."""
    for row, value in zip(rows, values, strict=True):
        try:
            pa.array([value], field.type)
        except ARROW_CONVERSION_ERRORS:
            return InvalidRecordError(
                f"session {row.get(PRIMARY_KEY)}: {table}.{field.name} holds {a_json_type(value)}, "
                f"which does not fit its type {field.type}"
            )
    return InvalidRecordError(f"{table}.{field.name}: the page's values do not fit its type {field.type}")


def _extras(rows: list[dict[str, Any]], known: frozenset[str]) -> list[dict[str, Any]] | None:
    """Per row, the fields beyond the typed ones; None when no row has any."""
    if all(row.keys() <= known for row in rows):
        return None
    return [{k: v for k, v in row.items() if k not in known} for row in rows]


def _with_extras(table: pa.Table, extras: list[dict[str, Any]] | None) -> pa.Table:
    """Append the fields beyond the typed ones: nested objects flattened to `a__b` columns,
    names in dlt's snake_case, each column typed from its values (text when they disagree)."""
    if extras is None:
        return table
    columns: dict[str, list[Any]] = {}
    for index, extra in enumerate(extras):
        for name, value in _flatten(extra).items():
            columns.setdefault(name, [None] * len(extras))[index] = value
    for name, values in sorted(columns.items()):
        if name in table.column_names or all(value is None for value in values):
            continue
        table = table.append_column(name, _typed_array(values))
    return table


def _flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{"a": {"b": 1}}` -> `{"a__b": 1}`, with dlt's column names."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = _column_name(f"{prefix}__{key}" if prefix else str(key))
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name))
        elif value != []:  # like dlt's normalizer: an empty list makes nothing
            flat[name] = value
    return flat


@lru_cache(maxsize=4096)
def _column_name(path: str) -> str:
    """dlt's column name of a field path (cached: the same few names come on every row)."""
    return NAMING.normalize_path(path)


def _typed_array(values: list[Any]) -> pa.Array:
    """An Arrow array of one extra column: bool, int64, double, timestamp or text."""
    present = [value for value in values if value is not None]
    if all(isinstance(value, bool) for value in present):
        return pa.array(values, pa.bool_())
    if all(isinstance(value, int) and not isinstance(value, bool) for value in present):
        return pa.array(values, pa.int64())
    if all(isinstance(value, int | float) and not isinstance(value, bool) for value in present):
        return pa.array([None if value is None else float(value) for value in values], pa.float64())
    if all(isinstance(value, datetime) for value in present):
        return pa.array([None if value is None else value.astimezone(UTC) for value in values], TIMESTAMP)
    return pa.array([None if value is None else _as_text(value) for value in values], pa.string())


def _as_text(value: Any) -> str:
    """A value as text: strings as they are, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
