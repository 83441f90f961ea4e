"""A minimal reference load: plain httpx paging of the windows and one bulk insert into DuckDB.

It does what any loader must (sign each request, page every window, keep each session once)
and nothing else: no retries, no state, no tags; flat session columns only. Its time and
memory are the yardstick the pipeline is compared with.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import duckdb
import httpx
import jwt
import pyarrow as pa

from bench.jobs import CLIENT_ID, CLIENT_SECRET, Job

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


def run_reference(job: Job) -> dict[str, Any]:
    """Fetch every window of the job and insert all sessions at once.

    Args:
        job: The reference job (``windows`` set).

    Returns:
        Seconds of the fetch, of the insert and in all, requests sent and rows loaded.
    """
    started = time.perf_counter()
    batches, requests = fetch_all(job)
    fetched = time.perf_counter()
    table = pa.Table.from_batches(batches, schema=SCHEMA)
    insert(job, table)
    done = time.perf_counter()
    return {
        "seconds": done - started,
        "fetch_seconds": fetched - started,
        "insert_seconds": done - fetched,
        "requests": requests,
        "sessions": table.num_rows,
    }


def fetch_all(job: Job) -> tuple[list[pa.RecordBatch], int]:
    """Every window's pages, windows in parallel (``max_in_flight`` threads per bot)."""
    workers = min(32, job.max_in_flight * len(job.bots))
    with httpx.Client(base_url=job.host, timeout=120) as client, ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(lambda window: fetch_window(client, job, window), job.windows))
    batches = [batch for window_batches, _ in results for batch in window_batches]
    return batches, sum(requests for _, requests in results)


def fetch_window(client: httpx.Client, job: Job, window: Window) -> tuple[list[pa.RecordBatch], int]:
    """Page one window, newest first, keeping the sessions it owns."""
    bot, date_from, date_to, owned_after = window
    batches, skip, requests = [], 0, 0
    while True:
        body = {"dateFrom": date_from, "dateTo": date_to, "skip": skip, "limit": job.page_size}
        response = client.post(f"/api/public/bot/{bot}/getSessions", json=body, headers={"auth": token()})
        response.raise_for_status()
        page = response.json()
        requests += 1
        sessions = page["sessions"]
        batches.append(to_batch(sessions, owned_after))
        skip += len(sessions)
        if not page["moreAvailable"] or not sessions:
            return batches, requests


def to_batch(sessions: list[dict[str, Any]], owned_after: str | None) -> pa.RecordBatch:
    """Flat columns of the sessions that started after ``owned_after`` (same text format)."""
    kept = [s for s in sessions if owned_after is None or s["start_time"] > owned_after]
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
