"""The walk of one bot's message windows: `WindowWalk` with the messages' own rules.

Every window is asked once per channel (the request's variant): the channels the bot's
sessions came on (`plan`). The cursor follows the newest `createdOn` the server showed in
windows complete in order, as for sessions; the walk reaches back for a channel first seen
since and for sessions still open.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any

from kore_sessions.source.api.answers import Page
from kore_sessions.source.api.client import KoreClient
from kore_sessions.source.api.cursor import BotState
from kore_sessions.source.api.page_columns import ColumnarPage
from kore_sessions.source.api.paging import PageCap, PageRequest
from kore_sessions.source.api.run import SourceRun
from kore_sessions.source.api.timestamps import format_api_timestamp
from kore_sessions.source.api.walk import WindowWalk
from kore_sessions.source.api.windows import Window
from kore_sessions.source.config import RunConfig
from kore_sessions.source.messages.channel_plan import (
    ChannelPlan,
    ChannelStarts,
    SessionsSeen,
    channel_plan,
    walked_channels,
)
from kore_sessions.source.messages.columnar_messages import message_columns
from kore_sessions.source.messages.history_api import MESSAGES_LISTING, get_messages_page
from kore_sessions.source.messages.history_rules import MESSAGES_TABLE
from kore_sessions.source.messages.message_fields import to_row
from kore_sessions.source.package_windows import package_windows


class MessagesExtractor(WindowWalk):
    """Fetches one bot's messages for one load package and keeps its state up to date."""

    def __init__(
        self,
        client: KoreClient,
        bot_key: str,
        bot_state: dict[str, Any],
        config: RunConfig,
        run: SourceRun,
        cap: PageCap,
        seen: SessionsSeen,
    ) -> None:
        """Plan the bot's windows of this package from its state, its sessions and the run."""
        state = BotState(bot_state, MESSAGES_TABLE, bot_key, run)
        self.client = client
        self.config = config
        self.plan_of_channels = channel_plan(seen, bot_state)
        windows: list[Window] = []
        if config.bounded and seen.walking and not state.bot.finished:
            # A bounded range's channels are those of its sessions: wait until they are all walked.
            state.bot.more_to_fetch = True
        elif not state.bot.finished:
            ranges = config.repair.message_ranges.get(bot_key, ()) if config.repair else ()
            start = partial(self._incremental_start, state, seen, self.plan_of_channels)
            windows = package_windows(config, ranges, state.bot, start, config.clock())
        self.starts = run.record(MESSAGES_TABLE, ChannelStarts)
        if windows and not config.bounded:
            self.starts.asked(bot_key, self.plan_of_channels.channels, windows[0].start)
        super().__init__(bot_key, state, run, cap, MESSAGES_LISTING, windows, config.bounded)

    def plan(self) -> list[PageRequest]:
        """The first requests: the oldest window's first page in every channel (the answers'
        shape is the same in each; the server's page cap shows in the first that is cut)."""
        return [self.first_page(0, channel) for channel in self.variants()] if self.windows else []

    def call(self, request: PageRequest) -> Callable[[], Page]:
        """The getMessagesV2 call that answers a request (its variant: the channel)."""
        window = self.windows[request.window_index]
        return partial(get_messages_page, self.client, self.bot_key, window, request)

    def to_row(self, raw: dict[str, Any], request: PageRequest) -> dict[str, Any]:
        """A raw message as a row (what users typed only if the run keeps it)."""
        return to_row(raw, self.config.keep_user_text)

    def columns(self, records: list[dict[str, Any]], request: PageRequest) -> ColumnarPage | None:
        """A page of messages built column by column, or None when it needs the record transform."""
        return message_columns(records, self.config.keep_user_text)

    def variants(self) -> tuple[str | None, ...]:
        """Every channel of the bot's sessions: one request a channel and page."""
        return self.plan_of_channels.channels

    def finish(self) -> None:
        """After every window of the package: in the run's last package of the bot, the
        cursor's end-of-run rules and the channels walked (a bounded walk: its range)."""
        bot = self.state.bot
        if bot.finished or bot.more_to_fetch or self.stopped:
            return
        if self.config.end_date is not None and self.config.repair is None:
            self.state.bounded_backfill_loaded(self.config.start_date, self.config.end_date)
        elif self.config.repair is None:
            self.state.finish_run()
            walked_channels(self.state.state, self.bot_key, self.starts)
        bot.finished = True

    def _incremental_start(self, state: BotState, seen: SessionsSeen, plan: ChannelPlan) -> datetime:
        """Where this package begins: where the run's previous package stopped; else the
        cursor's rule (a first run: where the bot's sessions begin, if earlier than
        start_date), moved back to a new channel's first session or the oldest open one."""
        if state.bot.walked_through is not None:
            return state.bot.walked_through
        first_run = state.state.get("cursor") is None
        start = state.incremental_start(self.config)
        if first_run and seen.loaded_from is not None and seen.loaded_from < start:
            start = seen.loaded_from
            state.state["loaded_from"] = format_api_timestamp(start)
        if plan.reach_back is not None:
            start = min(start, plan.reach_back)
        return start
