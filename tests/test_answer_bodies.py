"""An answer's body leaves memory once it is classified, without waiting for Python's cyclic
collection (which the extraction holds back); it is decoded as httpx decodes it, and a body cut
short is retried."""

from __future__ import annotations

import gc
import gzip
import json
import tracemalloc
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from kore_sessions.sandbox import SandboxServer, generate_sessions
from kore_sessions.source import KoreCredentials
from kore_sessions.source.api.client import KoreClient, RetryPolicy
from kore_sessions.source.api.paging import PageRequest
from kore_sessions.source.api.windows import Window
from kore_sessions.source.sessions.endpoint import SESSIONS_ROUTE, get_sessions_page

from .conftest import BOTS, CLIENT_ID, CLIENT_SECRET, FAST_RETRIES, NOW, make_apps

# A page of the API's largest size: its body (~600 KB) dwarfs what a request leaves behind.
PAGE = 1_000
# Pages read with the collector off: held, they would be ten times the bound below.
PAGES_READ = 20
# Memory a read may leave behind, in pages: the last page's parsed records may still be around
# as the measure is taken; twenty held bodies are not.
PAGES_HELD_AT_MOST = 2
# Smallest body that makes the measure mean something (a page of small bodies held would not).
LARGE_BODY_BYTES = 200_000
CREDENTIALS = KoreCredentials(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)


def test_page_bodies_go_once_classified() -> None:
    if tracemalloc.is_tracing():
        pytest.skip("tracemalloc is already tracing (PYTHONTRACEMALLOC): this test starts and stops it")
    sessions = generate_sessions(BOTS[:1], NOW - timedelta(days=1), NOW, 2 * PAGE, seed=3)
    window = Window(NOW - timedelta(days=1), NOW)

    def page(limit: int) -> int:
        """Read the window's first page of `limit` sessions; return the size of its records."""
        answer = get_sessions_page(client, BOTS[0], window, PageRequest(0, None, 0, limit))
        return len(json.dumps(answer.records))

    with SandboxServer(sessions, apps=make_apps(), now=NOW, page_cap=PAGE) as server:
        client = KoreClient(server.url, CREDENTIALS, budget=None)
        try:
            body_bytes = page(PAGE)
            assert body_bytes > LARGE_BODY_BYTES
            gc.collect()
            gc.disable()
            tracemalloc.start()
            try:
                page(1)  # the server done with the large page it sent before
                before, _ = tracemalloc.get_traced_memory()
                for _ in range(PAGES_READ):
                    page(PAGE)
                page(1)  # and with the last one: the server's thread is traced too
                held = tracemalloc.get_traced_memory()[0] - before
            finally:
                tracemalloc.stop()
                gc.enable()
        finally:
            client.close()
    assert held < PAGES_HELD_AT_MOST * body_bytes, (
        f"{held:,} bytes still held after {PAGES_READ} pages of ~{body_bytes:,}"
    )


def test_a_compressed_answer_is_decoded() -> None:
    payload = {"total": 0, "moreAvailable": False, "sessions": [], "note": "compressible " * 1_000}
    body = gzip.compress(json.dumps(payload).encode())

    def gzipped(request: httpx.Request) -> httpx.Response:  # unread, as a network transport's
        return httpx.Response(200, stream=httpx.ByteStream(body), headers={"Content-Encoding": "gzip"})

    transport = httpx.MockTransport(gzipped)
    with KoreClient("http://kore.test", CREDENTIALS, budget=None, transport=transport) as client:
        assert client.post(SESSIONS_ROUTE, BOTS[0], {"skip": 0, "limit": 1}) == payload


class CutShort(httpx.SyncByteStream):
    """A body whose first chunk arrives and whose rest times out."""

    def __init__(self, first: bytes) -> None:
        self.first = first

    def __iter__(self) -> Iterator[bytes]:
        yield self.first
        raise httpx.ReadTimeout("the rest of the body did not come")


def test_a_body_cut_short_is_retried() -> None:
    payload = {"total": 0, "moreAvailable": False, "sessions": []}
    body = json.dumps(payload).encode()
    answers = iter([CutShort(body[:10]), httpx.ByteStream(body)])

    def first_cut_short(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=next(answers))

    transport = httpx.MockTransport(first_cut_short)
    retries = RetryPolicy(**FAST_RETRIES)
    with KoreClient("http://kore.test", CREDENTIALS, retry_policy=retries, transport=transport) as client:
        assert client.post(SESSIONS_ROUTE, BOTS[0], {"skip": 0, "limit": 1}) == payload
        assert (client.stats.requests, client.stats.retries) == (2, 1)
