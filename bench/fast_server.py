"""The sandbox API with listing pages answered from pre-serialized JSON, so the server is not
what the benchmark measures.

The sandbox (`kore_sessions.sandbox.SandboxServer`) builds every answer from scratch: it walks every session
of the window to count its ``total``, derives each session's view and JSON-encodes the page. At
1,000 sessions a page that costs it tens of milliseconds per request on the benchmark's shared
cores, enough to set the pace of a fast client. `FastSandboxServer` answers the same requests
with the same pages (same sessions, order, ``total`` and ``moreAvailable``), but each visible
session is encoded once, up front, and a page is only a join of those bytes. Everything else
(auth, rate limits, faults, the request log, id lookups, filters, a moved clock) goes through
the sandbox unchanged.

The Conversation History API's v2 route (``getMessagesV2``) is answered the same way once
`FastSandboxServer.encode_messages` has run: every message v2 serves at the sandbox's instant is
derived from its session as the sandbox derives it (`conversation`), encoded once, and indexed
by bot and channel, oldest first (``createdOn``, then ``_id``, the sandbox's order). A page is
the same answer the sandbox gives (``total``, ``moreAvailable``, ``icon``, newest first).
Requests with filters (session ids, user, call, ``forward``), GETs and v1 go to the sandbox.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from kore_sessions.sandbox import GeneratedSession, RateLimit, SandboxApp, SandboxServer
from kore_sessions.sandbox.api import parse_body, parse_query
from kore_sessions.sandbox.app import SandboxApi
from kore_sessions.sandbox.conversations import conversation
from kore_sessions.sandbox.messages import Request
from kore_sessions.sandbox.messages_api import ICON_URL, VERSION_LIMITS, MessageQuery, parse_message_query
from kore_sessions.sandbox.routes import MESSAGES, SESSIONS, Route
from kore_sessions.sandbox.server import _Handler  # the sandbox's transport, extended to send raw bytes
from kore_sessions.sandbox.state import SandboxState
from kore_sessions.sandbox.store import SessionStore


@dataclass(frozen=True)
class Encoded:
    """A JSON answer already serialized."""

    data: bytes


class PageIndex:
    """Per bot, the sessions visible at one instant, oldest first, each already encoded."""

    def __init__(self, store: SessionStore, now: datetime, legacy: bool) -> None:
        """Encode every session the API shows at ``now`` (the slow part, done once)."""
        self.store, self.now, self.legacy = store, now, legacy
        self.starts: dict[str, list[datetime]] = {}
        self.encoded: dict[str, list[bytes]] = {}
        for bot in store.bot_ids:
            sessions = store.everything(frozenset({bot}))[::-1]  # oldest first
            views = [(session.start, session.view(now, legacy=legacy)) for session in sessions]
            visible = [(start, view) for start, view in views if view is not None]
            self.starts[bot] = [start for start, _ in visible]
            self.encoded[bot] = [orjson.dumps(view) for _, view in visible]

    def serves(self, state: SandboxState) -> bool:
        """Whether the index still shows what the sandbox would (same sessions, clock, shape)."""
        return state.store is self.store and state.now == self.now and state.legacy == self.legacy

    def page(self, bot: str, date_from: datetime, date_to: datetime, skip: int, size: int) -> Encoded:
        """Sessions with ``date_from <= start <= date_to``, newest first, ``skip`` then ``size``."""
        starts, encoded = self.starts.get(bot, []), self.encoded.get(bot, [])
        low, high = bisect_left(starts, date_from), bisect_right(starts, date_to)
        total = high - low
        last = high - skip  # newest first: the page ends (exclusive) here, counted from the oldest
        first = max(low, last - size)
        chunk = encoded[first:last][::-1] if last > low else []
        more = "true" if skip + len(chunk) < total else "false"
        head = f'{{"total":{total},"moreAvailable":{more},"sessions":['.encode()
        return Encoded(head + b",".join(chunk) + b"]}")


# The bot logo URL every messages answer carries, as JSON.
ICON_JSON = orjson.dumps(ICON_URL).decode()


class MessageIndex:
    """Per bot and channel, the messages v2 serves at one instant, oldest first, each encoded."""

    VERSION = 2

    def __init__(self, store: SessionStore, now: datetime) -> None:
        """Derive, encode and index every message of the store's sessions (the slow part, once)."""
        self.store, self.now = store, now
        grouped: dict[tuple[str, str], list[tuple[datetime, str, bytes]]] = {}
        for session in store.by_id.values():
            for message in conversation(session):
                if message.is_visible(now) and message.in_version(self.VERSION):
                    entry = (message.created, message.message_id, orjson.dumps(message.view()))
                    grouped.setdefault((message.bot_id, message.channel), []).append(entry)
        self.times: dict[tuple[str, str], list[datetime]] = {}
        self.encoded: dict[tuple[str, str], list[bytes]] = {}
        for key, entries in grouped.items():
            entries.sort(key=lambda entry: (entry[0], entry[1]))
            self.times[key] = [created for created, _, _ in entries]
            self.encoded[key] = [data for _, _, data in entries]

    @property
    def messages(self) -> int:
        """Messages indexed, every bot and channel."""
        return sum(len(times) for times in self.times.values())

    def channels(self, bot: str) -> list[str]:
        """The channels a bot has messages on."""
        return sorted(channel for key_bot, channel in self.times if key_bot == bot)

    def count(self, bot: str, channel: str, date_from: datetime, date_to: datetime) -> int:
        """Messages of a bot and channel with ``date_from <= createdOn <= date_to``: a window's ``total``."""
        low, high = self._span(bot, channel, date_from, date_to)
        return high - low

    def serves(self, state: SandboxState) -> bool:
        """Whether the index still shows what the sandbox would (same sessions, same clock)."""
        return state.store is self.store and state.now == self.now

    def page(self, bot: str, query: MessageQuery, size: int) -> Encoded:
        """A window's messages of one channel, newest first, ``skip`` then ``size``."""
        encoded = self.encoded.get((bot, query.channel), [])
        low, high = self._span(bot, query.channel, query.date_from, query.date_to)
        total, last = high - low, high - query.skip  # newest first: the page ends (exclusive) at last
        chunk = encoded[max(low, last - size) : last][::-1] if last > low else []
        more = "true" if query.skip + len(chunk) < total else "false"
        head = f'{{"total":{total},"moreAvailable":{more},"icon":{ICON_JSON},"messages":['
        return Encoded(head.encode() + b",".join(chunk) + b"]}")

    def _span(self, bot: str, channel: str, date_from: datetime, date_to: datetime) -> tuple[int, int]:
        times = self.times.get((bot, channel), [])
        return bisect_left(times, date_from), bisect_right(times, date_to)


class FastApi(SandboxApi):
    """The sandbox application, answering plain listing requests of one bot from a `PageIndex`."""

    def __init__(
        self, state: SandboxState, apps: Iterable[SandboxApp], rate_limit: RateLimit | tuple[int, int] | None
    ) -> None:
        """The sandbox application over ``state``, with its sessions encoded now."""
        super().__init__(state, apps, rate_limit)
        self.index = PageIndex(state.store, state.now, state.legacy)
        self.messages: MessageIndex | None = None

    def _answer(self, route: Route, bots: frozenset[str] | None, request: Request) -> Any:
        if route.resource == MESSAGES:
            return self._answer_messages_fast(route, bots, request)
        if route.resource != SESSIONS:
            return super()._answer(route, bots, request)
        state = self.state
        query = parse_query(request.query, parse_body(request.body), state.now)
        plain = (
            query.session_ids is None
            and query.user_id is None
            and query.session_type is None
            and query.containment is None
            and query.call_id is None
        )
        if plain and bots is not None and len(bots) == 1 and self.index.serves(state):
            size = min(query.limit, state.page_cap)
            return self.index.page(next(iter(bots)), query.date_from, query.date_to, query.skip, size)
        return super()._answer(route, bots, request)

    def _answer_messages_fast(self, route: Route, bots: frozenset[str] | None, request: Request) -> Any:
        """A plain v2 POST of one bot from the `MessageIndex`; anything else as the sandbox does."""
        index, state = self.messages, self.state
        if index is None or route.version != MessageIndex.VERSION or request.method != "POST":
            return super()._answer(route, bots, request)
        query = parse_message_query(parse_body(request.body), state.now, from_query=False)
        plain = query.session_ids is None and query.user_id is None and query.call_id is None
        if plain and not query.forward and bots is not None and len(bots) == 1 and index.serves(state):
            size = min(query.limit, VERSION_LIMITS[MessageIndex.VERSION], state.chat.page_cap)
            return index.page(next(iter(bots)), query, size)
        return super()._answer(route, bots, request)


class _FastHandler(_Handler):
    """The sandbox's handler, sending pre-serialized answers as they are."""

    def _encode(self, payload: Any) -> tuple[bytes, str]:
        if isinstance(payload, Encoded):
            return payload.data, "application/json"
        return super()._encode(payload)


class FastSandboxServer(SandboxServer):
    """`SandboxServer` with pre-serialized listing pages (same constructor)."""

    def __init__(
        self,
        sessions: Iterable[GeneratedSession],
        apps: Iterable[SandboxApp] = (),
        *,
        rate_limit: RateLimit | tuple[int, int] | None = None,
        **settings: Any,
    ) -> None:
        """As `SandboxServer`; every visible session is encoded here, before any request."""
        apps = list(apps)
        super().__init__(sessions, apps, rate_limit=rate_limit, **settings)
        self.api = FastApi(self, apps, rate_limit)

    def encode_messages(self) -> MessageIndex:
        """Derive and encode the messages v2 serves now, and answer plain getMessagesV2 POSTs
        from them (slow: about 40 s a million messages); returns the index."""
        api = self.api
        assert isinstance(api, FastApi)
        api.messages = MessageIndex(self.store, self.now)
        return api.messages

    def start(self) -> FastSandboxServer:
        """Serve as the sandbox does, through the handler that sends pre-serialized pages."""
        super().start()
        if self._httpd is not None:
            self._httpd.RequestHandlerClass = _FastHandler
        return self
