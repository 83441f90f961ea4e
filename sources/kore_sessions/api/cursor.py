"""A bot's state and its rules: the cursor, where loading began, the open sessions.

The state lives in the `sessions` resource's dlt state, committed with the load package, per
bot key (`*` on the admin route):
- `cursor`: the newest `start_time` the server has shown in windows that are complete together
  with every window before them. It follows the server's data, never the loader's clock, so a
  server whose clock lags (or sessions it shows late) cannot leave sessions behind it.
- `loaded_from`: where the loaded range begins: the first backfill's start, moved back by a
  bounded backfill that reaches it (the audit checks nothing before it).
- `server_seen`: the newest `start_time` the server has shown (for any bot of the run), a
  lower bound of the server's clock for the rules that depend on it.
- `open_sessions`: `{session_id: start_time}` of sessions last seen active, refreshed on every
  run until closed.
- `unresolved`: `{session_id: [first missed, misses]}` of open sessions that neither the id
  lookup nor their window returned: refreshed for UNRESOLVED_OPEN_PATIENCE, then given up.
- `version`: STATE_VERSION; a cursor without it was the loader's clock (the first version).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kore_sessions.source.api.timestamps import format_api_timestamp, parse_timestamp
from kore_sessions.source.api.windows import Window, incremental_start
from kore_sessions.source.config import RunConfig
from kore_sessions.source.run import SourceRun
from kore_sessions.source.settings import (
    CONTAINMENT_TYPES,
    STATE_VERSION,
    STATUS_ACTIVE,
    UNKNOWN_STATUS_QUIET_PERIOD,
    UNRESOLVED_MIN_MISSES,
    UNRESOLVED_OPEN_PATIENCE,
)


class BotState:
    """One bot's state, read and written through its rules."""

    def __init__(self, state: dict[str, Any], bot_key: str, run: SourceRun) -> None:
        """Wrap the bot's state dict (changed in place) and its record in the run."""
        self.state = state
        self.bot_key = bot_key
        self.run = run
        self.bot = run.bot(bot_key)
        self.open_sessions: dict[str, str] = dict(state.get("open_sessions") or {})
        if self.bot.open_at_start is None:
            self.bot.open_at_start = set(self.open_sessions)
        run.server_clock.observe(parse_timestamp(state.get("server_seen")))

    def incremental_start(self, config: RunConfig) -> datetime:
        """Where this package's windows begin: `start_date` on the first run (kept as
        `loaded_from`), else the cursor less the lookback, or where this run's previous package
        stopped. A cursor of the first version (the loader's clock) is read a window behind.
        A configured `start_date` before `loaded_from` does not move a run with state back:
        the run records it (`earlier_start`) so the summary can say how to load that range."""
        cursor = parse_timestamp(self.state.get("cursor"))
        if cursor is None:
            self.state.setdefault("loaded_from", format_api_timestamp(config.start_date))
            return incremental_start(None, config.start_date, config.lookback, self.bot.walked_through)
        loaded_from = parse_timestamp(self.state.get("loaded_from"))
        if config.start_date_given and loaded_from is not None and config.start_date < loaded_from:
            self.run.earlier_start[self.bot_key] = (config.start_date, loaded_from)
        if self.state.get("version") != STATE_VERSION:
            cursor -= config.window_span
        return incremental_start(cursor, config.start_date, config.lookback, self.bot.walked_through)

    def window_complete(self, window: Window, newest: datetime | None) -> None:
        """A window is complete with every window before it: the run has walked to its end,
        and the cursor moves to the newest session the server showed in it."""
        self.bot.walked_through = window.end
        if newest is not None:
            self.state["cursor"] = format_api_timestamp(newest)
            self.state["version"] = STATE_VERSION

    def track(self, row: dict[str, Any]) -> None:
        """Remember an active session for refresh, forget a closed one; count odd containments."""
        containment = row.get("containment_type")
        if containment is not None and containment not in CONTAINMENT_TYPES:
            self.run.count_containment(containment)
        session_id = row["session_id"]
        if self.bot.open_at_start and session_id in self.bot.open_at_start:
            self.bot.seen_open.add(session_id)
        self.state.get("unresolved", {}).pop(session_id, None)
        if self.may_be_open(row):
            self.open_sessions[session_id] = format_api_timestamp(row["start_time"])
        else:
            self.open_sessions.pop(session_id, None)

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
        open_at_start = self.bot.open_at_start or set()
        stale = sorted(open_at_start - self.bot.seen_open)
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
            self.run.given_up.setdefault(self.bot_key, []).append(session_id)
            return
        unresolved[session_id] = [format_api_timestamp(first), misses]
        self.run.unresolved.setdefault(self.bot_key, []).append(session_id)

    def save_open_sessions(self) -> None:
        """Write the open sessions into the state (and only their unresolved marks)."""
        self.state["open_sessions"] = dict(sorted(self.open_sessions.items()))
        unresolved = self.state.get("unresolved", {})
        self.state["unresolved"] = {s: unresolved[s] for s in sorted(unresolved) if s in self.open_sessions}

    def bounded_backfill_loaded(self, start: datetime, end: datetime) -> None:
        """A bounded backfill of `[start, end]` is loaded: when it reaches the loaded range
        (`loaded_from` within it), that range now begins at `start`. One that leaves a gap
        before `loaded_from` changes nothing: the gap was never loaded."""
        loaded_from = parse_timestamp(self.state.get("loaded_from"))
        if loaded_from is not None and start < loaded_from <= end:
            self.state["loaded_from"] = format_api_timestamp(start)

    def finish_run(self) -> None:
        """At the end of the bot's incremental run: the server's clock as its answers showed it,
        and, for a bot that has never had a session, a cursor there (the server has shown
        nothing of it up to its own clock, so later runs need not walk from start_date again)."""
        saved = parse_timestamp(self.state.get("server_seen"))
        latest = max((m for m in (self.run.server_clock.latest, saved) if m is not None), default=None)
        if latest is not None:
            self.state["server_seen"] = format_api_timestamp(latest)
        walked = self.bot.walked_through
        if self.state.get("cursor") is None and latest is not None and walked is not None:
            self.state["cursor"] = format_api_timestamp(min(latest, walked))
        self.state["version"] = STATE_VERSION
