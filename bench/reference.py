"""The floor: plain httpx paging with the pipeline's concurrency, and one bulk insert into DuckDB.

It does what any loader of the API must (sign each request, page every window, keep each session
once) and nothing else: no retries, no state, no tags, no merge; flat session columns only. It
pages as the pipeline does once it knows the server's page cap: a window's first page, then the
rest of the window's pages at once, planned from its ``total``; bots in parallel, at most
``max_in_flight`` requests a bot and ``workers`` in all (the pipeline's pool). Bodies are parsed
with orjson, as the pipeline does (or the standard library's json, with ``parser="json"``: the
floor of the independent check, 4 workers, that part l measures the command against). Its time
and memory are the yardstick of the pipeline's.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import duckdb
import httpx
import jwt
import orjson
import pyarrow as pa

from bench.jobs import CLIENT_ID, CLIENT_SECRET, Job

# How a job's pages are parsed (`Job.parser`).
PARSERS: dict[str, Callable[[bytes], Any]] = {"orjson": orjson.loads, "json": json.loads}
# API field -> column, in table order.
FIELDS = {
    "sessionId": "session_id",
    "botId": "bot_id",
    "channel": "channel",
    "userId": "user_id",
    "start_time": "start_time",
    "end_time": "end_time",
    "sessionType": "session_type",
    "containmentType": "containment_type",
    "isDeveloper": "is_developer",
    "sessionStatus": "session_status",
    "noOfMessagesExchanged": "no_of_messages_exchanged",
    "noOfTasksExecuted": "no_of_tasks_executed",
}
TYPES = {
    "is_developer": pa.bool_(),
    "no_of_messages_exchanged": pa.int64(),
    "no_of_tasks_executed": pa.int64(),
}
SCHEMA = pa.schema([(column, TYPES.get(column, pa.string())) for column in FIELDS.values()])
CREATE_TABLE = """
CREATE TABLE sessions AS
SELECT session_id, bot_id, channel, user_id,
       CAST(start_time AS TIMESTAMPTZ) AS start_time, CAST(end_time AS TIMESTAMPTZ) AS end_time,
       session_type, containment_type, is_developer, session_status,
       no_of_messages_exchanged, no_of_tasks_executed
FROM arrow_tbl
"""

Window = tuple[str, str, str, str | None]
# What a page's kept sessions are turned into: flat Arrow columns (the floor), or anything else.
Shaped = TypeVar("Shaped")
Shape = Callable[[list[dict[str, Any]]], Shaped]


@dataclass(frozen=True)
class Page:
    """One request of the floor: a page of a window."""

    window: Window
    skip: int


@dataclass(frozen=True)
class Answer(Generic[Shaped]):
    """What one page gave: its kept sessions shaped, the window's total and the page's size."""

    kept: Shaped
    total: int
    size: int


def run_reference(job: Job) -> dict[str, Any]:
    """Fetch every window of the job and insert all sessions at once.

    Args:
        job: The reference job (``windows`` set).

    Returns:
        Seconds of the fetch, of the insert and in all, requests sent and rows loaded.
    """
    started, cpu = time.perf_counter(), time.process_time()
    batches, requests = fetch_all(job, to_batch)
    fetched, fetch_cpu = time.perf_counter(), time.process_time() - cpu
    table = pa.Table.from_batches(batches, schema=SCHEMA)
    insert(job, table)
    done = time.perf_counter()
    return {
        "seconds": done - started,
        "cpu_seconds": time.process_time() - cpu,
        "fetch_cpu_seconds": fetch_cpu,  # paging and parsing alone, without the insert
        "fetch_seconds": fetched - started,
        "insert_seconds": done - fetched,
        "requests": requests,
        "sessions": table.num_rows,
    }


def fetch_all(job: Job, shape: Shape[Shaped]) -> tuple[list[Shaped], int]:
    """Every page of every window: bots in parallel, ``max_in_flight`` a bot, ``workers`` in all.

    Args:
        job: The job (``windows`` set).
        shape: Turns the sessions a page keeps into what is returned for it.

    Returns:
        Each page's kept sessions, shaped, and the number of requests sent.
    """
    queues: dict[str, deque[Page]] = {bot: deque() for bot in job.bots}
    for window in job.windows:
        queues[window[0]].append(Page(window, 0))
    running: dict[Future[Answer[Shaped]], Page] = {}
    pages: list[Shaped] = []
    with httpx.Client(base_url=job.host, timeout=120) as client, ThreadPoolExecutor(job.workers) as pool:
        fetch: Callable[[Page], Answer[Shaped]] = lambda page: fetch_page(client, job, page, shape)  # noqa: E731
        while True:
            start_what_fits(pool, fetch, queues, running, job)
            if not running:
                return pages, len(pages)
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in done:
                page, answer = running.pop(future), future.result()
                pages.append(answer.kept)
                if page.skip == 0 and answer.size:
                    rest = range(answer.size, answer.total, answer.size)
                    queues[page.window[0]].extend(Page(page.window, skip) for skip in rest)


def start_what_fits(
    pool: ThreadPoolExecutor,
    fetch: Callable[[Page], Answer[Any]],
    queues: dict[str, deque[Page]],
    running: dict[Future[Answer[Any]], Page],
    job: Job,
) -> None:
    """Start queued pages while their bot has fewer than ``max_in_flight`` running."""
    busy: dict[str, int] = {}
    for page in running.values():
        busy[page.window[0]] = busy.get(page.window[0], 0) + 1
    for bot, queue in queues.items():
        while queue and busy.get(bot, 0) < job.max_in_flight:
            page = queue.popleft()
            running[pool.submit(fetch, page)] = page
            busy[bot] = busy.get(bot, 0) + 1


def fetch_page(client: httpx.Client, job: Job, page: Page, shape: Shape[Shaped]) -> Answer[Shaped]:
    """One page, its sessions kept when the window owns them, shaped."""
    bot, date_from, date_to, owned_after = page.window
    body = {"dateFrom": date_from, "dateTo": date_to, "skip": page.skip, "limit": job.page_size}
    response = client.post(f"/api/public/bot/{bot}/getSessions", json=body, headers={"auth": token()})
    response.raise_for_status()
    answer = PARSERS[job.parser](response.content)
    sessions = answer["sessions"]
    kept = [s for s in sessions if owned_after is None or s["start_time"] > owned_after]  # same text format
    return Answer(shape(kept), int(answer["total"]), len(sessions))


def to_batch(kept: list[dict[str, Any]]) -> pa.RecordBatch:
    """Flat columns of a page's kept sessions."""
    columns = {column: [s.get(name) for s in kept] for name, column in FIELDS.items()}
    return pa.RecordBatch.from_pydict(columns, schema=SCHEMA)


def token() -> str:
    """A fresh JWT for the ``auth`` header."""
    now = int(time.time())
    claims = {"appId": CLIENT_ID, "sub": "bench", "jti": uuid.uuid4().hex, "iat": now, "exp": now + 300}
    return jwt.encode(claims, CLIENT_SECRET, algorithm="HS256")


def insert(job: Job, arrow_tbl: pa.Table) -> None:
    """One bulk insert of the Arrow table."""
    with duckdb.connect(str(job.duckdb_path)) as connection:
        connection.register("arrow_tbl", arrow_tbl)
        connection.execute(CREATE_TABLE)


def count_rows(connection: duckdb.DuckDBPyConnection, table: str) -> tuple[int, int]:
    """Rows and distinct session ids of a table."""
    row = connection.execute(f"SELECT COUNT(*), COUNT(DISTINCT session_id) FROM {table}").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])
