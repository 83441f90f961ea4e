"""A real local HTTP server imitating the Kore.ai Sessions History API.

``SandboxServer`` runs a standard-library ``ThreadingHTTPServer`` in a background
thread. Its clock is fixed and moves only when told (``set_now``/``advance``), faults
can be queued or drawn at random (deterministically), and every request is logged.

This module is the HTTP transport only: it reads a request, hands it to
:meth:`kore_sessions.sandbox.app.SandboxApi.handle` and writes the
:class:`~kore_sessions.sandbox.messages.Outcome` back.
What the sandbox holds and a test may change is :class:`~kore_sessions.sandbox.state.SandboxState`.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from kore_sessions.sandbox.app import SandboxApi
from kore_sessions.sandbox.auth import SandboxApp
from kore_sessions.sandbox.data import GeneratedSession
from kore_sessions.sandbox.faults import RateLimit
from kore_sessions.sandbox.messages import Outcome, Request
from kore_sessions.sandbox.state import DEFAULT_FAULT_LATENCY, SandboxState

# How often (seconds) the serving thread looks whether it was told to stop.
POLL_INTERVAL = 0.05
# Seconds `stop` waits for the serving thread to end.
STOP_TIMEOUT = 5


class SandboxServer(SandboxState):
    """The Kore.ai Sessions History and Conversation History APIs on ``http://127.0.0.1:<port>``.

    Use as a context manager (or call :meth:`start` and :meth:`stop`). The clock, sessions,
    faults and request log are those of :class:`~kore_sessions.sandbox.state.SandboxState`; ``api`` decides
    the answers; this class adds the HTTP transport.
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
        message_page_cap: int | None = None,
    ) -> None:
        """Configure the server (it listens only once started). The sessions, clock, page caps,
        shape, faults and extra bots are `SandboxState`'s (see its arguments).

        Args:
            apps: Registered API apps.
            rate_limit: Rolling limits per bot (bot route) and per account (admin route).
            port: TCP port; 0 picks a free one.
            host: Interface to bind.
        """
        super().__init__(
            sessions,
            now,
            page_cap,
            legacy,
            retry_after,
            fault_latency,
            bot_ids,
            message_page_cap=message_page_cap,
        )
        self.api = SandboxApi(self, apps, rate_limit)
        self._address = (host, port)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> SandboxServer:
        """Bind and serve in a background thread; returns self."""
        if self._httpd is not None:
            return self
        self._httpd = _HTTPServer(self._address, self.api)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": POLL_INTERVAL}, daemon=True
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
            self._thread.join(timeout=STOP_TIMEOUT)

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


class _HTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its sandbox application and its open connections."""

    # Request threads never keep the process alive, and closing does not wait for them.
    daemon_threads = True
    block_on_close = False
    # Pending connections the socket accepts: enough for parallel clients of the benchmark.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], api: SandboxApi) -> None:
        self.api = api
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
    """Reads one request, asks the sandbox application for the outcome, writes it (or not)."""

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
        body = self._read_body()
        split = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(split.query, True).items()}
        request = Request(self.command, split.path, query, body, self.headers.get("auth"), arrived)
        self._write(self.server.api.handle(request))

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

    def _write(self, outcome: Outcome) -> None:
        if outcome.dropped:
            self.close_connection = True
            return
        data, content_type = self._encode(outcome.payload)
        self.send_response(outcome.status)
        self.send_header("Content-Type", f"{content_type}; charset=utf-8")
        for name, value in outcome.headers.items():
            self.send_header(name, value)
        if outcome.truncated:
            self._write_truncated(data, with_length=outcome.full_length)
            return
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _encode(self, payload: Any) -> tuple[bytes, str]:
        """The body of an answer and its content type: text as an HTML page, the rest as JSON."""
        if isinstance(payload, str):
            return payload.encode(), "text/html"
        return json.dumps(payload).encode(), "application/json"

    def _write_truncated(self, data: bytes, with_length: bool) -> None:
        if with_length:
            self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.close_connection = True
