"""`kore-sessions audit`: the warehouse's sessions, and messages, per UTC day and bot against
the API's counts.

What is due: for each bot, the days from where its loading began (`loaded_from`, else the
configured start) up to the later of its cursor (the newest record the server has shown it)
and the settled time (now less a grace period): what the API shows as settled must be loaded,
so a loader that stopped moving is found however healthy its older days look, and a bot that
was never loaded counts every settled record as missing. Days older than the platform keeps
(`retention_days`) are not checked. Sessions are counted by `start_time`; messages, when the
pipeline loads them (`message_audit`), by `createdOn`, each resource from its own state. Each
check is recorded in `kore_audit` for BI tools. `--repair` reloads exactly the ranges that
differ as a bounded backfill (the incremental state stays where it is) and checks those days
again. An audit that checked nothing says so and does not pass: `NothingToAuditError` names
the pipelines that do have state.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import dlt
from kore_sessions.output.failures import ActionableError
from kore_sessions.runtime.audit_checks import Audited, AuditRange, AuditResult, DayCheck
from kore_sessions.runtime.message_audit import audits_messages, drop_unlisted, messages_audited
from kore_sessions.runtime.pipeline import finish_pending, load_sessions, source_state
from kore_sessions.source import KoreClient, KoreSessionsOptions, RepairPlan, SourceRun, kore_sessions
from kore_sessions.source.api.day_counts import (
    DaySlice,
    api_day_counts,
    day_slices,
    ranges_to_reload,
    stretches,
)
from kore_sessions.source.api.timestamps import format_api_timestamp, parse_timestamp
from kore_sessions.source.config import MESSAGES_RESOURCE, SESSIONS_RESOURCE, RunConfig
from kore_sessions.source.messages.history_api import MESSAGES_LISTING
from kore_sessions.source.messages.history_rules import MESSAGES_TABLE
from kore_sessions.source.sessions.completeness import SessionCounter
from kore_sessions.source.sessions.spec import SESSIONS_TABLE
from kore_sessions.source.settings import RETENTION_MARGIN
from kore_sessions.warehouse.dataset import no_state
from kore_sessions.warehouse.held import count_held, ids_held, load_ids, record_checks
from kore_sessions.warehouse.models import build_models, built_settings
from kore_sessions.warehouse.turn import warehouse_turn

__all__ = ["DEFAULT_AUDIT_DAYS", "AuditRange", "AuditResult", "Auditor", "DayCheck", "NothingToAuditError"]

# Days `audit` checks when no range is given, ending now.
DEFAULT_AUDIT_DAYS = 7
# Records the API shows older than this must be in the warehouse, cursor or not: a scheduled
# load (every 15 minutes) has had a dozen chances by then, and a server whose clock or index
# lags by less still shows nothing that old that the loader could not have read yet.
DEFAULT_GRACE_HOURS = 3.0


class NothingToAuditError(ActionableError):
    """The audit had nothing to check: no bot x day was compared, so it cannot pass."""


class Auditor:
    """Checks (and repairs) the sessions, and messages, of one pipeline's warehouse against the API."""

    def __init__(
        self,
        pipeline: dlt.Pipeline,
        options: KoreSessionsOptions,
        overrides: dict[str, Any],
        clock: Callable[[], datetime] | None = None,
        grace: timedelta = timedelta(hours=DEFAULT_GRACE_HOURS),
    ) -> None:
        """Prepare an audit.

        Args:
            pipeline: The pipeline whose warehouse and state are audited.
            options: The source's resolved options (host, bots, credentials, limits).
            overrides: The options given explicitly, for the repair's source.
            clock: The loader's clock (tests); the system clock by default.
            grace: How old a record the API shows must be to be due whatever the cursor says.
        """
        self.pipeline = pipeline
        self.options = options
        self.overrides = overrides
        self.clock = clock
        self.grace = grace
        self.config = options.run_config(clock)
        self.audited: dict[str, Audited] = {}

    def run(self, audit_range: AuditRange, repair: bool = False) -> AuditResult:
        """Check every due day of every bot; with `repair`, reload what differs and check again."""
        started = time.monotonic()
        result = AuditResult(bots=self.config.bot_keys)
        with warehouse_turn(self.pipeline):  # first, as a load: a pipeline whose dataset is gone
            self.pipeline.sync_destination()  # starts again, and loads no leftover into nothing
        if finish_pending(self.pipeline):
            with warehouse_turn(self.pipeline):
                self.pipeline.sync_destination()  # the dataset's state, newer once they are loaded
        sessions_bots = source_state(self.pipeline).get("bots", {})
        if not sessions_bots:
            raise NothingToAuditError(no_state(self.pipeline))
        with self._client() as client:
            self.audited = {SESSIONS_TABLE: sessions_audited(self.config, client, sessions_bots)}
            if audits_messages(self.pipeline, self.config):
                self.audited[MESSAGES_TABLE] = messages_audited(
                    self.pipeline, self.config, client, sessions_bots
                )
            for audited in self.audited.values():
                for bot in self.config.bot_keys:
                    result.checks += self._check_bot(audited, bot, audit_range, result)
            if not result.checks:
                raise NothingToAuditError("nothing was due in the range: " + "; ".join(result.notes))
            _record(self.pipeline, result.checks, audit_range.now)
            if repair:
                result.differed_before_repair = len(result.differing)
                if result.differing:
                    self._repair(result)
                    _record(self.pipeline, [c for c in result.checks if c.repaired], self.config.clock())
            result.requests += client.stats.requests
        result.seconds = time.monotonic() - started
        return result

    def _client(self) -> KoreClient:
        """A client within the same rate budget as `load`."""
        return self.options.open_client(self.pipeline.pipelines_dir)

    def _check_bot(
        self, audited: Audited, bot: str, audit_range: AuditRange, result: AuditResult
    ) -> list[DayCheck]:
        """The checks of one bot in one resource: a request per stretch of up to 7 days (per
        channel, for messages), more only where they differ."""
        retention = timedelta(days=self.options.retention_days)
        slices = due_slices(audited, bot, audit_range, self.grace, retention, result.notes)
        with warehouse_turn(self.pipeline), self.pipeline.sql_client() as sql:
            held = {piece.day: audited.held(sql, bot, piece.start, piece.end) for piece in slices}
        api_count = audited.counter.counter(bot)
        checks = []
        for group in stretches(slices):
            counts = api_day_counts(group, held, api_count)
            checks += [
                DayCheck(p.day, bot, p.start, p.end, counts[p.day], held[p.day], resource=audited.resource)
                for p in group
            ]
        return checks

    def _repair(self, result: AuditResult) -> None:
        """Reload the ranges that differ (sessions and messages in one bounded run), delete the
        sessions the API calls invalid and the messages the reload no longer lists, and check
        those days again."""
        plan, loads_before = self._repair_plan(result)
        run = SourceRun()
        overrides = dict(self.overrides)
        if plan.message_ranges:
            overrides["resources"] = [SESSIONS_RESOURCE, MESSAGES_RESOURCE]
        source = kore_sessions(run=run, clock=self.clock, repair=plan, **overrides)
        summary = load_sessions(self.pipeline, source, run)
        summary.check_complete()
        result.reloaded, result.deleted = summary.sessions_fetched, summary.sessions_deleted
        result.messages_reloaded = run.totals.of(MESSAGES_LISTING.noun)
        if plan.message_ranges:
            result.messages_deleted = drop_unlisted(self.pipeline, plan.message_ranges, loads_before, run)
        result.requests += summary.requests
        with warehouse_turn(self.pipeline):
            settings = built_settings(self.pipeline)
            if settings is not None:  # the marts follow the sessions, counted as they were
                build_models(self.pipeline, settings)
                result.models_rebuilt = True
        differing = result.differing
        result.checks = [c for c in result.checks if not c.difference]
        with warehouse_turn(self.pipeline), self.pipeline.sql_client() as sql:
            for check in differing:
                audited = self.audited[check.resource]
                held = audited.held(sql, check.bot, check.start, check.end)
                api = audited.counter.count(check.bot, check.start, check.end)
                result.checks.append(replace(check, api=api, warehouse=held, repaired=True))

    def _repair_plan(self, result: AuditResult) -> tuple[RepairPlan, set[str]]:
        """The ranges of each differing day whose counts differ (per resource), the sessions
        the warehouse holds in them, and the dataset's loads so far."""
        ranges: dict[str, dict[str, list[tuple[datetime, datetime]]]] = {
            SESSIONS_TABLE: {},
            MESSAGES_TABLE: {},
        }
        held_ids: dict[str, frozenset[str]] = {}
        with warehouse_turn(self.pipeline), self.pipeline.sql_client() as sql:
            for check in result.differing:
                audited = self.audited[check.resource]
                found = ranges_to_reload(
                    check.start,
                    check.end,
                    check.api,
                    audited.counter.counter(check.bot),
                    partial(audited.held, sql, check.bot),
                    audited.page_size,
                )
                ranges[check.resource].setdefault(check.bot, []).extend(found)
                if check.resource == SESSIONS_TABLE:
                    ids = {i for start, end in found for i in ids_held(sql, check.bot, start, end)}
                    held_ids[check.bot] = held_ids.get(check.bot, frozenset()) | ids
            loads_before = load_ids(sql)
        plan = RepairPlan(
            ranges=ranges[SESSIONS_TABLE], held_ids=held_ids, message_ranges=ranges[MESSAGES_TABLE]
        )
        return plan, loads_before


def sessions_audited(config: RunConfig, client: KoreClient, bots_state: dict[str, Any]) -> Audited:
    """The sessions as the audit checks them (a bot never loaded is due from the configured start)."""
    counter = SessionCounter(client, config.page_size)
    start = config.start_date
    return Audited(
        SESSIONS_TABLE, "session", bots_state, counter, count_held, config.page_size, lambda _: start
    )


def due_slices(
    audited: Audited,
    bot: str,
    audit_range: AuditRange,
    grace: timedelta,
    retention: timedelta,
    notes: list[str],
) -> list[DaySlice]:
    """The parts of the range's days that are due for `bot` in one resource: from where its
    loading began up to its cursor or, if later, the settled time (now less `grace`), and no
    day the platform no longer keeps (`retention`, less a margin); what is worth saying of it
    is added to `notes`."""
    state = audited.bots_state.get(bot, {})
    cursor = parse_timestamp(state.get("cursor"))
    loaded_from = parse_timestamp(state.get("loaded_from")) or audited.first_start(bot)
    label, noun = audited.label(bot), audited.noun
    settled = audit_range.now - grace
    if cursor is None:
        notes.append(f"{label}: never loaded by this pipeline: every settled {noun} is due")
    elif cursor < settled:
        notes.append(
            f"{label}: the cursor stands at {_text(cursor)}: {noun}s the API shows up to "
            f"{_text(settled)} are due (loads may have stopped)"
        )
    kept = audit_range.now - retention + RETENTION_MARGIN
    first_kept = datetime.combine(kept.date() + timedelta(days=1), datetime.min.time(), UTC)
    start = max(audit_range.start, loaded_from, first_kept)
    end = min(audit_range.end, settled if cursor is None else max(cursor, settled))
    if start > end:
        notes.append(f"{label}: nothing due in the range (loaded from {_text(loaded_from)})")
    return day_slices(start, end)


def _record(pipeline: dlt.Pipeline, checks: list[DayCheck], now: datetime) -> None:
    """Append the checks to `kore_audit` (made on first use)."""
    record_checks(
        pipeline,
        [
            (c.day, c.bot, c.api, c.warehouse, c.difference, c.start, c.end, now, c.repaired, c.resource)
            for c in checks
        ],
    )


def _text(moment: datetime) -> str:
    """An instant as the API writes it, for messages."""
    return format_api_timestamp(moment)
