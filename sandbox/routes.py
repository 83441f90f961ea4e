"""The API's routes: the account (admin) route and the per-bot route of each resource, by URL path.

Resources: the Sessions History API (``getSessions``) and the Conversation History API
(``getMessages`` v1, ``getMessagesV2`` v2; the Admin Console route exists only for v1, as
documented). Every route of a bot counts in that bot's rate-limit bucket, every admin route in
the account's: the vendor does not say whether the analytics APIs share a counter, so the
sandbox takes the strictest reading, one shared budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

# The account route, for Bot Admin Console apps: every bot the app may read.
ADMIN_PATH = "/api/public/getSessions"
# The per-bot route is BOT_PATH_PREFIX + <bot id> + BOT_PATH_SUFFIX, for bot builder apps.
BOT_PATH_PREFIX = "/api/public/bot/"
BOT_PATH_SUFFIX = "/getSessions"
# The rate-limit bucket of the account route; each bot has its own bucket on its route.
ACCOUNT_BUCKET = "account"
# The Conversation History API's Admin Console route (v1 rules; no v2 admin route is documented).
ADMIN_MESSAGES_PATH = "/api/public/getMessages"
# Per-bot Conversation History suffixes (after BOT_PATH_PREFIX + <bot id>) and their API version.
MESSAGES_SUFFIXES = {"/getMessages": 1, "/getMessagesV2": 2}
# The resources the routes serve.
SESSIONS, MESSAGES = "sessions", "messages"
# The app scope each resource needs (builder-app names; admin apps carry "Bot Analytics > ...").
SCOPES = {SESSIONS: "Bot Sessions", MESSAGES: "Chat History"}
# The methods each route takes: the sessions routes and the admin messages route only POST; the
# per-bot messages routes also GET (documented, with `userId` required).
POST_ONLY = ("POST",)
GET_OR_POST = ("GET", "POST")


@dataclass(frozen=True)
class Route:
    """A matched API route: ``bot_id`` is None for the admin (account) route.

    Attributes:
        bot_id: The bot of a per-bot route, None on an admin route.
        resource: ``sessions`` or ``messages``.
        version: The Conversation History API version (1 or 2); 1 for sessions.
    """

    bot_id: str | None
    resource: str = SESSIONS
    version: int = 1

    @property
    def rate_bucket(self) -> str:
        """The bucket the route's requests count in: the account's, or the bot's."""
        return ACCOUNT_BUCKET if self.bot_id is None else f"bot:{self.bot_id}"

    @property
    def bots(self) -> frozenset[str] | None:
        """The bots the route covers whatever the app: its bot, or None (all) on the admin route."""
        return None if self.bot_id is None else frozenset({self.bot_id})

    @property
    def scope(self) -> str:
        """The app scope the route needs."""
        return SCOPES[self.resource]

    @property
    def methods(self) -> tuple[str, ...]:
        """The HTTP methods the route takes."""
        return GET_OR_POST if self.resource == MESSAGES and self.bot_id is not None else POST_ONLY

    @property
    def list_key(self) -> str:
        """The answer's field holding the listed records."""
        return self.resource


def match_route(path: str) -> Route | None:
    """Match a URL path to an API route.

    Args:
        path: URL path without query string.

    Returns:
        The route, or None for any other path.
    """
    if path == ADMIN_PATH:
        return Route(None)
    if path == ADMIN_MESSAGES_PATH:
        return Route(None, MESSAGES, 1)
    if not path.startswith(BOT_PATH_PREFIX):
        return None
    suffixes = {BOT_PATH_SUFFIX: (SESSIONS, 1)} | {s: (MESSAGES, v) for s, v in MESSAGES_SUFFIXES.items()}
    for suffix, (resource, version) in suffixes.items():
        if path.endswith(suffix):
            bot_id = unquote(path[len(BOT_PATH_PREFIX) : -len(suffix)])
            if bot_id and "/" not in bot_id:
                return Route(bot_id, resource, version)
    return None
