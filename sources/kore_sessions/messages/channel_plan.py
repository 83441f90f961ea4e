"""Which channels and which range a bot's messages are asked for, from what its sessions showed.

The API gives one channel a request (without `channelType`, only `rtm`), so a window is asked
once per channel the bot's sessions came on. A channel the messages have not walked yet (a
session on it arrived since, perhaps late) is walked from the earliest session seen on it, and
messages of sessions still open are read again from the oldest one's start until it closes.
The messages state keeps `channels`: `{channel: the earliest start walked from}`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kore_sessions.source.api.timestamps import format_api_timestamp, parse_timestamp
from kore_sessions.source.messages.history_rules import DEFAULT_CHANNEL


@dataclass(frozen=True)
class SessionsSeen:
    """What the sessions resource has seen of one bot.

    Attributes:
        channels: Each channel its sessions came on, with the earliest start seen on it.
        oldest_open: The start of the oldest session still open, if any.
        loaded_from: Where the bot's loaded sessions begin, if any were loaded.
    """

    channels: dict[str, datetime] = field(default_factory=dict)
    oldest_open: datetime | None = None
    loaded_from: datetime | None = None


@dataclass(frozen=True)
class ChannelPlan:
    """The channels one bot's windows are asked in, and how far back the walk must begin.

    Attributes:
        channels: Every channel to ask, sorted (`rtm` when no session showed one).
        reach_back: The earliest instant the walk must cover (a new channel's first session, or
            the oldest open session), or None when the cursor's own rule suffices.
    """

    channels: tuple[str, ...]
    reach_back: datetime | None


def channel_plan(seen: SessionsSeen, messages_state: dict[str, Any]) -> ChannelPlan:
    """The channels of a bot's messages walk and how far back it reaches.

    Args:
        seen: What the sessions resource has seen of the bot.
        messages_state: The bot's messages state (its `channels` walked so far).
    """
    walked = {name: parse_timestamp(since) for name, since in (messages_state.get("channels") or {}).items()}
    channels = tuple(sorted(set(seen.channels) | set(walked))) or (DEFAULT_CHANNEL,)
    new = [since for name, since in seen.channels.items() if name not in walked]
    earliest = min([*new, *([seen.oldest_open] if seen.oldest_open else [])], default=None)
    return ChannelPlan(channels, earliest)


def walked_channels(messages_state: dict[str, Any], plan: ChannelPlan, seen: SessionsSeen) -> None:
    """A run walked every channel of the plan (each from its first session on, at least):
    remember them in the state, with that first session's start."""
    channels = messages_state.setdefault("channels", {})
    for name in plan.channels:
        since = seen.channels.get(name)
        channels.setdefault(name, format_api_timestamp(since) if since else None)
