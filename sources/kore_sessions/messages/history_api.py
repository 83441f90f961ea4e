"""The getMessagesV2 call (a page of one window of one channel) over the shared client, what its
pages list, and the route it is served on."""

from __future__ import annotations

from typing import Any

from kore_sessions.source.api.answers import Page, parse_page
from kore_sessions.source.api.client import KoreClient, Route
from kore_sessions.source.api.paging import Listing, PageRequest
from kore_sessions.source.api.timestamps import format_api_timestamp
from kore_sessions.source.api.windows import Window
from kore_sessions.source.messages.history_rules import (
    ADMIN_MESSAGES_PATH,
    BOT_MESSAGES_PATH,
    DEFAULT_CHANNEL,
    MESSAGE_KEY,
    MESSAGES_SCOPE,
    MESSAGES_TABLE,
)

# Where the Conversation History API is served, and the scope its app needs.
MESSAGES_ROUTE = Route(BOT_MESSAGES_PATH, ADMIN_MESSAGES_PATH, MESSAGES_SCOPE)
# What its pages list: messages, told apart by `_id` (the row's `message_id`), placed in
# windows by `createdOn` (the row's `created_on`).
MESSAGES_LISTING = Listing("_id", MESSAGES_TABLE, MESSAGE_KEY, "created_on")


def parse_messages_page(payload: dict[str, Any]) -> Page:
    """Check the documented shape of a getMessages answer and wrap it.

    Raises:
        KoreApiError: `messages` is missing or not a list of objects.
    """
    return parse_page(payload, "messages", "invalidSessions")


def get_messages_page(client: KoreClient, bot_key: str, window: Window, request: PageRequest) -> Page:
    """Fetch one page of the messages of one channel created in a window, every user's.

    Args:
        client: The shared client (budget, retries, answers).
        bot_key: A bot id, or `ALL_BOTS_KEY` for the admin route.
        window: Its start and end (aware UTC, under 7 days apart) are sent as full timestamps.
        request: The page: `skip` (counted in messages, newest first), `limit` (the server may
            return fewer), and its variant, the channel (`channelType`: one a request).
    """
    body = {
        "dateFrom": format_api_timestamp(window.start),
        "dateTo": format_api_timestamp(window.end),
        "skip": request.skip,
        "limit": request.limit,
        "channelType": request.variant or DEFAULT_CHANNEL,
        # An agent's reply then carries `author`: the bot's words are told from an agent's.
        "getAgentsInfo": True,
    }
    return parse_messages_page(client.post(MESSAGES_ROUTE, bot_key, body))
