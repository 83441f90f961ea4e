"""dlt source for the Kore.ai Sessions History API (`getSessions`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from datetime import datetime
from functools import partial
from itertools import chain
from typing import Any

import dlt
from dlt.extract.hints import TResourceHints
from dlt.sources import DltResource

from kore_sessions.source.api import arrow_rows
from kore_sessions.source.api.answers import KoreApiError
from kore_sessions.source.api.arrow_rows import PENDING_LOAD_ID, TableBatches, TableSpec
from kore_sessions.source.api.client import KoreClient
from kore_sessions.source.api.credentials import KoreCredentials
from kore_sessions.source.api.paging import PageCap
from kore_sessions.source.api.rules import ALL_BOTS_KEY
from kore_sessions.source.api.run import SourceRun
from kore_sessions.source.api.walk import fetch_concurrently
from kore_sessions.source.config import MESSAGES_RESOURCE, ConfigError, RepairPlan, RunConfig
from kore_sessions.source.dlt_compat import (
    child_tables_follow_root,
    lend_resource_to_nested_tables,
    type_hints_read_once,
)
from kore_sessions.source.first_backfill import package_disposition
from kore_sessions.source.heap import lean_heap
from kore_sessions.source.messages.channel_plan import SessionsSeen
from kore_sessions.source.messages.channel_walk import MessagesExtractor
from kore_sessions.source.messages.history_rules import MAX_ADMIN_MESSAGES_PAGE_SIZE, MESSAGES_TABLE
from kore_sessions.source.messages.message_tables import MESSAGES_SPEC
from kore_sessions.source.options import KoreSessionsOptions, resolve_options
from kore_sessions.source.package_ahead import Batch, PackageFetch, Produce
from kore_sessions.source.sessions.arrow import SESSIONS_SPEC
from kore_sessions.source.sessions.extract import BotExtractor
from kore_sessions.source.sessions.open_sessions import sessions_seen
from kore_sessions.source.sessions.records import InvalidRecordError
from kore_sessions.source.sessions.spec import SESSIONS_TABLE
from kore_sessions.source.settings import (
    ARROW_BATCH_MESSAGES,
    ARROW_BATCH_SESSIONS,
    MESSAGE_PAGES_IN_FLIGHT,
    PACKAGE_AHEAD_BATCHES,
    SOURCE_NAME,
)

__all__ = [
    "ConfigError",
    "InvalidRecordError",
    "KoreApiError",
    "KoreClient",
    "KoreCredentials",
    "KoreSessionsOptions",
    "RepairPlan",
    "SourceRun",
    "kore_sessions",
    "resolve_options",
]

lend_resource_to_nested_tables()
type_hints_read_once()


@dlt.source(name=SOURCE_NAME)
def kore_sessions(
    run: SourceRun | None = None,
    clock: Callable[[], datetime] | None = None,
    repair: RepairPlan | None = None,
    **options: Any,
) -> list[DltResource]:
    """Sessions of one or more Kore.ai bots, loaded incrementally by `start_time`, and their
    messages (opt-in: `resources = ["sessions", "messages"]`), incrementally by `createdOn`.

    Args:
        run: The record of this run (its counters, and what its load packages hand on to each
            other); the caller asks it whether more is left (`more_to_fetch`).
        clock: The loader's current time (tests and replays); defaults to the system clock.
            It only says where the last window ends: what is loaded is decided by the answers.
        repair: Ranges to reload for `audit --repair` (a bounded backfill).
        options: Values of `KoreSessionsOptions` that win over `[sources.kore_sessions]`.

    Returns:
        The `sessions` resource, merged on `session_id`, with child tables
        `sessions__user_tags`, `sessions__session_tags` and `sessions__session_lang`; with
        messages, the `messages` resource, merged on `message_id`, with child tables
        `messages__components` and `messages__tags`.
    """
    resolved = resolve_options(**options)
    config = replace(resolved.run_config(clock), repair=repair)
    run = run or SourceRun()
    run.bot_keys = config.bot_keys
    resources = [sessions_resource(config, resolved, run)]
    if MESSAGES_RESOURCE in config.resources:
        resources.append(messages_resource(config, resolved, run))
    return resources


def sessions_resource(config: RunConfig, options: KoreSessionsOptions, run: SourceRun) -> DltResource:
    """The `sessions` resource for a checked configuration; while dlt loads a package, the next
    one is fetched (`kore_sessions.source.package_ahead`)."""

    @dlt.resource(name=SESSIONS_TABLE, write_disposition="merge")
    def sessions() -> Iterator[Any]:
        run.begin_package(SESSIONS_TABLE)
        bots_state = dlt.current.resource_state().setdefault("bots", {})
        disposition = package_disposition(run, SESSIONS_TABLE, config, bots_state)
        hints = arrow_rows.table_hints(SESSIONS_SPEC, disposition)
        produce = partial(sessions_package, config, options, run, _pipelines_dir())
        fetch = run.ahead.pop(SESSIONS_TABLE, None) or package_fetch(produce, bots_state, SESSIONS_TABLE)
        yield from package_items(fetch, bots_state, SESSIONS_SPEC, hints)
        if run.more_of(SESSIONS_TABLE):
            next_package = PackageFetch.ahead(produce, bots_state, PACKAGE_AHEAD_BATCHES, SESSIONS_TABLE)
            run.ahead[SESSIONS_TABLE] = next_package

    return sessions


def sessions_package(
    config: RunConfig,
    options: KoreSessionsOptions,
    run: SourceRun,
    pipelines_dir: str | None,
    bots_state: dict[str, Any],
) -> Iterator[Batch]:
    """One package of sessions, as Arrow batches: every bot's windows, then its open sessions."""
    with options.open_client(pipelines_dir, stats=run.client) as client, lean_heap():
        cap = PageCap(config.page_size)
        extractors = {
            bot_key: BotExtractor(client, bot_key, bots_state.setdefault(bot_key, {}), config, run, cap)
            for bot_key in config.bot_keys
        }
        pages = fetch_concurrently(extractors, config.max_in_flight)
        refreshed = (list(extractor.finish()) for extractor in extractors.values())
        yield from batched_tables(chain(pages, refreshed), PENDING_LOAD_ID)


def messages_resource(config: RunConfig, options: KoreSessionsOptions, run: SourceRun) -> DltResource:
    """The `messages` resource for a checked configuration: each bot's windows asked once per
    channel its sessions came on (read from the sessions' state)."""

    @dlt.resource(name=MESSAGES_TABLE, write_disposition="merge")
    def messages() -> Iterator[Any]:
        run.begin_package(MESSAGES_TABLE)
        resources_state = dlt.current.source_state().setdefault("resources", {})
        sessions_bots = resources_state.get(SESSIONS_TABLE, {}).get("bots", {})
        bots_state = dlt.current.resource_state().setdefault("bots", {})
        disposition = package_disposition(run, MESSAGES_TABLE, config, bots_state)
        hints = arrow_rows.table_hints(MESSAGES_SPEC, disposition)
        seen = {
            bot: SessionsSeen(*sessions_seen(sessions_bots.get(bot, {})), walking=sessions_walking(run, bot))
            for bot in config.bot_keys
        }
        produce = partial(messages_package, config, options, run, _pipelines_dir(), seen)
        fetch = package_fetch(produce, bots_state, MESSAGES_TABLE)
        yield from package_items(fetch, bots_state, MESSAGES_SPEC, hints)

    return messages


def sessions_walking(run: SourceRun, bot_key: str) -> bool:
    """Whether this run's sessions of the bot have packages to come: its next one fetched ahead
    (not in the state yet), or its windows cut for a later package."""
    return SESSIONS_TABLE in run.ahead or run.has_more(SESSIONS_TABLE, bot_key)


def messages_package(
    config: RunConfig,
    options: KoreSessionsOptions,
    run: SourceRun,
    pipelines_dir: str | None,
    seen: dict[str, SessionsSeen],
    bots_state: dict[str, Any],
) -> Iterator[Batch]:
    """One package of messages, as Arrow batches: every bot's windows in each of its channels."""
    with options.open_client(pipelines_dir, stats=run.client) as client, lean_heap():
        cap = PageCap(messages_page_limit(config))
        extractors = {
            bot_key: MessagesExtractor(
                client, bot_key, bots_state.setdefault(bot_key, {}), config, run, cap, seen[bot_key]
            )
            for bot_key in config.bot_keys
        }
        pages = fetch_concurrently(extractors, min(config.max_in_flight, MESSAGE_PAGES_IN_FLIGHT))
        yield from batched_tables(pages, PENDING_LOAD_ID, MESSAGES_SPEC, ARROW_BATCH_MESSAGES)
        for extractor in extractors.values():
            extractor.finish()


def package_fetch(produce: Produce, bots_state: dict[str, Any], resource: str) -> PackageFetch:
    """A package of `resource` made now, on dlt's own state."""
    return PackageFetch(produce, bots_state, PACKAGE_AHEAD_BATCHES, resource)


def package_items(
    fetch: PackageFetch, bots_state: dict[str, Any], spec: TableSpec, hints: dict[str, TResourceHints]
) -> Iterator[Any]:
    """The package's Arrow tables as dlt items (with the package's load id), written as the
    root's hints say (child tables with or without rows), then the state the fetch left put
    into dlt's; the fetch is stopped whatever happens."""
    load_id = dlt.current.load_package_state()["load_id"]
    root_hints = hints[spec.name]
    child_tables_follow_root([child.table for child in spec.children], root_hints["write_disposition"])
    try:
        fetch.check_began_from(bots_state)
        for table_name, table in fetch.batches():
            table = arrow_rows.with_load_id(table, load_id)
            yield dlt.mark.with_hints(table, hints[table_name], create_table_variant=True)
        fetch.adopt_into(bots_state)
    finally:
        fetch.stop()


def messages_page_limit(config: RunConfig) -> int:
    """Messages asked for a page: the configured size, at most v1's 100 on the admin route."""
    if ALL_BOTS_KEY in config.bot_keys:
        return min(config.messages_page_size, MAX_ADMIN_MESSAGES_PAGE_SIZE)
    return config.messages_page_size


def batched_tables(
    pages: Iterable[list[dict[str, Any]]],
    load_id: str,
    spec: TableSpec = SESSIONS_SPEC,
    batch_rows: int = ARROW_BATCH_SESSIONS,
) -> Iterator[tuple[str, Any]]:
    """`(table name, Arrow table)` of pages of rows, joined into batches of `batch_rows` records."""
    batches = TableBatches(batch_rows, spec.name)
    for rows in pages:
        if rows:
            yield from batches.add(arrow_rows.page_tables(spec, rows, load_id))
    yield from batches.flush()


def _pipelines_dir() -> str | None:
    """The folder of the pipeline running the source, if one is."""
    pipeline = dlt.current.pipeline()
    return pipeline.pipelines_dir if pipeline else None
