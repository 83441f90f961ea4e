"""The open sessions of a bot's state, and their rules: tracked until closed, refreshed, given up.

Beside the keys every resource keeps (`kore_sessions.source.api.cursor`), the sessions state
holds:
- `open_sessions`: `{session_id: start_time}` of sessions last seen active, refreshed on every
  run until closed.
- `unresolved`: `{session_id: [first missed, misses]}` of open sessions that neither the id
  lookup nor their window returned: refreshed for UNRESOLVED_OPEN_PATIENCE, then given up.
- `channels`: `{channel: the earliest start_time seen on it}` of every channel the bot's
  sessions came on (the messages are asked for one channel a request).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from kore_sessions.source.api.cursor import BotState
from kore_sessions.source.api.run import SourceRun
from kore_sessions.source.api.timestamps import format_api_timestamp, parse_timestamp
from kore_sessions.source.sessions.run_record import sessions_record
from kore_sessions.source.sessions.spec import (
    CONTAINMENT_TYPES,
    PRIMARY_KEY,
    SESSIONS_TABLE,
    STATUS_ACTIVE,
    UNKNOWN_STATUS_QUIET_PERIOD,
    UNRESOLVED_MIN_MISSES,
    UNRESOLVED_OPEN_PATIENCE,
)


class SessionsBotState(BotState):
    """One bot's sessions state: the cursor's rules and the open sessions'."""

    def __init__(self, state: dict[str, Any], bot_key: str, run: SourceRun) -> None:
        """Wrap the bot's state dict (changed in place) and its record in the run."""
        super().__init__(state, SESSIONS_TABLE, bot_key, run)
        self.open_sessions: dict[str, str] = dict(state.get("open_sessions") or {})
        self.record = sessions_record(run)
        self.record.open_at_start.setdefault(bot_key, set(self.open_sessions))
        self.seen_open = self.record.seen_open.setdefault(bot_key, set())
        self.channels: dict[str, str] = state.setdefault("channels", {})
        self.channel_since = {name: parse_timestamp(since) for name, since in self.channels.items()}

    def track(self, row: dict[str, Any]) -> None:
        """Remember an active session for refresh, forget a closed one; count odd containments."""
        containment = row.get("containment_type")
        if containment is not None and containment not in CONTAINMENT_TYPES:
            self.record.count_containment(containment)
        self.note_channel(row.get("channel"), row["start_time"])
        session_id = row["session_id"]
        if session_id in self.record.open_at_start[self.bot_key]:
            self.seen_open.add(session_id)
        self.state.get("unresolved", {}).pop(session_id, None)
        if self.may_be_open(row):
            self.open_sessions[session_id] = format_api_timestamp(row["start_time"])
        else:
            self.open_sessions.pop(session_id, None)

    def track_page(self, sessions: pa.Table) -> None:
        """`track` for a page's sessions built column by column (each once, each with a status and
        a documented containment): Python only for the channels and the open sessions."""
        ids = sessions.column(PRIMARY_KEY)
        self.note_page_channels(sessions)
        open_at_start = self.record.open_at_start[self.bot_key]
        if open_at_start:
            self.seen_open.update(_among(ids, open_at_start))
        unresolved = self.state.get("unresolved", {})
        for session_id in _among(ids, unresolved) if unresolved else ():
            unresolved.pop(session_id, None)
        active = pc.equal(sessions.column("session_status"), STATUS_ACTIVE)
        for session_id in (
            _among(ids.filter(pc.invert(active)), self.open_sessions) if self.open_sessions else ()
        ):
            self.open_sessions.pop(session_id, None)
        opened = sessions.filter(active)
        for session_id, started in zip(
            opened.column(PRIMARY_KEY).to_pylist(), opened.column("start_time").to_pylist(), strict=True
        ):
            self.open_sessions[session_id] = format_api_timestamp(started)

    def note_page_channels(self, sessions: pa.Table) -> None:
        """`note_channel` for a page built column by column: each channel's earliest start, worked
        out only when the page has a channel not seen yet or starts before one's earliest."""
        channels = pc.unique(sessions.column("channel")).to_pylist()
        page_start = pc.min(sessions.column("start_time")).as_py()
        known = self.channel_since
        if all(channel in known and known[channel] <= page_start for channel in filter(_named, channels)):
            return
        firsts = sessions.group_by("channel").aggregate([("start_time", "min")])
        for channel, started in zip(
            firsts["channel"].to_pylist(), firsts["start_time_min"].to_pylist(), strict=True
        ):
            self.note_channel(channel, started.astimezone(UTC))

    def note_channel(self, channel: Any, started: datetime) -> None:
        """Remember the channel a session came on, and the earliest start seen on it."""
        if not _named(channel):
            return
        since = self.channel_since.get(channel)
        if since is None or started < since:
            self.channel_since[channel] = started
            self.channels[channel] = format_api_timestamp(started)

    def may_be_open(self, row: dict[str, Any]) -> bool:
        """Active, or of unknown status (pre-9.0) with activity in the server's last quiet period.

        The quiet period is measured against the newest session the server has shown, not the
        loader's clock (which may run hours ahead and would close such sessions too early).
        """
        status = row.get("session_status")
        if status is not None:
            return status == STATUS_ACTIVE
        end_time = row.get("end_time")
        server_now = self.run.server_clock.latest
        return end_time is None or server_now is None or end_time >= server_now - UNKNOWN_STATUS_QUIET_PERIOD

    def stale_open_sessions(self) -> dict[str, datetime | None]:
        """Sessions open when the run began that no window of the run fetched, with their start."""
        stale = sorted(self.record.open_at_start[self.bot_key] - self.seen_open)
        return {s: parse_timestamp(self.open_sessions[s]) for s in stale if s in self.open_sessions}

    def forget(self, session_id: str) -> None:
        """No longer refresh a session (deleted, or given up)."""
        self.open_sessions.pop(session_id, None)
        self.state.get("unresolved", {}).pop(session_id, None)

    def missed(self, session_id: str, now: datetime) -> None:
        """An open session the run looked for by id and in its window, and found in neither: it
        stays in refresh (named in the summary) until it has been missed for
        UNRESOLVED_OPEN_PATIENCE and at least UNRESOLVED_MIN_MISSES runs; then it is given up."""
        unresolved = self.state.setdefault("unresolved", {})
        first_text, misses = unresolved.get(session_id, [format_api_timestamp(now), 0])
        first, misses = parse_timestamp(first_text) or now, int(misses) + 1
        if misses >= UNRESOLVED_MIN_MISSES and now - first >= UNRESOLVED_OPEN_PATIENCE:
            self.forget(session_id)
            self.record.given_up.setdefault(self.bot_key, []).append(session_id)
            return
        unresolved[session_id] = [format_api_timestamp(first), misses]
        self.record.unresolved.setdefault(self.bot_key, []).append(session_id)

    def save_open_sessions(self) -> None:
        """Write the open sessions into the state (and only their unresolved marks)."""
        self.state["open_sessions"] = dict(sorted(self.open_sessions.items()))
        unresolved = self.state.get("unresolved", {})
        self.state["unresolved"] = {s: unresolved[s] for s in sorted(unresolved) if s in self.open_sessions}


def _named(channel: Any) -> bool:
    """Whether a session's channel is one to remember (a name, not a null or an empty text)."""
    return isinstance(channel, str) and bool(channel)


def _among(ids: pa.ChunkedArray, known: Collection[str]) -> list[str]:
    """The ids that are among a few known ones."""
    return ids.filter(pc.is_in(ids, pa.array(list(known), pa.string()))).to_pylist()


def sessions_seen(bot_state: dict[str, Any]) -> tuple[dict[str, datetime], datetime | None, datetime | None]:
    """What a bot's sessions state says of its sessions, for the resources beside them: each
    channel with the earliest start seen on it, the start of the oldest session still open,
    and where the loaded range begins."""
    channels = {name: parse_timestamp(since) for name, since in (bot_state.get("channels") or {}).items()}
    starts = [parse_timestamp(start) for start in (bot_state.get("open_sessions") or {}).values()]
    oldest_open = min((start for start in starts if start is not None), default=None)
    loaded_from = parse_timestamp(bot_state.get("loaded_from"))
    return {name: since for name, since in channels.items() if since is not None}, oldest_open, loaded_from
