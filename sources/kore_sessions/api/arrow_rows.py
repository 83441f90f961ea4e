"""Rows of one page as Arrow tables: a resource's root table and its child tables (pure
transforms), and the dlt hints of those tables, from the resource's `TableSpec`.

Yielding Arrow skips dlt's row-by-row normalizer. The tables carry the keys dlt's
normalizer would have added, made deterministic: a record's `_dlt_id` is its id, and its
child rows point to it through `_dlt_root_id`/`_dlt_parent_id`, so dlt's merge replaces a
record's child rows whenever the record is loaded again (or deleted).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property, lru_cache
from typing import Any, Protocol

import dlt
import pyarrow as pa
import pyarrow.compute as pc
from dlt.common.normalizers.naming.snake_case import NamingConvention
from dlt.extract.hints import TResourceHints

from kore_sessions.source.api.answers import InvalidRecordError, a_json_type
from kore_sessions.source.api.columns import TIMESTAMP, ChildTable, Column, arrow_schema, dlt_columns

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
# `_dlt_load_id` of tables made before their package's id is known (`with_load_id` sets it).
PENDING_LOAD_ID = "pending"
# Column hints only dlt's merge honours.
MERGE_ONLY_HINTS = frozenset({"hard_delete", "merge_key", "dedup_sort"})
# Column hints of the dlt keys, as dlt's own normalizer sets them (a root row's `_dlt_id`, its
# record's id, unique: on PostgreSQL dlt indexes it, which refuses a record twice and finds the
# rows a merge replaces).
ROOT_KEY_HINTS: dict[str, dict[str, Any]] = {
    "_dlt_load_id": {"data_type": "text", "nullable": False},
    "_dlt_id": {"data_type": "text", "nullable": False, "unique": True, "row_key": True},
}
# The same for a child table, but its `_dlt_id` (its record's id and `:index`, unique as made) is not
# hinted unique: nothing looks a child row up by it, and on PostgreSQL dlt makes a unique index of
# every unique column, which each row loaded updates (a first backfill into PostgreSQL took
# about 1.25 times as long with them: the README's "What changed"). Said `False`, not left out:
# dlt keeps a stored hint a new one does not name, so a schema made before would keep `True`.
NESTED_KEY_HINTS: dict[str, dict[str, Any]] = {
    "_dlt_root_id": {"data_type": "text", "nullable": False, "root_key": True},
    "_dlt_parent_id": {"data_type": "text", "nullable": False, "parent_key": True},
    "_dlt_list_idx": {"data_type": "bigint", "nullable": False},
    "_dlt_id": {"data_type": "text", "nullable": False, "unique": False, "row_key": True},
}


@dataclass(frozen=True)
class TableSpec:
    """A resource's tables: its root table, merged on its key, and the child tables nested in it.

    Attributes:
        name: The root table (`sessions`).
        primary_key: Its key column, also each record's `_dlt_id`.
        noun: A record in messages (`session`).
        columns: The root table's typed columns.
        children: The child tables.
    """

    name: str
    primary_key: str
    noun: str
    columns: tuple[Column, ...]
    children: tuple[ChildTable, ...]

    @cached_property
    def fields(self) -> pa.Schema:
        """Typed columns of the root table, in order (anything else the API sends follows them)."""
        return arrow_schema(self.columns)

    @cached_property
    def child_fields(self) -> dict[str, pa.Schema]:
        """Typed columns of each child table, by its key in a row."""
        return {child.key: arrow_schema(child.columns) for child in self.children}

    @cached_property
    def known_root_keys(self) -> frozenset[str]:
        """Keys of a row that are not extra fields of the root table."""
        return frozenset(self.fields.names) | frozenset(child.key for child in self.children)


def table_hints(spec: TableSpec, write_disposition: str = "merge") -> dict[str, TResourceHints]:
    """dlt hints of each table: the root merged on its key (or appended, `first_backfill`), the
    child tables nested in it, written as their root is (else they take the resource's)."""
    hints = {
        spec.name: dlt.mark.make_hints(
            table_name=spec.name,
            write_disposition=write_disposition,  # type: ignore[arg-type]
            primary_key=spec.primary_key,
            columns={**_for_disposition(dlt_columns(spec.columns), write_disposition), **ROOT_KEY_HINTS},
        )
    }
    for child in spec.children:
        hints[child.table] = dlt.mark.make_hints(
            table_name=child.table,
            write_disposition=write_disposition,  # type: ignore[arg-type]
            parent_table_name=spec.name,
            columns={**dlt_columns(child.columns), **NESTED_KEY_HINTS},
        )
    return hints


def _for_disposition(columns: dict[str, dict[str, Any]], write_disposition: str) -> dict[str, dict[str, Any]]:
    """Column hints without those only a merge honours (dlt warns of them on an append)."""
    if write_disposition == "merge":
        return columns
    kept = {name: hint.items() for name, hint in columns.items()}
    return {name: {k: v for k, v in items if k not in MERGE_ONLY_HINTS} for name, items in kept.items()}


class BuiltPage(Protocol):
    """A page whose tables are already built, column by column (`page_columns.ColumnarPage`)."""

    def tables(self, load_id: str) -> dict[str, pa.Table]:
        """The root table and the non-empty child tables, with dlt's keys."""
        ...


def page_tables(spec: TableSpec, rows: list[dict[str, Any]] | BuiltPage, load_id: str) -> dict[str, pa.Table]:
    """The root table and the non-empty child tables of one page of rows.

    Args:
        spec: The resource's tables.
        rows: Rows of the resource's record transform, each record at most once; or a page
            built column by column, whose tables are only given their load's id.
        load_id: The load package's id, for `_dlt_load_id`.

    Returns:
        Arrow tables by dlt table name.
    """
    if not isinstance(rows, list):
        return rows.tables(load_id)
    tables = {spec.name: root_table(spec, rows, load_id)}
    for child in spec.children:
        items = child_table(spec, rows, child)
        if items.num_rows:
            tables[child.table] = items
    return tables


def with_load_id(table: pa.Table, load_id: str) -> pa.Table:
    """A root table with its package's `_dlt_load_id` (child tables have none: as they are)."""
    index = table.schema.get_field_index(ROOT_KEY_FIELDS[0].name)
    if index < 0:
        return table
    return table.set_column(index, ROOT_KEY_FIELDS[0], pa.array([load_id] * table.num_rows, pa.string()))


class TableBatches:
    """Arrow tables of consecutive pages, joined into larger ones before they reach dlt.

    dlt pays a fixed cost for every item it takes, so pages are handed on together: tables of
    one name and one schema are joined (without copying) until the batch holds `max_records`
    root rows. A page with a table of another schema (extra fields) first closes the whole
    batch, the root first: dlt must meet a parent table before its child tables.
    """

    def __init__(self, max_records: int, root: str) -> None:
        """An empty batch of the root table `root` that closes at `max_records` root rows."""
        self.max_records = max_records
        self.root = root
        self.pending: dict[str, list[pa.Table]] = {}
        self.records = 0

    def add(self, tables: dict[str, pa.Table]) -> Iterator[tuple[str, pa.Table]]:
        """Take one page's tables; yield `(table name, table)` of the batches this closes."""
        if any(
            self.pending.get(name) and self.pending[name][0].schema != t.schema for name, t in tables.items()
        ):
            yield from self.flush()
        for name, table in tables.items():
            self.pending.setdefault(name, []).append(table)
        self.records += tables[self.root].num_rows
        if self.records >= self.max_records:
            yield from self.flush()

    def flush(self) -> Iterator[tuple[str, pa.Table]]:
        """Yield what is held, joined per table name (the root first), and start afresh."""
        pending, self.pending, self.records = self.pending, {}, 0
        for name, held in pending.items():
            if held:
                yield name, pa.concat_tables(held)


def root_table(spec: TableSpec, rows: list[dict[str, Any]], load_id: str) -> pa.Table:
    """Root rows: typed columns, then the fields the API added, flattened."""
    table = _typed_table(spec, rows, spec.fields, spec.name)
    table = _with_extras(table, _extras(rows, spec.known_root_keys))
    return with_root_keys(spec, table, load_id)


def with_root_keys(spec: TableSpec, table: pa.Table, load_id: str) -> pa.Table:
    """A root table with dlt's keys appended: the load's id, and the record's id as `_dlt_id`."""
    ids = table.column(spec.primary_key)
    table = table.append_column(ROOT_KEY_FIELDS[0], pa.array([load_id] * table.num_rows, pa.string()))
    return table.append_column(ROOT_KEY_FIELDS[1], ids)


def child_table(spec: TableSpec, rows: list[dict[str, Any]], child: ChildTable) -> pa.Table:
    """One child table of the page, with the nested keys pointing to each record."""
    fields = spec.child_fields[child.key]
    items, parents, indexes = [], [], []
    for row in rows:
        for index, item in enumerate(row.get(child.key) or ()):
            items.append(item)
            parents.append(row[spec.primary_key])
            indexes.append(index)
    table = _typed_table(spec, items, fields, child.table)
    table = _with_extras(table, _extras(items, frozenset(fields.names)))
    return with_nested_keys(table, pa.array(parents, pa.string()), pa.array(indexes, pa.int64()))


def with_nested_keys(table: pa.Table, parent_ids: pa.Array, positions: pa.Array) -> pa.Table:
    """A child table with dlt's nested keys appended: each item's record (root and parent),
    its place in the record's list, and its own id (`<record id>:<place>`)."""
    row_ids = pc.binary_join_element_wise(parent_ids, pc.cast(positions, pa.string()), ":")
    keys = [parent_ids, parent_ids, positions, row_ids]
    for field, column in zip(NESTED_KEY_FIELDS, keys, strict=True):
        table = table.append_column(field, column)
    return table


def _typed_table(spec: TableSpec, rows: list[dict[str, Any]], schema: pa.Schema, table: str) -> pa.Table:
    """The typed columns of rows, built column by column (missing values as None)."""
    columns = [_typed_column(spec, rows, field, table) for field in schema]
    return pa.Table.from_arrays(columns, schema=schema)


def _typed_column(spec: TableSpec, rows: list[dict[str, Any]], field: pa.Field, table: str) -> pa.Array:
    """One typed column of rows; InvalidRecordError (naming the record and the column, not
    the value) when a value does not fit its type."""
    values = [row.get(field.name) for row in rows]
    try:
        return pa.array(values, field.type)
    except ARROW_CONVERSION_ERRORS:
        raise _misfit(spec, rows, values, field, table) from None


def _misfit(
    spec: TableSpec, rows: list[dict[str, Any]], values: list[Any], field: pa.Field, table: str
) -> InvalidRecordError:
    """The error naming the first record whose value does not fit the column: its id, the
    column and the value's JSON type, never the value (it may be a person's data)."""
    for row, value in zip(rows, values, strict=True):
        try:
            pa.array([value], field.type)
        except ARROW_CONVERSION_ERRORS:
            return InvalidRecordError(
                f"{spec.noun} {row.get(spec.primary_key)}: {table}.{field.name} holds {a_json_type(value)}, "
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
        name = column_name(f"{prefix}__{key}" if prefix else str(key))
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name))
        elif value != []:  # like dlt's normalizer: an empty list makes nothing
            flat[name] = value
    return flat


@lru_cache(maxsize=4096)
def column_name(path: str) -> str:
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
