"""The messages' part of `kore-sessions audit`: their counts per UTC day and bot, and what a
repair does beyond reloading.

The API's count of a day is the `total` of a request (`limit` 1) per channel the bot's
messages are walked in (the channels its sessions came on, or walked before: the same plan as
the load's), created that day; the warehouse's count is the messages of that bot created that
day, with those erased at a user's request (`kore_erased_messages`). v2 leaves Alert- and
Action-task messages out, so a session's `noOfMessagesExchanged` cannot be matched; the API's
own total can. Messages are audited when the pipeline has loaded them or is configured to.
A repair reloads the ranges that differ (merged on `message_id`); the messages the warehouse
holds there that its complete reload no longer listed are deleted (the platform no longer has
them, or they were never its), and only when that bot's reload walked every window.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import dlt
from kore_sessions.runtime.audit_checks import Audited
from kore_sessions.runtime.pipeline import source_state
from kore_sessions.source import KoreClient, SourceRun
from kore_sessions.source.api.timestamps import parse_timestamp
from kore_sessions.source.config import MESSAGES_RESOURCE, RunConfig
from kore_sessions.source.messages.channel_plan import SessionsSeen, channel_plan
from kore_sessions.source.messages.history_rules import MESSAGES_TABLE
from kore_sessions.source.messages.message_counts import MessageCounter
from kore_sessions.source.sessions.open_sessions import sessions_seen
from kore_sessions.warehouse.forget import MESSAGE_TABLES, delete_rows
from kore_sessions.warehouse.held import count_held_messages, load_ids, messages_loaded_before
from kore_sessions.warehouse.turn import warehouse_turn

# Per bot key, ranges (both ends inclusive) of a time column.
Ranges = Mapping[str, Sequence[tuple[datetime, datetime]]]


def audits_messages(pipeline: dlt.Pipeline, config: RunConfig) -> bool:
    """Whether the pipeline has loaded messages or is configured to."""
    return bool(source_state(pipeline, MESSAGES_TABLE).get("bots")) or MESSAGES_RESOURCE in config.resources


def messages_audited(
    pipeline: dlt.Pipeline, config: RunConfig, client: KoreClient, sessions_bots: Mapping[str, Any]
) -> Audited:
    """The messages as the audit checks them.

    Args:
        pipeline: The audited pipeline (its messages state).
        config: The run configuration (bots, start, page size).
        client: The client the counts are asked through.
        sessions_bots: The sessions' state per bot (channels, where loading began).
    """
    bots_state = source_state(pipeline, MESSAGES_TABLE).get("bots", {})
    channels = {
        bot: bot_channels(sessions_bots.get(bot, {}), bots_state.get(bot, {})) for bot in config.bot_keys
    }

    def first_start(bot: str) -> datetime:
        """Where the messages of a bot never loaded are due from: where its sessions' loading
        began (the messages' first walk begins there too), else the configured start."""
        return parse_timestamp(sessions_bots.get(bot, {}).get("loaded_from")) or config.start_date

    counter = MessageCounter(client, config.messages_page_size, channels)
    page_size = config.messages_page_size
    return Audited(
        MESSAGES_TABLE, "message", bots_state, counter, count_held_messages, page_size, first_start
    )


def bot_channels(sessions_state: Mapping[str, Any], messages_state: Mapping[str, Any]) -> tuple[str, ...]:
    """The channels a bot's messages are counted in: those its messages are walked in."""
    seen = SessionsSeen(*sessions_seen(dict(sessions_state)))
    return channel_plan(seen, dict(messages_state)).channels


def drop_unlisted(pipeline: dlt.Pipeline, ranges: Ranges, loads_before: set[str], run: SourceRun) -> int:
    """After a repair's reload of message ranges, delete the messages the warehouse holds in
    them that the reload did not write (merged rows carry the load that wrote them last), with
    their components and tags; only for bots whose reload walked every window. Return how many
    messages went.

    Args:
        pipeline: The repaired pipeline.
        ranges: Per bot key, the ranges of createdOn reloaded.
        loads_before: The dataset's loads before the reload.
        run: The reload's run (which bots it finished).
    """
    walked = {bot: ranges[bot] for bot in ranges if _finished(run, bot)}
    if not walked:
        return 0
    with warehouse_turn(pipeline), pipeline.sql_client() as sql:
        reloads = load_ids(sql) - loads_before
        ids = sorted(
            {
                message_id
                for bot, bot_ranges in walked.items()
                for start, end in bot_ranges
                for message_id in messages_loaded_before(sql, bot, start, end, reloads)
            }
        )
        if ids:
            with sql.begin_transaction():
                delete_rows(sql, ids, MESSAGE_TABLES)
    return len(ids)


def _finished(run: SourceRun, bot: str) -> bool:
    """Whether the run walked every window of the bot's messages (none short, none left)."""
    progress = run.bots.get((MESSAGES_TABLE, bot))
    return progress is not None and progress.finished and not run.short_windows
