"""Which channels and which range a bot's messages are asked for, from what its sessions showed.

The API gives one channel a request (without `channelType`, only `rtm`), so a window is asked
once per channel the bot's sessions came on. A channel the messages have not walked from its
first session on (a session on it arrived since, perhaps late, or earlier than any before) is
walked from the earliest session seen on it, and messages of sessions still open are read again
from the oldest one's start until it closes. The messages state keeps `channels`: `{channel:
where its walk began}`, written at the end of a run from where this run first asked it
(`ChannelStarts`), so a channel that joined in a later package of a run is walked back the next.
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
        walking: The run's sessions walk of the bot has packages to come (a long bounded
            backfill): the channels of its range are not all known yet.
    """

    channels: dict[str, datetime] = field(default_factory=dict)
    oldest_open: datetime | None = None
    loaded_from: datetime | None = None
    walking: bool = False


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
    new = [
        since
        for name, since in seen.channels.items()
        if name not in walked or (walked[name] is not None and since < walked[name])
    ]
    earliest = min([*new, *([seen.oldest_open] if seen.oldest_open else [])], default=None)
    return ChannelPlan(channels, earliest)


@dataclass
class ChannelStarts:
    """Where this run first asked each bot's channels: `{(bot key, channel): window start}`."""

    starts: dict[tuple[str, str], datetime] = field(default_factory=dict)

    def asked(self, bot_key: str, channels: tuple[str, ...], start: datetime) -> None:
        """A package asks these channels of a bot from `start` (the first time counts)."""
        for name in channels:
            self.starts.setdefault((bot_key, name), start)


def walked_channels(messages_state: dict[str, Any], bot_key: str, starts: ChannelStarts) -> None:
    """A run walked the bot's channels from where it first asked each up to its end: remember
    each where its walk began (the earlier of that and an earlier run's)."""
    channels = messages_state.setdefault("channels", {})
    for (bot, name), start in starts.starts.items():
        earlier = parse_timestamp(channels.get(name))
        if bot == bot_key and (name not in channels or (earlier is not None and start < earlier)):
            channels[name] = format_api_timestamp(start)
