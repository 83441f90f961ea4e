"""The messages' completeness counts: a bot's messages created in a range, as the API counts
them. The API gives one channel a request, so a range's count is the sum, over the channels the
bot's messages are walked in, of the `total` of one request (`limit` 1) per channel.

The counts' rules (UTC day slices, stretches under 7 days, narrowing by halving) are every
resource's: `kore_sessions.source.api.day_counts`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from kore_sessions.source.api.answers import Page
from kore_sessions.source.api.client import KoreClient
from kore_sessions.source.api.day_counts import SpanCounter, listing_total
from kore_sessions.source.api.paging import PageRequest
from kore_sessions.source.api.windows import Window
from kore_sessions.source.messages.history_api import MESSAGES_LISTING, get_messages_page
from kore_sessions.source.messages.history_rules import DEFAULT_CHANNEL


class MessageCounter(SpanCounter):
    """Counts a bot's messages in a range: one request per channel (two for a server that
    refuses a stretch of 7 whole days)."""

    def __init__(self, client: KoreClient, page_size: int, channels: Mapping[str, Sequence[str]]) -> None:
        """Count through `client`.

        Args:
            client: The shared client (the same rate budget as `load`).
            page_size: Only for a server that sends no total.
            channels: Per bot key, the channels its messages are walked in (`rtm` if none).
        """
        super().__init__()
        self.client = client
        self.page_size = page_size
        self.channels = channels

    def count_once(self, bot_key: str, start: datetime, end: datetime) -> int:
        """The API's count of a bot's messages created in [start, end], a request per channel."""
        channels = self.channels.get(bot_key) or (DEFAULT_CHANNEL,)
        return sum(
            count_messages(self.client, bot_key, start, end, channel, self.page_size) for channel in channels
        )


def count_messages(
    client: KoreClient, bot_key: str, start: datetime, end: datetime, channel: str, page_size: int
) -> int:
    """The API's count of a bot's messages of one channel created in [start, end] (under 7
    days): the `total` of one request (a server that sends no total is paged through instead)."""
    window = Window(start, end)

    def fetch(skip: int, limit: int) -> Page:
        return get_messages_page(client, bot_key, window, PageRequest(0, channel, skip, limit))

    return listing_total(fetch, MESSAGES_LISTING.id_key, page_size)
