"""An answer's body leaves memory once it is classified, without waiting for Python's cyclic
collection (which the extraction holds back), and is decoded as httpx decodes it."""

from __future__ import annotations

import gc
import gzip
import json
import tracemalloc
from datetime import timedelta

import httpx
from kore_sessions.sandbox import SandboxServer, generate_sessions
from kore_sessions.source import KoreCredentials
from kore_sessions.source.api.client import KoreClient
from kore_sessions.source.api.paging import PageRequest
from kore_sessions.source.api.windows import Window
from kore_sessions.source.sessions.endpoint import SESSIONS_ROUTE, get_sessions_page

from .conftest import BOTS, CLIENT_ID, CLIENT_SECRET, NOW, make_apps

PAGE = 1_000
PAGES_READ = 20


def test_page_bodies_go_once_classified() -> None:
    sessions = generate_sessions(BOTS[:1], NOW - timedelta(days=1), NOW, 2 * PAGE, seed=3)
    window = Window(NOW - timedelta(days=1), NOW)
    credentials = KoreCredentials(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    with SandboxServer(sessions, apps=make_apps(), now=NOW, page_cap=PAGE) as server:
        client = KoreClient(server.url, credentials, budget=None)
        try:
            first = get_sessions_page(client, BOTS[0], window, PageRequest(0, None, 0, PAGE))
            body_bytes = len(json.dumps(first.records))
            assert len(first.records) == PAGE and first.more_available and body_bytes > 200_000
            gc.collect()
            gc.disable()
            tracemalloc.start()
            try:
                before, _ = tracemalloc.get_traced_memory()
                for _ in range(PAGES_READ):
                    get_sessions_page(client, BOTS[0], window, PageRequest(0, None, 0, PAGE))
                held = tracemalloc.get_traced_memory()[0] - before
            finally:
                tracemalloc.stop()
                gc.enable()
        finally:
            client.close()
    assert held < 2 * body_bytes, f"{held:,} bytes still held after {PAGES_READ} pages of ~{body_bytes:,}"


def test_a_compressed_answer_is_decoded() -> None:
    payload = {"total": 0, "moreAvailable": False, "sessions": [], "note": "é" * 1_000}
    body = gzip.compress(json.dumps(payload).encode())

    def gzipped(request: httpx.Request) -> httpx.Response:  # unread, as a network transport's
        return httpx.Response(200, stream=httpx.ByteStream(body), headers={"Content-Encoding": "gzip"})

    credentials = KoreCredentials(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    transport = httpx.MockTransport(gzipped)
    with KoreClient("http://kore.test", credentials, budget=None, transport=transport) as client:
        assert client.post(SESSIONS_ROUTE, BOTS[0], {"skip": 0, "limit": 1}) == payload
