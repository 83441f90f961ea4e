"""Loose values of the API's answers read alike by every resource: a record's id and times,
flags and tag values. A message about a bad value never quotes it (it may be a person's data)."""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

from kore_sessions.source.api.answers import InvalidRecordError, a_json_type, key_names
from kore_sessions.source.api.timestamps import parse_timestamp

# What parsing an instant raises on a value that is not one (pendulum's ParserError is a
# ValueError; a year beyond datetime's range overflows).
TIMESTAMP_ERRORS = (ValueError, OverflowError)


def record_id(raw: dict[str, Any], key: str, noun: str) -> str:
    """A record's id (`raw[key]`), or InvalidRecordError naming the fields it has (never their
    values); `noun` names the record (`a session`, `a message`)."""
    value = raw.get(key)
    if isinstance(value, str) and value:
        return value
    fields = key_names(raw)
    if value is None or value == "":
        raise InvalidRecordError(f"{noun} without a {key} (fields present: {fields})")
    kind = a_json_type(value)
    raise InvalidRecordError(f"{noun} whose {key} is {kind}, not text (fields present: {fields})")


def record_instant(raw: dict[str, Any], name: str, label: str) -> datetime | None:
    """A timestamp field of a record, or InvalidRecordError naming the record (`label`, e.g.
    `session <id>`) and the field, never the value (nor the parser's message, which quotes it)."""
    try:
        return parse_timestamp(raw.get(name))
    except TIMESTAMP_ERRORS:
        kind = a_json_type(raw.get(name))
        raise InvalidRecordError(f"{label}: {name} is not a timestamp (it is {kind})") from None


def tag_value_text(value: Any) -> tuple[str | None, str]:
    """A tag value of any JSON type as text, plus the name of its JSON type."""
    if value is None:
        return None, "null"
    if isinstance(value, bool):
        return ("true" if value else "false"), "boolean"
    if isinstance(value, int):
        return int.__repr__(value), "number"  # as json.dumps writes it, without its overhead
    if isinstance(value, float):
        return (float.__repr__(value) if math.isfinite(value) else json.dumps(value)), "number"
    if isinstance(value, str):
        return value, "string"
    kind = "array" if isinstance(value, list) else "object"
    return json.dumps(value, sort_keys=True, separators=(",", ":")), kind


def as_bool(value: Any) -> bool | None:
    """true/false, 1/0 and their strings as a boolean."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value)
    return str(value).strip().lower() in ("1", "true", "yes")
