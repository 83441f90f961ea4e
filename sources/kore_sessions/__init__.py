"""dlt source for the Kore.ai Sessions History API (`getSessions`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from itertools import chain
from typing import Any

import dlt
from dlt.sources import DltResource

from .arrow import page_tables, table_hints
from .client import KoreApiError, KoreClient, RetryPolicy
from .config import ConfigError, RunConfig, build_run_config
from .credentials import KoreCredentials
from .dlt_compat import lend_resource_to_nested_tables
from .extract import BotExtractor, ExtractStats, PageCap, fetch_concurrently
from .records import InvalidRecordError
from .settings import (
    DEFAULT_BACKOFF_INITIAL,
    DEFAULT_BACKOFF_MAX,
    DEFAULT_LOOKBACK_MINUTES,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_PAGE_SIZE,
    DEFAULT_REQUESTS_PER_HOUR,
    DEFAULT_REQUESTS_PER_MINUTE,
    DEFAULT_RETRY_DEADLINE,
    DEFAULT_WINDOW_HOURS,
    DEFAULT_WINDOWS_PER_RUN,
    DELETED_COLUMN,
    SESSIONS_TABLE,
    SOURCE_NAME,
)

__all__ = [
    "ConfigError",
    "ExtractStats",
    "InvalidRecordError",
    "KoreApiError",
    "KoreClient",
    "KoreCredentials",
    "kore_sessions",
]

lend_resource_to_nested_tables()

# Column types the API's JSON cannot state by itself.
SESSION_COLUMNS: dict[str, dict[str, Any]] = {
    "session_id": {"data_type": "text", "nullable": False},
    "bot_id": {"data_type": "text"},
    "channel": {"data_type": "text"},
    "user_id": {"data_type": "text"},
    "start_time": {"data_type": "timestamp"},
    "end_time": {"data_type": "timestamp"},
    "session_type": {"data_type": "text"},
    "containment_type": {"data_type": "text"},
    "is_developer": {"data_type": "bool"},
    "session_status": {"data_type": "text"},
    "no_of_messages_exchanged": {"data_type": "bigint"},
    "no_of_tasks_executed": {"data_type": "bigint"},
    DELETED_COLUMN: {"data_type": "bool", "hard_delete": True},
}


@dlt.source(name=SOURCE_NAME)
def kore_sessions(
    host: str = dlt.config.value,
    bot_ids: str | Sequence[str] | None = None,
    all_bots: bool = False,
    start_date: str | None = None,
    end_date: str | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
    window_hours: float = DEFAULT_WINDOW_HOURS,
    lookback_minutes: float = DEFAULT_LOOKBACK_MINUTES,
    requests_per_minute: int = DEFAULT_REQUESTS_PER_MINUTE,
    requests_per_hour: int = DEFAULT_REQUESTS_PER_HOUR,
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    windows_per_run: int = DEFAULT_WINDOWS_PER_RUN,
    seconds_per_minute: float = 60.0,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    backoff_initial: float = DEFAULT_BACKOFF_INITIAL,
    backoff_max: float = DEFAULT_BACKOFF_MAX,
    retry_deadline: float = DEFAULT_RETRY_DEADLINE,
    credentials: KoreCredentials = dlt.secrets.value,
    clock: Callable[[], datetime] | None = None,
    stats: ExtractStats | None = None,
) -> DltResource:
    """Sessions of one or more Kore.ai bots, loaded incrementally by `start_time`.

    Args:
        host: Base URL of the Kore.ai environment, e.g. `https://platform.kore.ai`.
        bot_ids: One or more bot ids (a list, JSON list or comma-separated string).
        all_bots: Use the Admin Console route that covers every bot of the account.
        start_date: Where the first backfill starts when there is no state (default 30 days ago).
        end_date: With start_date, a bounded backfill that leaves incremental state alone.
        page_size: Sessions asked for per request (the server may cap it).
        window_hours: Span of one request's window, under 7 days.
        lookback_minutes: How far behind its cursor each run looks again, for late arrivals.
        requests_per_minute: Client-side rolling limit per bot (per account on the admin route).
        requests_per_hour: Client-side rolling hourly limit, checked as well.
        max_in_flight: Requests of one bot waiting or running at once (bots run in parallel).
        windows_per_run: Windows of one bot per load package; a longer incremental backfill is
            loaded as several packages in a row by `load_sessions` (stats.more_to_fetch).
        seconds_per_minute: Length of the limits' minute in seconds (60; less only for a
            sandbox or benchmark with scaled-down limits).
        max_attempts: Attempts per request before giving up on retryable errors.
        backoff_initial: First backoff wait in seconds; it doubles per attempt, with jitter.
        backoff_max: Longest single wait in seconds.
        retry_deadline: Longest time in seconds spent retrying one request.
        credentials: The app's client id and secret (or private key).
        clock: The current time (tests and replays); defaults to the system clock in UTC.
        stats: Counters the caller reads for progress and the summary.

    Returns:
        The `sessions` resource, merged on `session_id`, with child tables
        `sessions__user_tags`, `sessions__session_tags` and `sessions__session_lang`.
    """
    config = build_run_config(
        host=host,
        bot_ids=bot_ids,
        all_bots=all_bots,
        start_date=start_date,
        end_date=end_date,
        page_size=page_size,
        window_hours=window_hours,
        lookback_minutes=lookback_minutes,
        requests_per_minute=requests_per_minute,
        requests_per_hour=requests_per_hour,
        clock=clock,
        max_in_flight=max_in_flight,
        windows_per_run=windows_per_run,
    )
    policy = RetryPolicy(max_attempts, backoff_initial, backoff_max, retry_deadline)
    return sessions_resource(config, credentials, policy, seconds_per_minute, stats or ExtractStats())


def sessions_resource(
    config: RunConfig,
    credentials: KoreCredentials,
    policy: RetryPolicy,
    seconds_per_minute: float,
    stats: ExtractStats,
) -> DltResource:
    """The `sessions` resource for a checked configuration."""

    hints = table_hints(SESSION_COLUMNS)

    @dlt.resource(name=SESSIONS_TABLE, write_disposition="merge")
    def sessions() -> Iterator[Any]:
        bots_state = dlt.current.resource_state().setdefault("bots", {})
        load_id = dlt.current.load_package_state()["load_id"]
        with KoreClient(
            config.host,
            credentials,
            requests_per_minute=config.requests_per_minute,
            requests_per_hour=config.requests_per_hour,
            retry_policy=policy,
            seconds_per_minute=seconds_per_minute,
        ) as client:
            client.stats = stats.client  # one set of counters across the packages of a run
            cap = PageCap(config.page_size)
            extractors = {
                bot_key: BotExtractor(client, bot_key, bots_state.setdefault(bot_key, {}), config, stats, cap)
                for bot_key in config.bot_keys
            }
            batches = fetch_concurrently(extractors, config.max_in_flight)
            refreshed = (list(extractor.finish()) for extractor in extractors.values())
            for rows in chain(batches, refreshed):
                if rows:
                    for table_name, table in page_tables(rows, load_id).items():
                        yield dlt.mark.with_hints(table, hints[table_name], create_table_variant=True)

    return sessions
