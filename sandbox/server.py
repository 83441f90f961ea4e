"""A real local HTTP server imitating the Kore.ai Sessions History API.

``SandboxServer`` runs a standard-library ``ThreadingHTTPServer`` in a background
thread. Its clock is fixed and moves only when told (``set_now``/``advance``), faults
can be queued or drawn at random (deterministically), and every request is logged.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from sandbox.api import SessionStore, list_sessions, lookup_sessions, parse_body, parse_query
from sandbox.auth import Authenticator, SandboxApp
from sandbox.data import GeneratedSession, to_utc_ms
from sandbox.errors import RATE_LIMIT_MESSAGE, ApiError, error_body
from sandbox.faults import FaultPlan, RateLimit, RateLimiter

ADMIN_PATH = "/api/public/getSessions"
BOT_PATH_PREFIX = "/api/public/bot/"
BOT_PATH_SUFFIX = "/getSessions"
ACCOUNT_BUCKET = "account"
DEFAULT_FAULT_LATENCY = 1.5
ADMIN_APP_NEEDED = "This API needs a Bot Admin Console app with the 'Bot Analytics > Bot Sessions' scope"
BOT_APP_NEEDED = "This API needs a bot builder app with the 'Bot Sessions' scope"
SCOPE_NOT_PUBLISHED = (
    "The 'Bot Sessions' API scope of this app is not published; publish the app scope and retry"
)
GATEWAY_PAGES = {
    502: "502 Bad Gateway",
    503: "503 Service Temporarily Unavailable",
}


@dataclass(frozen=True)
class RequestRecord:
    """One request the sandbox received.

    Attributes:
        at: Wall-clock time (UTC) the request arrived.
        method: HTTP method.
        path: URL path without the query string.
        query: Query parameters (first value of each).
        body: The JSON body if it was a JSON object, else None.
        status: HTTP status answered; None when the connection was dropped.
        fault: The injected fault kind, if any.
        bot_id: The bot of the per-bot route, None on the admin route.
        claims: Verified JWT claims, None if the request did not pass auth.
        sandbox_now: The sandbox clock when the request was handled.
    """

    at: datetime
    method: str
    path: str
    query: dict[str, str]
    body: dict[str, Any] | None
    status: int | None
    fault: str | None
    bot_id: str | None
    claims: dict[str, Any] | None
    sandbox_now: datetime | None = None


@dataclass
class _Outcome:
    """What to send back for one request."""

    status: int
    payload: Any
    headers: dict[str, str] = field(default_factory=dict)
    fault: str | None = None
    claims: dict[str, Any] | None = None


@dataclass(frozen=True)
class _Route:
    """A matched API route: ``bot_id`` is None for the admin (account) route."""

    bot_id: str | None


def match_route(path: str) -> _Route | None:
    """Match a URL path to an API route.

    Args:
        path: URL path without query string.

    Returns:
        The route, or None for any other path.
    """
    if path == ADMIN_PATH:
        return _Route(None)
    if path.startswith(BOT_PATH_PREFIX) and path.endswith(BOT_PATH_SUFFIX):
        bot_id = unquote(path[len(BOT_PATH_PREFIX) : -len(BOT_PATH_SUFFIX)])
        if bot_id and "/" not in bot_id:
            return _Route(bot_id)
    return None


class SandboxServer:
    """The Kore.ai Sessions History API on ``http://127.0.0.1:<port>``.

    Use as a context manager (or call :meth:`start` and :meth:`stop`).
    """

    def __init__(
        self,
        sessions: Iterable[GeneratedSession],
        apps: Iterable[SandboxApp] = (),
        now: datetime | None = None,
        page_cap: int = 100,
        legacy: bool = False,
        rate_limit: RateLimit | tuple[int, int] | None = None,
        retry_after: int | None = None,
        port: int = 0,
        *,
        host: str = "127.0.0.1",
        fault_latency: float = DEFAULT_FAULT_LATENCY,
        bot_ids: Iterable[str] = (),
    ) -> None:
        """Configure the server (it listens only once started).

        Args:
            sessions: The account's sessions (final truth).
            apps: Registered API apps.
            now: Initial sandbox time (naive means UTC); default: the wall clock.
            page_cap: Largest page returned whatever ``limit`` asks.
            legacy: Serve the pre-9.0 session shape.
            rate_limit: Rolling limits per bot (bot route) and per account (admin route).
            retry_after: Seconds for a ``Retry-After`` header on 429 answers; None: none.
            port: TCP port; 0 picks a free one.
            host: Interface to bind.
            fault_latency: Seconds the ``latency`` fault waits before answering.
            bot_ids: Extra bots that exist without sessions.
        """
        if page_cap < 1:
            raise ValueError("page_cap must be >= 1")
        self.store = SessionStore(sessions, bot_ids)
        self.page_cap = page_cap
        self.legacy = legacy
        self.retry_after = retry_after
        self.fault_latency = fault_latency
        self._auth = Authenticator(list(apps))
        limit = RateLimit.coerce(rate_limit)
        self._limiter = RateLimiter(limit) if limit else None
        self._faults = FaultPlan()
        self._latency = 0.0
        self._now = to_utc_ms(now or datetime.now(UTC))
        self._records: list[RequestRecord] = []
        self._lock = threading.Lock()
        self._address = (host, port)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle -------------------------------------------------------------

    def start(self) -> SandboxServer:
        """Bind and serve in a background thread; returns self."""
        if self._httpd is not None:
            return self
        self._httpd = _HTTPServer(self._address, self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> SandboxServer:
        """Start the server."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server."""
        self.stop()

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321``."""
        if self._httpd is None:
            raise RuntimeError("the sandbox server is not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    # clock, faults, latency ------------------------------------------------

    @property
    def now(self) -> datetime:
        """The sandbox time (aware UTC, ms precision)."""
        with self._lock:
            return self._now

    def set_now(self, now: datetime) -> None:
        """Set the sandbox time.

        Args:
            now: The new time (naive means UTC).
        """
        with self._lock:
            self._now = to_utc_ms(now)

    def advance(self, delta: timedelta) -> datetime:
        """Move the sandbox time.

        Args:
            delta: How far to move (may be negative).

        Returns:
            The new sandbox time.
        """
        with self._lock:
            self._now = to_utc_ms(self._now + delta)
            return self._now

    def inject(self, kind: str, count: int = 1) -> None:
        """Queue fault ``kind`` for the next ``count`` requests to the API routes.

        Args:
            kind: ``429``, ``500``, ``502``, ``503``, ``drop``, ``truncate`` (no
                Content-Length), ``truncate_length`` (full Content-Length),
                ``bad_shape`` (200, `sessions` not a list) or
                ``latency`` (normal answer after ``fault_latency`` seconds).
            count: How many consecutive API requests get it.
        """
        self._faults.inject(kind, count)

    def set_fault_rates(self, rates: Mapping[str, float], seed: int = 0) -> None:
        """Fault each API request at random with these probabilities; ``{}`` turns off.

        Args:
            rates: ``{kind: probability}``, summing to at most 1.
            seed: Seed, so the sequence of faults is deterministic.
        """
        self._faults.set_rates(rates, seed)

    def clear_faults(self) -> None:
        """Drop queued faults and random fault rates."""
        self._faults.clear()

    def set_latency(self, seconds: float) -> None:
        """Delay every API answer.

        Args:
            seconds: The delay; 0 turns it off.
        """
        with self._lock:
            self._latency = max(0.0, float(seconds))

    # introspection ---------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """A copy of the request log, oldest first."""
        with self._lock:
            return list(self._records)

    def clear_requests(self) -> None:
        """Empty the request log."""
        with self._lock:
            self._records.clear()

    @property
    def bot_ids(self) -> list[str]:
        """Every bot of the account."""
        return self.store.bot_ids

    def remove_sessions(self, session_ids: Iterable[str]) -> None:
        """Delete sessions from the account, as the platform does (retention, erasure)."""
        gone = set(session_ids)
        with self._lock:
            kept = [s for s in self.store.by_id.values() if s.session_id not in gone]
            self.store = SessionStore(kept, self.store.bot_ids)

    def visible_sessions(self, bot_id: str | None = None) -> list[dict[str, Any]]:
        """Every session the API shows now (newest first), optionally for one bot.

        Args:
            bot_id: Only this bot's sessions; None for all.

        Returns:
            The session views, as listing requests would return them.
        """
        now = self.now
        bots = None if bot_id is None else frozenset({bot_id})
        views = (s.view(now, legacy=self.legacy) for s in self.store.everything(bots))
        return [view for view in views if view is not None]

    # request handling (called from the HTTP threads) -----------------------

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)

    def _delay(self, fault: str | None) -> float:
        with self._lock:
            delay = self._latency
        return delay + (self.fault_latency if fault == "latency" else 0.0)

    def _dispatch(
        self, method: str, route: _Route, params: dict[str, str], raw: bytes, token: str | None
    ) -> _Outcome:
        if method != "POST":
            error = ApiError(405, f"Method {method} is not allowed; use POST", 405)
            return _Outcome(error.status, error.body, {"Allow": "POST"})
        fault = self._faults.next_fault()
        if fault is not None and fault != "latency":
            return self._fault_outcome(fault, route, params, raw)
        claims: dict[str, Any] | None = None
        try:
            app, claims = self._auth.authenticate(token)
            bots = self._authorize(app, route)
            self._check_rate(route)
            return _Outcome(200, self._answer(bots, params, raw), fault=fault, claims=claims)
        except ApiError as error:
            return _Outcome(error.status, error.body, error.headers, fault, claims)

    def _authorize(self, app: SandboxApp, route: _Route) -> frozenset[str] | None:
        bots = self._route_bots(app, route)
        if not app.scope_published:
            raise ApiError(403, SCOPE_NOT_PUBLISHED, "ScopeNotPublished")
        return bots

    def _route_bots(self, app: SandboxApp, route: _Route) -> frozenset[str] | None:
        if route.bot_id is None:
            if app.kind != "admin":
                raise ApiError(403, ADMIN_APP_NEEDED, "Forbidden")
            return None if app.bot_ids is None else frozenset(app.bot_ids)
        if app.kind != "bot":
            raise ApiError(403, BOT_APP_NEEDED, "Forbidden")
        if not self.store.has_bot(route.bot_id):
            raise ApiError(404, f"Bot {route.bot_id} not found", "BotNotFound")
        if not app.may_read(route.bot_id):
            raise ApiError(403, "The app has no access to this bot", "Forbidden")
        return frozenset({route.bot_id})

    def _check_rate(self, route: _Route) -> None:
        bucket = ACCOUNT_BUCKET if route.bot_id is None else f"bot:{route.bot_id}"
        if self._limiter is not None and not self._limiter.admit(bucket):
            raise self._rate_limit_error()

    def _rate_limit_error(self) -> ApiError:
        headers = {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}
        return ApiError(429, RATE_LIMIT_MESSAGE, 429, headers)

    def _answer(self, bots: frozenset[str] | None, params: dict[str, str], raw: bytes) -> Any:
        now = self.now
        query = parse_query(params, parse_body(raw), now)
        if query.session_ids is not None:
            return lookup_sessions(self.store, bots, query.session_ids, now, self.legacy)
        return list_sessions(self.store, bots, query, now, self.page_cap, self.legacy)

    def _fault_outcome(self, fault: str, route: _Route, params: dict[str, str], raw: bytes) -> _Outcome:
        if fault == "400":
            return _Outcome(400, error_body(BAD_REQUEST_FAULT, 400), fault=fault)
        if fault == "429":
            error = self._rate_limit_error()
            return _Outcome(429, error.body, error.headers, fault)
        if fault == "bad_shape":
            return _Outcome(200, {"total": 1, "moreAvailable": False, "sessions": {"0": {}}}, fault=fault)
        if fault in ("500", "502", "503"):
            status = int(fault)
            page = GATEWAY_PAGES.get(status)
            payload = error_body("Internal Server Error", 500) if page is None else _html(page)
            return _Outcome(status, payload, fault=fault)
        # drop and truncate: the body a successful answer would have had.
        bots = None if route.bot_id is None else frozenset({route.bot_id})
        try:
            payload = self._answer(bots, params, raw)
        except ApiError as error:
            payload = error.body
        return _Outcome(200, payload, fault=fault)


# Message of the injected 400 answer.
BAD_REQUEST_FAULT = "Invalid request parameters (injected by the sandbox)"


def _html(title: str) -> str:
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    )


class _HTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its sandbox and its open connections."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], sandbox: SandboxServer) -> None:
        self.sandbox = sandbox
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, connection: socket.socket, open_: bool) -> None:
        """Remember or forget an open client connection."""
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore clients that went away; report anything else as usual."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        """Shut every open client connection (idle keep-alive ones included)."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    """Reads one request, asks the sandbox for the outcome, writes it (or not)."""

    protocol_version = "HTTP/1.1"
    server_version = "kore-sandbox/1.0"
    sys_version = ""
    server: _HTTPServer

    def setup(self) -> None:
        """Track the connection so the server can close it on stop."""
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        """Forget the connection."""
        self.server.track(self.connection, False)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: the sandbox keeps its own request log."""

    def do_POST(self) -> None:
        """Handle POST."""
        self._handle()

    def do_GET(self) -> None:
        """Handle GET (405 on the API routes, 404 elsewhere)."""
        self._handle()

    do_PUT = do_GET
    do_PATCH = do_GET
    do_DELETE = do_GET

    def _handle(self) -> None:
        arrived = datetime.now(UTC)
        raw = self._read_body()
        split = urlsplit(self.path)
        params = {key: values[0] for key, values in parse_qs(split.query, True).items()}
        route = match_route(split.path)
        sandbox = self.server.sandbox
        if route is None:
            outcome = _Outcome(404, error_body(f"Cannot find {split.path}", 404))
            delay = 0.0
        else:
            outcome = self._safe_dispatch(route, params, raw)
            delay = sandbox._delay(outcome.fault)
        if delay:
            time.sleep(delay)
        status = None if outcome.fault == "drop" else outcome.status
        sandbox._record(
            RequestRecord(
                at=arrived,
                method=self.command,
                path=split.path,
                query=params,
                body=_json_object(raw),
                status=status,
                fault=outcome.fault,
                bot_id=route.bot_id if route else None,
                claims=outcome.claims,
                sandbox_now=sandbox.now,
            )
        )
        self._write(outcome)

    def _safe_dispatch(self, route: _Route, params: dict[str, str], raw: bytes) -> _Outcome:
        try:
            token = self.headers.get("auth")
            return self.server.sandbox._dispatch(self.command, route, params, raw, token)
        except Exception as exc:  # a sandbox bug must still answer, not hang the client
            return _Outcome(500, error_body(f"Sandbox error: {exc!r}", 500))

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes:
        chunks = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _write(self, outcome: _Outcome) -> None:
        if outcome.fault == "drop":
            self.close_connection = True
            return
        if isinstance(outcome.payload, str):
            data, content_type = outcome.payload.encode(), "text/html"
        else:
            data, content_type = json.dumps(outcome.payload).encode(), "application/json"
        self.send_response(outcome.status)
        self.send_header("Content-Type", f"{content_type}; charset=utf-8")
        for name, value in outcome.headers.items():
            self.send_header(name, value)
        if outcome.fault in ("truncate", "truncate_length"):
            self._write_truncated(data, with_length=outcome.fault == "truncate_length")
            return
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _write_truncated(self, data: bytes, with_length: bool) -> None:
        if with_length:
            self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.close_connection = True


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        body = json.loads(raw) if raw.strip() else None
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
