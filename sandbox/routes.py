"""The API's routes: the account (admin) route and the per-bot route, by URL path."""

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


@dataclass(frozen=True)
class Route:
    """A matched API route: ``bot_id`` is None for the admin (account) route."""

    bot_id: str | None

    @property
    def rate_bucket(self) -> str:
        """The bucket the route's requests count in: the account's, or the bot's."""
        return ACCOUNT_BUCKET if self.bot_id is None else f"bot:{self.bot_id}"

    @property
    def bots(self) -> frozenset[str] | None:
        """The bots the route covers whatever the app: its bot, or None (all) on the admin route."""
        return None if self.bot_id is None else frozenset({self.bot_id})


def match_route(path: str) -> Route | None:
    """Match a URL path to an API route.

    Args:
        path: URL path without query string.

    Returns:
        The route, or None for any other path.
    """
    if path == ADMIN_PATH:
        return Route(None)
    if path.startswith(BOT_PATH_PREFIX) and path.endswith(BOT_PATH_SUFFIX):
        bot_id = unquote(path[len(BOT_PATH_PREFIX) : -len(BOT_PATH_SUFFIX)])
        if bot_id and "/" not in bot_id:
            return Route(bot_id)
    return None
