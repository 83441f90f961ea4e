"""Pure transforms: one raw API message to one clean row (with its components and tags).

What a user typed never reaches a row unless asked for (`keep_user_text`): the text of any
message but the bot's own (`outgoing`), of its components, and any unknown text field it
carries are left out (a message of another or no type may be a user's); its type, times, text
length and component kinds are kept. The bot's own text is kept (it can echo
what the user said: the README says so).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kore_sessions.source.api.answers import InvalidRecordError, a_json_type
from kore_sessions.source.api.values import as_bool, record_id, record_instant, tag_value_text
from kore_sessions.source.messages.history_rules import MESSAGE_KEY, OUTGOING
from kore_sessions.source.messages.message_columns import KNOWN_API_FIELDS

# The tag lists of a message and the scope each becomes.
TAG_SCOPES = (("messageTags", "message"), ("userTags", "user"), ("sessionTags", "session"))
# Joins the texts of a message's components into the message's text.
TEXT_SEPARATOR = "\n"


def message_id_of(raw: dict[str, Any]) -> str:
    """The message's `_id`, or InvalidRecordError naming the fields it has (never their values)."""
    return record_id(raw, "_id", "a message")


def to_row(raw: dict[str, Any], keep_user_text: bool = False) -> dict[str, Any]:
    """Turn one API message into the row loaded into `messages` (with its child lists).

    Args:
        raw: The message as the API returned it.
        keep_user_text: Keep what a user typed (incoming text); off by default.

    Returns:
        A row with snake_case typed columns; `components` and `tags` become child tables keyed
        by `message_id`; unknown scalar fields pass through (text ones of a user's message only
        with `keep_user_text`).

    Raises:
        InvalidRecordError: the message has no id, no session or no parsable createdOn.
    """
    message_id = message_id_of(raw)
    created_on = record_instant(raw, "createdOn", f"message {message_id}")
    if created_on is None:
        raise InvalidRecordError(f"message {message_id} has no createdOn")
    session_id = raw.get("sessionId")
    if not isinstance(session_id, str) or not session_id:
        raise InvalidRecordError(f"message {message_id} has no sessionId (it is {a_json_type(session_id)})")
    message_type = _text(raw.get("type"))
    keep_text = keep_user_text or message_type == OUTGOING
    components = _component_rows(message_id, raw.get("components"), keep_text)
    texts = [c["text_value"] for c in components if c["text_value"] is not None]
    for component in components:
        if not keep_text:
            component["text"] = None
        del component["text_value"]
    row: dict[str, Any] = {
        MESSAGE_KEY: message_id,
        "session_id": session_id,
        "bot_id": _text(raw.get("botId")),
        "message_type": message_type,
        "status": _text(raw.get("status")),
        "created_on": created_on,
        "modified_on": record_instant(raw, "lmodifiedOn", f"message {message_id}"),
        "timestamp_value": _whole_number(raw.get("timestampValue")),
        "channel": _text(raw.get("chnl")) or _text(raw.get("channel")),
        "lang": _text(raw.get("lang")),
        "message_source": tag_value_text(raw["ms"])[0] if "ms" in raw else None,
        "is_developer": as_bool(raw.get("isD")),
        "is_builder": as_bool(raw.get("isBB")),
        "created_by": _text(raw.get("createdBy")),
        "from_agent": isinstance(raw.get("author"), Mapping) and bool(raw.get("author")),
        "component_kinds": ",".join(c["kind"] or "" for c in components) or None,
        "text_length": sum(len(text) for text in texts) if texts else None,
        "text": TEXT_SEPARATOR.join(texts) if texts and keep_text else None,
        "components": components,
        "tags": _tag_rows(message_id, raw.get("tags")),
    }
    row.update(_passed_through(raw, keep_text))
    return row


def _component_rows(message_id: str, components: Any, keep_text: bool) -> list[dict[str, Any]]:
    """Rows of a message's components: kind, id, text length, and the text where it is kept."""
    rows = []
    for position, component in enumerate(components if isinstance(components, list) else []):
        component = component if isinstance(component, Mapping) else {}
        data = component.get("data")
        text = data.get("text") if isinstance(data, Mapping) else None
        text = text if isinstance(text, str) else None
        rows.append(
            {
                MESSAGE_KEY: message_id,
                "position": position,
                "component_id": _text(component.get("_id")),
                "kind": _text(component.get("cT")),
                "text_length": None if text is None else len(text),
                "text": text if keep_text else None,
                "text_value": text,
            }
        )
    return rows


def _tag_rows(message_id: str, tags: Any) -> list[dict[str, Any]]:
    """Rows of the message's three tag lists: scope, name, value as text and its JSON type."""
    rows: list[dict[str, Any]] = []
    lists = tags if isinstance(tags, Mapping) else {}
    for key, scope in TAG_SCOPES:
        items = lists.get(key)
        for tag in items if isinstance(items, list) else []:
            tag = tag if isinstance(tag, Mapping) else {"name": None, "value": tag}
            value, value_type = tag_value_text(tag.get("value"))
            name = tag.get("name")
            rows.append(
                {
                    MESSAGE_KEY: message_id,
                    "position": len(rows),
                    "scope": scope,
                    "name": name if isinstance(name, str) else tag_value_text(name)[0],
                    "value": value,
                    "value_type": value_type,
                }
            )
    return rows


def _passed_through(raw: dict[str, Any], keep_text: bool) -> dict[str, Any]:
    """Unknown scalar fields (objects and lists are left out: they may hold anything); text
    fields only where the message's text is kept."""
    if raw.keys() <= KNOWN_API_FIELDS:
        return {}
    return {
        key: value
        for key, value in raw.items()
        if key not in KNOWN_API_FIELDS
        and isinstance(value, str | int | float | bool)
        and (keep_text or not isinstance(value, str))
    }


def _text(value: Any) -> str | None:
    """A text field; other JSON types as their JSON text (loose types are kept, not dropped)."""
    if value is None or isinstance(value, str):
        return value
    return tag_value_text(value)[0]


def _whole_number(value: Any) -> int | None:
    """`timestampValue` as a whole number (a number or a string of digits), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None
