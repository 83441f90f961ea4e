"""The message windows a backfill must ask for, and the fewest requests that fetch them.

The source asks a bot's messages window by window (`plan_windows` from its start to the
loader's clock plus `CLOCK_SKEW_ALLOWANCE`, `DEFAULT_WINDOW_HOURS` a window, overlapping by a
second; each load package plans its `DEFAULT_WINDOWS_PER_PACKAGE` windows, and a short tail,
afresh from where the previous package stopped), once per channel its sessions came on (one
channel a request). Each (bot, window, channel) needs ``max(1, ceil(total / page cap))``
requests, where ``total`` is what the server counts in it (``dateFrom <= createdOn <= dateTo``):
the least any loader paging that plan can send.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta

from kore_sessions.sandbox import GeneratedSession, RequestRecord
from kore_sessions.sandbox.routes import BOT_PATH_SUFFIX, MESSAGES_SUFFIXES
from kore_sessions.source.api.rules import CLOCK_SKEW_ALLOWANCE, DEFAULT_WINDOW_HOURS
from kore_sessions.source.api.timestamps import format_api_timestamp
from kore_sessions.source.api.windows import Window, first_windows
from kore_sessions.source.settings import DEFAULT_WINDOWS_PER_PACKAGE

from bench.fast_server import MessageIndex
from bench.messages_floor import MessageWindow

# The route the source pages messages on (v2).
MESSAGES_V2_SUFFIX = next(suffix for suffix, version in MESSAGES_SUFFIXES.items() if version == 2)


def session_channels(
    sessions: Sequence[GeneratedSession], now: datetime, start: datetime
) -> dict[str, set[str]]:
    """Per bot, the channels of the sessions a backfill from ``start`` loads (those shown at ``now``)."""
    channels: dict[str, set[str]] = {}
    for session in sessions:
        if session.start >= start and session.is_visible(now):
            channels.setdefault(session.bot_id, set()).add(session.channel)
    return channels


def source_windows(start: datetime, now: datetime) -> list[Window]:
    """The windows the source walks from ``start``, package by package: each package takes its
    `DEFAULT_WINDOWS_PER_PACKAGE` windows (and a short tail, as `first_windows` says) from where
    the previous one stopped (no overlap there)."""
    span, end = timedelta(hours=DEFAULT_WINDOW_HOURS), now + CLOCK_SKEW_ALLOWANCE
    walked: list[Window] = []
    while True:
        windows, more = first_windows(start, end, span, DEFAULT_WINDOWS_PER_PACKAGE)
        walked += windows
        if not more:
            return walked
        start = walked[-1].end


def planned_windows(channels: dict[str, set[str]], start: datetime, now: datetime) -> list[MessageWindow]:
    """Every (bot, dateFrom, dateTo, owned_after, channel) the source asks, as it sends them; a
    window owns what was created after its predecessor's end (None: the first owns all)."""
    windows = source_windows(start, now)
    planned: list[MessageWindow] = []
    for bot in sorted(channels):
        for number, window in enumerate(windows):
            owned_after = format_api_timestamp(windows[number - 1].end) if number else None
            for channel in sorted(channels[bot]):
                planned.append(
                    (
                        bot,
                        format_api_timestamp(window.start),
                        format_api_timestamp(window.end),
                        owned_after,
                        channel,
                    )
                )
    return planned


def minimum_message_requests(planned: Sequence[MessageWindow], index: MessageIndex, cap: int) -> int:
    """The fewest requests that page every planned window: per window and channel, its pages."""
    pages = 0
    for bot, date_from, date_to, _, channel in planned:
        total = index.count(bot, channel, _instant(date_from), _instant(date_to))
        pages += max(1, math.ceil(total / cap))
    return pages


def expected_messages(
    channels: dict[str, set[str]], index: MessageIndex, start: datetime, now: datetime
) -> int:
    """Messages the backfill must hold: those of its bots' channels created from ``start`` on."""
    end = now + CLOCK_SKEW_ALLOWANCE
    return sum(index.count(bot, channel, start, end) for bot, names in channels.items() for channel in names)


def is_messages_request(path: str) -> bool:
    """A request to a bot's getMessagesV2 route."""
    return path.endswith(MESSAGES_V2_SUFFIX)


def is_sessions_request(path: str) -> bool:
    """A request to a bot's getSessions route."""
    return path.endswith(BOT_PATH_SUFFIX)


def asked_windows(log: Sequence[RequestRecord]) -> set[tuple[str, str, str, str]]:
    """Distinct (bot, dateFrom, dateTo, channel) of the logged getMessagesV2 requests."""
    return {
        (
            str(record.bot_id),
            str(record.body["dateFrom"]),
            str(record.body["dateTo"]),
            str(record.body["channelType"]),
        )
        for record in log
        if is_messages_request(record.path) and record.body
    }


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
