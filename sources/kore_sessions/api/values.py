"""Loose values of the API's answers read alike by every resource: flags and tag values."""

from __future__ import annotations

import json
import math
from typing import Any


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
