"""Pages of messages to Arrow column by column, with no Python per message: the fast path of
`message_fields.to_row` and the shared Arrow builder, for pages in the documented types.

A page is taken here when every message has an id, a session and times in the API's own form,
its text fields as text, its flags as booleans or integers, `timestampValue` as an integer,
components that are objects (`data.text` as text) and tags that are objects; fields beyond the
documented ones are kept as `to_row` keeps them (scalars only, text only where the message's
text is kept). What users typed stays out unless `keep_user_text`. Any other page gives None
and takes the record transform. `tests/test_columnar_messages.py` proves both paths alike.
"""

from __future__ import annotations

from itertools import chain, compress, repeat
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from kore_sessions.source.api.arrow_rows import column_name
from kore_sessions.source.api.columns import TIMESTAMP
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
    per_record,
    scattered,
    value_texts,
)
from kore_sessions.source.messages.history_rules import MESSAGE_KEY, OUTGOING
from kore_sessions.source.messages.message_columns import KNOWN_API_FIELDS, MESSAGE_COLUMNS
from kore_sessions.source.messages.message_fields import TAG_SCOPES, TEXT_SEPARATOR
from kore_sessions.source.messages.message_tables import MESSAGES_SPEC

# Text columns `to_row` derives by a rule of its own (`ms`, of any JSON type, as its text).
DERIVED_TEXT = frozenset({"message_source"})
# The message's fields read as text as they come (`to_row`'s `_text` of a text or null), and
# `channel`, the other spelling of `chnl`, read where `chnl` is empty.
TEXT_FIELDS = (
    *(
        c.api_field
        for c in MESSAGE_COLUMNS
        if c.api_field and c.arrow == pa.string() and c.name not in DERIVED_TEXT
    ),
    "channel",
)
TIME_FIELDS = tuple(c.api_field for c in MESSAGE_COLUMNS if c.arrow == TIMESTAMP)
# Components as they are read: an id, a kind, and the text of their data (other keys unused).
RAW_COMPONENTS = pa.list_(
    pa.struct([("_id", pa.string()), ("cT", pa.string()), ("data", pa.struct([("text", pa.string())]))])
)
RAW_MESSAGE = pa.struct([(name, pa.string()) for name in TEXT_FIELDS + TIME_FIELDS])
# Python types of a flag (`isD`, `isBB`) read as a boolean: as_bool's integers or booleans.
FLAG_TYPES = ({bool}, {int})
NO_TEXT = pa.scalar(None, pa.string())


def message_columns(records: list[dict[str, Any]], keep_user_text: bool) -> ColumnarPage | None:
    """The tables of a page of messages, or None when the page needs the record transform.

    Args:
        records: The page's messages, as parsed.
        keep_user_text: Keep what users typed (`store_user_text`).
    """
    if not records:
        return None
    extra = sorted(keys_of(records) - KNOWN_API_FIELDS)
    try:
        return _page(records, keep_user_text, extra)
    except FALLBACK_ERRORS:
        return None


def _page(records: list[dict[str, Any]], keep_user_text: bool, extra: list[str]) -> ColumnarPage | None:
    """The page's tables, or None where a value needs `to_row`'s own rules."""
    raw = pa.array(records, RAW_MESSAGE)
    fields = {name: pc.struct_field(raw, [index]) for index, name in enumerate(RAW_MESSAGE.names)}
    by_field = {c.api_field: c.name for c in MESSAGE_COLUMNS if c.api_field}
    ids, sessions = fields["_id"], fields["sessionId"]
    times = {by_field[name]: instants(fields[name]) for name in TIME_FIELDS}
    created = times[by_field[TIME_FIELDS[0]]]
    if ids.null_count or sessions.null_count or not every(pc.not_equal(ids, "")):
        return None
    if not every(pc.not_equal(sessions, "")) or None in times.values() or created.null_count:
        return None
    kind = fields["type"]
    keep = (
        pa.array([True] * len(records)) if keep_user_text else pc.fill_null(pc.equal(kind, OUTGOING), False)
    )
    columns = {by_field[name]: fields[name] for name in TEXT_FIELDS if name in by_field}
    columns.update(times)
    chnl = fields[_api("channel")]
    columns["channel"] = pc.if_else(pc.fill_null(pc.not_equal(chnl, ""), False), chnl, fields["channel"])
    loose = _loose_columns(records)
    components = _components(records, ids, keep)
    tags = _tags(records, ids)
    if loose is None or components is None or tags is None:
        return None
    columns.update(loose)
    columns.update(components[1])
    table = pa.Table.from_arrays([columns[c.name] for c in MESSAGE_COLUMNS], schema=MESSAGES_SPEC.fields)
    table = _with_passed(table, records, extra, keep)
    if table is None:
        return None
    children = {MESSAGES_SPEC.children[0].table: components[0], MESSAGES_SPEC.children[1].table: tags}
    return ColumnarPage(MESSAGES_SPEC, table, children, extras=table.num_columns > len(MESSAGES_SPEC.fields))


def _api(name: str) -> str:
    """The API field of a column."""
    return next(c.api_field for c in MESSAGE_COLUMNS if c.name == name and c.api_field)


def _values(records: list[dict[str, Any]], key: str, default: Any = None) -> list[Any]:
    """One field of every record (in C)."""
    return list(map(dict.get, records, repeat(key), repeat(default)))


def _loose_columns(records: list[dict[str, Any]]) -> dict[str, pa.Array] | None:
    """The columns of loose fields: the source, the flags, `timestampValue` and the agent's
    mark; None when one holds a type `to_row` converts by its own rules."""
    source = value_texts(_values(records, _api("message_source"), None))
    stamps = _values(records, _api("timestamp_value"))
    authors = _values(records, "author")
    if source is None or not set(map(type, stamps)) <= {int, type(None)}:
        return None
    if not set(map(type, authors)) <= {dict, type(None)}:
        return None
    columns = {
        "message_source": source[0],
        "timestamp_value": pa.array(stamps, pa.int64()),
        "from_agent": pa.array(list(map(bool, authors)), pa.bool_()),
    }
    for name in ("is_developer", "is_builder"):
        flags = _values(records, _api(name))
        kinds = set(map(type, flags)) - {type(None)}
        if kinds <= {bool}:
            columns[name] = pa.array(flags, pa.bool_())
        elif kinds <= {int}:
            columns[name] = pc.not_equal(pa.array(flags, pa.int64()), 0)
        else:
            return None
    return columns


def _components(
    records: list[dict[str, Any]], ids: pa.Array, keep: pa.Array
) -> tuple[ChildColumns, dict[str, pa.Array]] | None:
    """`messages__components`, and the message's columns made of them (kinds, text, length)."""
    lists = _values(records, "components")
    if not set(map(type, lists)) <= {list, type(None)}:
        return None
    if not set(map(type, chain.from_iterable(filter(None, lists)))) <= {dict}:
        return None
    components = pa.array(lists, RAW_COMPONENTS)
    items = components.flatten()
    parents, positions = list_places(components)
    text = pc.struct_field(items, [2, 0])
    kept = pc.take(keep, parents)
    made = {
        MESSAGE_KEY: pc.take(ids, parents),
        "position": positions,
        "component_id": pc.struct_field(items, [0]),
        "kind": pc.struct_field(items, [1]),
        "text_length": pc.utf8_length(text),
        "text": pc.if_else(kept, text, NO_TEXT),
    }
    schema = MESSAGES_SPEC.child_fields[MESSAGES_SPEC.children[0].key]
    child = child_columns(ids, parents, positions, [made[name] for name in schema.names], schema)
    count, has_text = len(records), pc.is_valid(text)
    kinds = per_record(count, parents, pc.fill_null(made["kind"], ""), "list")
    kinds = pc.binary_join(kinds, ",")
    texts = pc.binary_join(
        per_record(count, parents.filter(has_text), text.filter(has_text), "list"), TEXT_SEPARATOR
    )
    lengths = pc.cast(per_record(count, parents, made["text_length"], "sum"), pa.int64())
    columns = {
        "component_kinds": pc.if_else(pc.fill_null(pc.equal(kinds, ""), True), NO_TEXT, kinds),
        "text_length": pc.if_else(pc.is_valid(texts), lengths, pa.scalar(None, pa.int64())),
        "text": pc.if_else(keep, texts, NO_TEXT),
    }
    return child, columns


def _tags(records: list[dict[str, Any]], ids: pa.Array) -> ChildColumns | None:
    """`messages__tags`: the three lists of each message in order (message, user, session)."""
    tags = _values(records, "tags", {})
    if set(map(type, tags)) != {dict}:
        return None
    lists = [_values(tags, key, ()) for key, _ in TAG_SCOPES]
    if not set(map(type, chain.from_iterable(lists))) <= {list, tuple}:
        return None
    items = [list(chain.from_iterable(scope_lists)) for scope_lists in lists]
    if not set(map(type, chain.from_iterable(items))) <= {dict}:
        return None
    counts = [pa.array(list(map(len, scope_lists)), pa.int64()) for scope_lists in lists]
    places = [item_places(scope_counts)[0] for scope_counts in counts]
    every_item = list(chain.from_iterable(items))
    names = value_texts(_values(every_item, "name"))
    values = value_texts(_values(every_item, "value"))
    if names is None or values is None:
        return None
    scopes = pa.array(
        list(
            chain.from_iterable(
                repeat(scope, len(i)) for (_, scope), i in zip(TAG_SCOPES, items, strict=True)
            )
        ),
        pa.string(),
    )
    parents = pa.concat_arrays(places)
    order = pc.sort_indices(parents)  # stable: each message's tags in the lists' order
    total = pc.add(pc.add(counts[0], counts[1]), counts[2])
    parents, positions = item_places(total)
    made = {
        MESSAGE_KEY: pc.take(ids, parents),
        "position": positions,
        "scope": pc.take(scopes, order),
        "name": pc.take(names[0], order),
        "value": pc.take(values[0], order),
        "value_type": pc.take(values[1], order),
    }
    schema = MESSAGES_SPEC.child_fields[MESSAGES_SPEC.children[1].key]
    return child_columns(ids, parents, positions, [made[name] for name in schema.names], schema)


def _with_passed(
    table: pa.Table, records: list[dict[str, Any]], extra: list[str], keep: pa.Array
) -> pa.Table | None:
    """The fields beyond the documented ones, as `to_row` passes them (scalars; text only where
    the message's text is kept) and the Arrow builder types them; None on a clash of names."""
    named = {key: column_name(key) for key in extra}
    if len(set(named.values())) < len(named) or set(named.values()) & set(table.column_names):
        return None
    for key in sorted(extra, key=named.__getitem__):
        values = _values(records, key)
        kinds = pa.array(list(map(PASSED_KINDS.get, map(type, values))), pa.string())
        passed = pc.fill_null(
            pc.or_(pc.is_in(kinds, NON_TEXT_KINDS), pc.and_(pc.equal(kinds, "str"), keep)), False
        )
        if not passed.true_count:
            continue
        kept = list(compress(values, passed.to_pylist()))
        present = set(pc.unique(kinds.filter(passed)).to_pylist())
        column = _passed_column(kept, present)
        if column is None:
            return None
        table = table.append_column(named[key], scattered(column, passed))
    return table


# How a passed field's values are typed, by the Python types among them (the Arrow builder's
# `_typed_array`): all booleans, all integers, numbers, or else text.
PASSED_KINDS: dict[type, str] = {bool: "bool", int: "int", float: "float", str: "str"}
NON_TEXT_KINDS = pa.array(["bool", "int", "float"], pa.string())


def _passed_column(values: list[Any], present: set[str]) -> pa.Array | None:
    """One passed field's kept values, typed as the Arrow builder types them."""
    if present == {"bool"}:
        return pa.array(values, pa.bool_())
    if present == {"int"}:
        return pa.array(values, pa.int64())
    if present <= {"int", "float"}:
        return pa.array(values, pa.float64())
    texts = value_texts(values)
    return None if texts is None else texts[0]
