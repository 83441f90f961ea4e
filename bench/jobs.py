"""What a child process is asked to do, passed to it as JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

PIPELINE = "pipeline"
REFERENCE = "reference"
DLT_ONLY = "dlt_only"
MESSAGES_FLOOR = "messages_floor"
DUCKDB = "duckdb"
POSTGRES = "postgres"
CLIENT_ID = "cs-bench"
CLIENT_SECRET = "bench-secret-0123456789-0123456789-abcdef"
# Limits high enough never to bind: "without rate limits".
UNLIMITED = 10**9
# The v2 maximum of messages a page, asked for by default (`messages_page_size`).
MESSAGES_PAGE_SIZE = 10_000
# Worker threads of the pipeline's request pool (`settings.MAX_WORKERS`), which the floor shares;
# the parent passes the pipeline's own value, this is only the default of a job file.
DEFAULT_WORKERS = 8


@dataclass(frozen=True)
class Job:
    """One load of the sandbox's sessions into a fresh DuckDB file or PostgreSQL schema, in a child.

    Attributes:
        kind: ``pipeline`` (the real dlt pipeline), ``reference`` (the floor: plain httpx +
            DuckDB), ``dlt_only`` (dlt's merge of the same sessions, handed over ready-made) or
            ``messages_floor`` (the floor of sessions and their messages, `bench.messages_floor`).
        host: Base URL of the sandbox server.
        bots: Bot ids to load.
        start: ISO start of the backfill.
        now: ISO time of the sandbox clock (the source's clock too).
        workdir: Folder of the child's DuckDB file and dlt state.
        page_size: Sessions asked for per request.
        max_in_flight: Requests of one bot in flight (the reference: its threads per bot).
        requests_per_minute: Client-side limit per bot.
        requests_per_hour: Client-side hourly limit per bot.
        seconds_per_minute: Real seconds of one limiter minute.
        windows: ``(bot, date_from, date_to, owned_after)`` windows to page (not the pipeline).
        workers: Threads of all bots' requests together (the reference; the pipeline has its own).
        parser: How the reference parses pages: ``orjson`` (as the pipeline) or ``json`` (the
            standard library's, as the independent check's floor).
        destination: ``duckdb`` (a fresh file in ``workdir``) or ``postgres`` (the pipeline only).
        postgres_url: The PostgreSQL database of a ``postgres`` job.
        dataset: The dataset (schema) the pipeline loads into.
        resources: What the pipeline loads (the source's `resources`).
        messages_page_size: Messages asked for per request.
        write_disposition: How dlt alone writes the ready-made tables (``append``, as the
            pipeline's first backfill does, or ``merge``, as every later run does).
        message_windows: ``(bot, date_from, date_to, owned_after, channel)`` of the messages
            floor, each paged in full.
    """

    kind: str
    host: str
    bots: list[str]
    start: str
    now: str
    workdir: str
    page_size: int = 1000
    max_in_flight: int = 4
    requests_per_minute: int = UNLIMITED
    requests_per_hour: int = UNLIMITED
    seconds_per_minute: float = 60.0
    windows: list[tuple[str, str, str, str | None]] = field(default_factory=list)
    workers: int = DEFAULT_WORKERS
    parser: Literal["orjson", "json"] = "orjson"
    destination: str = DUCKDB
    postgres_url: str | None = None
    dataset: str = "kore_sessions"
    resources: list[str] = field(default_factory=lambda: ["sessions"])
    messages_page_size: int = MESSAGES_PAGE_SIZE
    write_disposition: str = "append"
    message_windows: list[tuple[str, str, str, str | None, str]] = field(default_factory=list)

    def save(self, path: Path) -> None:
        """Write the job as JSON."""
        path.write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: Path) -> Job:
        """Read a job written by :meth:`save`."""
        data: dict[str, Any] = json.loads(path.read_text())
        data["windows"] = [tuple(window) for window in data.get("windows", [])]
        data["message_windows"] = [tuple(window) for window in data.get("message_windows", [])]
        return cls(**data)

    @property
    def duckdb_path(self) -> Path:
        """The DuckDB file of this job."""
        return Path(self.workdir) / "bench.duckdb"
