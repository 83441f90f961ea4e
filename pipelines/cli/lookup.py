"""`kore-sessions lookup`: sessions as the API has them now, by session id or by voice call id.

Nothing is loaded: the answers are printed as the API gave them, one JSON object a line, for
someone tracing a conversation (a session id from a log, a call id from a contact-center
system). A session id is asked for on every configured bot's route (50 ids a request); a call
id through the API's `callId` filter over the last days, in windows under 7 days.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from kore_sessions.source import KoreClient
from kore_sessions.source.api.paging import PageCap
from kore_sessions.source.api.windows import Window, plan_windows
from kore_sessions.source.sessions.endpoint import lookup_sessions
from kore_sessions.source.sessions.refresh import window_pages
from kore_sessions.source.sessions.spec import MAX_IDS_PER_LOOKUP


@dataclass
class Found:
    """The sessions a lookup found, and the ids it did not.

    Attributes:
        sessions: The sessions as the API gave them.
        missing: The ids not found.
        asked: The call ids asked for, in order (empty for a lookup by session id).
    """

    sessions: list[dict[str, Any]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)

    def missing_line(self) -> str:
        """What was not found, as stderr says it: session ids by themselves; call ids (which
        name a person's call, and stderr may reach cron mail) by their place on the command line."""
        if not self.asked:
            return f"not found: {', '.join(self.missing)}"
        places = [f"#{self.asked.index(call_id) + 1}" for call_id in self.missing]
        return f"not found: --call-id {', '.join(places)} (of {len(self.asked)})"


def by_session_ids(client: KoreClient, bot_keys: Sequence[str], session_ids: Sequence[str]) -> Found:
    """Sessions by id, asked on each bot's route until every id is found."""
    found, wanted = Found(), list(dict.fromkeys(session_ids))
    for bot in bot_keys:
        for start in range(0, len(wanted), MAX_IDS_PER_LOOKUP):
            page = lookup_sessions(client, bot, wanted[start : start + MAX_IDS_PER_LOOKUP])
            found.sessions += page.records
        seen = {session.get("sessionId") for session in found.sessions}
        wanted = [session_id for session_id in wanted if session_id not in seen]
        if not wanted:
            break
    found.missing = wanted
    return found


def by_call_ids(
    client: KoreClient,
    bot_keys: Sequence[str],
    call_ids: Sequence[str],
    now: datetime,
    days: int,
    page_size: int,
) -> Found:
    """Sessions of voice calls, through the API's `callId` filter over the last `days`."""
    windows = plan_windows(now - timedelta(days=days), now, timedelta(days=6))
    unique: dict[Any, dict[str, Any]] = {}
    missing = []
    for call_id in dict.fromkeys(call_ids):
        sessions = call_sessions(client, bot_keys, windows, call_id, page_size)
        if not sessions:
            missing.append(call_id)
        unique.update((session.get("sessionId"), session) for session in sessions)
    return Found(list(unique.values()), missing, list(dict.fromkeys(call_ids)))


def call_sessions(
    client: KoreClient, bot_keys: Sequence[str], windows: Sequence[Window], call_id: str, page_size: int
) -> list[dict[str, Any]]:
    """The sessions of one voice call in the windows, on each bot's route."""
    return [
        session
        for bot in bot_keys
        for window in windows
        for page in window_pages(client, bot, window, PageCap(page_size), call_id=call_id)
        for session in page.records
    ]
