"""A bot's state in one resource and its rules: the cursor, where loading began, the server's clock.

The state lives in the resource's dlt state, committed with the load package, per bot key
(`*` on the admin route); a resource adds its own keys (sessions: the open sessions,
`kore_sessions.source.sessions.open_sessions`):
- `cursor`: the newest `start_time` the server has shown in windows that are complete together
  with every window before them. It follows the server's data, never the loader's clock, so a
  server whose clock lags (or sessions it shows late) cannot leave sessions behind it.
- `loaded_from`: where the loaded range begins: the first backfill's start, moved back by a
  bounded backfill that reaches it (the audit checks nothing before it).
- `server_seen`: the newest `start_time` the server has shown (for any bot of the run), a
  lower bound of the server's clock for the rules that depend on it.
- `version`: STATE_VERSION; a cursor without it was the loader's clock (the first version).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Protocol

from kore_sessions.source.api.rules import STATE_VERSION
from kore_sessions.source.api.run import SourceRun
from kore_sessions.source.api.timestamps import format_api_timestamp, parse_timestamp
from kore_sessions.source.api.windows import Window, incremental_start


class StartRules(Protocol):
    """What decides where a package's windows begin (the run configuration has it)."""

    start_date: datetime
    start_date_given: bool
    lookback: timedelta
    window_span: timedelta


class BotState:
    """One bot's state in one resource, read and written through its rules."""

    def __init__(self, state: dict[str, Any], resource: str, bot_key: str, run: SourceRun) -> None:
        """Wrap the bot's state dict (changed in place) and its record in the run."""
        self.state = state
        self.resource = resource
        self.bot_key = bot_key
        self.run = run
        self.bot = run.bot(resource, bot_key)
        run.server_clock.observe(parse_timestamp(state.get("server_seen")))

    def incremental_start(self, config: StartRules) -> datetime:
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
