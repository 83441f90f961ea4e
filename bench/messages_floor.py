"""The floor of a backfill of sessions and their messages: plain httpx paging and two bulk inserts.

The sessions are fetched and inserted as the sessions' floor does (`bench.reference`: the
pipeline's session windows, flat columns, one ``CREATE TABLE ... AS SELECT`` from Arrow). Then
every message window (bot, window, channel) is paged with plain httpx on the same endpoint
(POST ``getMessagesV2``, the same page size), ``skip += received`` until ``moreAvailable`` is
false or a page is empty: bots in parallel, at most ``max_in_flight`` requests a bot and
``workers`` in all, as the pipeline. Each message is kept by the window owning its
``createdOn`` (windows overlap by a second), flattened to a row of plain columns (no components
or tags tables, no merge, no state) and all rows go into DuckDB in one bulk insert. Both tables
land in the job's dataset (schema), where the pipeline puts its own.
"""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import duckdb
import httpx
import orjson
import pyarrow as pa

from bench.jobs import Job
from bench.reference import CREATE_TABLE, SCHEMA, fetch_all, to_batch, token

# (bot, dateFrom, dateTo, owned_after, channel): one window of one channel.
MessageWindow = tuple[str, str, str, str | None, str]
# API field -> column of the flat messages table, in table order (then text_length).
MESSAGE_FIELDS = {
    "_id": "message_id",
    "sessionId": "session_id",
    "botId": "bot_id",
    "type": "message_type",
    "status": "status",
    "createdOn": "created_on",
    "chnl": "channel",
    "lang": "lang",
    "ms": "message_source",
}
MESSAGE_SCHEMA = pa.schema(
    [
        (column, pa.int64() if column == "message_source" else pa.string())
        for column in MESSAGE_FIELDS.values()
    ]
    + [("text_length", pa.int64())]
)
CREATE_MESSAGES = """
CREATE TABLE {dataset}.messages AS
SELECT message_id, session_id, bot_id, message_type, status,
       CAST(created_on AS TIMESTAMPTZ) AS created_on, channel, lang, message_source, text_length
FROM arrow_tbl
"""


@dataclass(frozen=True)
class MessagePage:
    """One request of the floor: a page of a window of one channel."""

    window: MessageWindow
    skip: int


def run_messages_floor(job: Job) -> dict[str, Any]:
    """Load the job's sessions, then every message of its message windows, into a fresh DuckDB file.

    Returns:
        Seconds in all and of each part, requests sent and rows loaded.
    """
    started, cpu = time.perf_counter(), time.process_time()
    batches, session_requests = fetch_all(job, to_batch)
    with duckdb.connect(str(job.duckdb_path)) as connection:
        connection.execute(f"CREATE SCHEMA {job.dataset}")
        connection.register("arrow_tbl", pa.Table.from_batches(batches, schema=SCHEMA))
        connection.execute(
            CREATE_TABLE.replace("CREATE TABLE sessions", f"CREATE TABLE {job.dataset}.sessions")
        )
    del batches
    sessions_done = time.perf_counter()
    pages, message_requests = fetch_messages(job)
    fetched = time.perf_counter()
    table = pa.Table.from_batches(pages, schema=MESSAGE_SCHEMA)
    del pages
    with duckdb.connect(str(job.duckdb_path)) as connection:
        connection.register("arrow_tbl", table)
        connection.execute(CREATE_MESSAGES.format(dataset=job.dataset))
    done = time.perf_counter()
    return {
        "seconds": done - started,
        "cpu_seconds": time.process_time() - cpu,
        "sessions_seconds": sessions_done - started,
        "messages_seconds": done - sessions_done,
        "messages_fetch_seconds": fetched - sessions_done,
        "messages_insert_seconds": done - fetched,
        "requests": session_requests,
        "message_requests": message_requests,
        "messages": table.num_rows,
    }


def fetch_messages(job: Job) -> tuple[list[pa.RecordBatch], int]:
    """Every page of every message window, bots in parallel; each page's kept rows and the requests sent."""
    queues: dict[str, deque[MessagePage]] = {bot: deque() for bot in job.bots}
    for window in job.message_windows:
        queues[window[0]].append(MessagePage(window, 0))
    running: dict[Future[tuple[pa.RecordBatch, int, bool]], MessagePage] = {}
    batches: list[pa.RecordBatch] = []
    with httpx.Client(base_url=job.host, timeout=120) as client, ThreadPoolExecutor(job.workers) as pool:
        while True:
            busy: dict[str, int] = {}
            for page in running.values():
                busy[page.window[0]] = busy.get(page.window[0], 0) + 1
            for bot, queue in queues.items():
                while queue and busy.get(bot, 0) < job.max_in_flight:
                    page = queue.popleft()
                    running[pool.submit(fetch_message_page, client, job, page)] = page
                    busy[bot] = busy.get(bot, 0) + 1
            if not running:
                return batches, len(batches)
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in done:
                page = running.pop(future)
                batch, received, more = future.result()
                batches.append(batch)
                if more and received:
                    queues[page.window[0]].append(MessagePage(page.window, page.skip + received))


def fetch_message_page(client: httpx.Client, job: Job, page: MessagePage) -> tuple[pa.RecordBatch, int, bool]:
    """One page: its messages the window owns as flat columns, how many came, and whether more follow."""
    bot, date_from, date_to, owned_after, channel = page.window
    body = {
        "dateFrom": date_from,
        "dateTo": date_to,
        "skip": page.skip,
        "limit": job.messages_page_size,
        "channelType": channel,
    }
    response = client.post(f"/api/public/bot/{bot}/getMessagesV2", json=body, headers={"auth": token()})
    response.raise_for_status()
    answer = orjson.loads(response.content)
    messages = answer["messages"]
    kept = [m for m in messages if owned_after is None or m["createdOn"] > owned_after]  # same text format
    return to_message_batch(kept), len(messages), bool(answer.get("moreAvailable"))


def to_message_batch(kept: list[dict[str, Any]]) -> pa.RecordBatch:
    """Flat columns of a page's kept messages, with the length of their components' text."""
    columns: dict[str, list[Any]] = {
        column: [m.get(name) for m in kept] for name, column in MESSAGE_FIELDS.items()
    }
    columns["text_length"] = [text_length(m) for m in kept]
    return pa.RecordBatch.from_pydict(columns, schema=MESSAGE_SCHEMA)


def text_length(message: dict[str, Any]) -> int | None:
    """Characters of the text of a message's components (None when none has text)."""
    texts = [
        component["data"]["text"]
        for component in message.get("components") or ()
        if isinstance(component.get("data"), dict) and isinstance(component["data"].get("text"), str)
    ]
    return sum(map(len, texts)) if texts else None
