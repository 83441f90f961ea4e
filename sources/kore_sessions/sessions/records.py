"""Pure transforms: one raw API session to one clean row (with its child lists)."""

from __future__ import annotations

from itertools import repeat
from typing import Any

from kore_sessions.source.api.answers import InvalidRecordError
from kore_sessions.source.api.values import as_bool, record_id, record_instant, tag_value_text
from kore_sessions.source.sessions.schema import KNOWN_API_FIELDS, SESSION_COLUMNS
from kore_sessions.source.sessions.spec import CONTAINMENT_ALIASES, SESSION_TYPES, STATUS_ACTIVE

# (column, API field) of the columns a session's own fields fill, in order.
ROW_FIELDS = tuple((column.name, column.api_field) for column in SESSION_COLUMNS if column.api_field)
# The keys of a tag that become columns of its own; any other key passes through.
TAG_KEYS = frozenset({"name", "value"})


def normalize_containment(value: Any) -> str | None:
    """Map any spelling of a containment value (`Selfservice`, `dropoff`) to the 9.x one."""
    if not isinstance(value, str):
        return None
    return CONTAINMENT_ALIASES.get(value.strip().lower())


def is_legacy_shape(sessions: list[dict[str, Any]]) -> bool:
    """True when a page is in the pre-9.0 shape: containment in `sessionType`, none of its own."""
    if all(map(dict.__contains__, sessions, repeat("containmentType"))):
        return False  # every session has its own (checked in C: no Python per session)
    return any(
        "containmentType" not in raw and normalize_containment(raw.get("sessionType")) for raw in sessions
    )


def session_id_of(raw: dict[str, Any]) -> str:
    """The session's id, or InvalidRecordError naming the fields it has (never their values)."""
    return record_id(raw, "sessionId", "a session")


def to_row(raw: dict[str, Any], containment_type: str | None = None) -> dict[str, Any]:
    """Turn one API session into the row loaded into `sessions` (with its child lists).

    Args:
        raw: The session as the API returned it, in the 9.x or the pre-9.0 shape.
        containment_type: The containment type the request filtered on (pre-9.0 servers),
            which wins over what the record says.

    Returns:
        A row with snake_case typed columns; `session_lang`, `user_tags` and `session_tags`
        become child tables keyed by `session_id`; unknown fields pass through unchanged.

    Raises:
        InvalidRecordError: the session has no id or no parsable start_time.
    """
    session_id = session_id_of(raw)
    start_time = record_instant(raw, "start_time", f"session {session_id}")
    end_time = record_instant(raw, "end_time", f"session {session_id}")
    if start_time is None:
        raise InvalidRecordError(f"session {session_id} has no start_time")
    raw_session_type = raw.get("sessionType")
    tags = raw.get("tags") if isinstance(raw.get("tags"), dict) else {}
    converted = {
        "session_id": session_id,
        "start_time": start_time,
        "end_time": end_time,
        "session_type": raw_session_type if raw_session_type in SESSION_TYPES else None,
        "containment_type": containment_type
        or normalize_containment(raw.get("containmentType"))
        or normalize_containment(raw_session_type)
        or _kept_as_sent(raw.get("containmentType")),
        "is_developer": as_bool(raw.get("isDeveloper")),
        "session_status": session_status(raw),
    }
    row: dict[str, Any] = {name: converted.get(name, raw.get(field)) for name, field in ROW_FIELDS}
    row["session_lang"] = [{"session_id": session_id, "lang": lang} for lang in raw.get("session_lang") or []]
    row["user_tags"] = _tag_rows(session_id, tags.get("userTags"))
    row["session_tags"] = _tag_rows(session_id, tags.get("sessionTags"))
    if len(tags) > ("userTags" in tags) + ("sessionTags" in tags):
        row["tags"] = {k: v for k, v in tags.items() if k not in ("userTags", "sessionTags")}
    if not raw.keys() <= KNOWN_API_FIELDS:
        row.update({k: v for k, v in raw.items() if k not in KNOWN_API_FIELDS})
    return row


def session_status(raw: dict[str, Any]) -> str | None:
    """`active` or `closed` as the API says; without it, active if there is no end_time, else None."""
    status = raw.get("sessionStatus")
    if isinstance(status, str) and status:
        return status.strip().lower()
    if "end_time" in raw and not raw.get("end_time"):
        return STATUS_ACTIVE
    return None


def _tag_rows(session_id: str, tags: Any) -> list[dict[str, Any]]:
    """Rows of one tag list: name, value as text and its JSON type."""
    rows = []
    for position, tag in enumerate(tags if isinstance(tags, list) else []):
        tag = tag if isinstance(tag, dict) else {"name": None, "value": tag}
        value, value_type = tag_value_text(tag.get("value"))
        row = {
            "session_id": session_id,
            "position": position,
            "name": tag.get("name"),
            "value": value,
            "value_type": value_type,
        }
        if not tag.keys() <= TAG_KEYS:
            row.update({k: v for k, v in tag.items() if k not in TAG_KEYS})
        rows.append(row)
    return rows


def _kept_as_sent(value: Any) -> str | None:
    """An undocumented containment value, kept as the API sent it rather than dropped."""
    return value.strip() if isinstance(value, str) and value.strip() else None
