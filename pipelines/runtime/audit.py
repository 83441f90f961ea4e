"""`kore-sessions audit`: the warehouse's sessions per UTC day and bot against the API's counts.

What is due: for each bot, the days from where its loading began (`loaded_from`, else the
configured start) up to the later of its cursor (the newest session the server has shown it)
and the settled time (now less a grace period): what the API shows as settled must be loaded,
so a loader that stopped moving is found however healthy its older days look, and a bot that
was never loaded counts every settled session as missing. Days older than the platform keeps
(`retention_days`) are not checked. Each check is recorded in `kore_audit` for BI tools.
`--repair` reloads exactly the ranges that differ as a bounded backfill (the incremental state
stays where it is) and checks those days again. An audit that checked nothing says so and does
not pass: `NothingToAuditError` names the pipelines that do have state.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

import dlt
from kore_sessions.output.failures import ActionableError
from kore_sessions.runtime.pipeline import finish_pending, load_sessions, source_state
from kore_sessions.source import KoreClient, KoreSessionsOptions, RepairPlan, SourceRun, kore_sessions
from kore_sessions.source.api.rules import bot_label
from kore_sessions.source.api.timestamps import format_api_timestamp, parse_timestamp
from kore_sessions.source.sessions.completeness import (
    DaySlice,
    SessionCounter,
    api_day_counts,
    day_slices,
    ranges_to_reload,
    stretches,
)
from kore_sessions.source.settings import RETENTION_MARGIN
from kore_sessions.warehouse.dataset import no_state
from kore_sessions.warehouse.held import count_held, ids_held, record_checks
from kore_sessions.warehouse.models import build_models, built_settings
from kore_sessions.warehouse.turn import warehouse_turn

# Days `audit` checks when no range is given, ending now.
DEFAULT_AUDIT_DAYS = 7
# Sessions the API shows older than this must be in the warehouse, cursor or not: a scheduled
# load (every 15 minutes) has had a dozen chances by then, and a server whose clock or index
# lags by less still shows nothing that old that the loader could not have read yet.
DEFAULT_GRACE_HOURS = 3.0


class NothingToAuditError(ActionableError):
    """The audit had nothing to check: no bot x day was compared, so it cannot pass."""


@dataclass
class DayCheck:
    """The counts of one UTC day (the part of it that is due) of one bot."""

    day: date
    bot: str
    start: datetime
    end: datetime
    api: int
    warehouse: int
    repaired: bool = False

    @property
    def difference(self) -> int:
        """Sessions the warehouse lacks (positive) or holds beyond the API (negative)."""
        return self.api - self.warehouse


@dataclass
class AuditResult:
    """What one audit found (and repaired)."""

    checks: list[DayCheck] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    bots: tuple[str, ...] = ()
    requests: int = 0
    reloaded: int = 0
    deleted: int = 0
    differed_before_repair: int | None = None
    models_rebuilt: bool = False
    seconds: float = 0.0

    @property
    def differing(self) -> list[DayCheck]:
        """Checks whose counts differ."""
        return [check for check in self.checks if check.difference]

    def lines(self) -> list[str]:
        """The table of checks and the summary, as printed."""
        width = max([len(check.bot) for check in self.checks] + [3])
        lines = [f"{'day':<10}  {'bot':<{width}}  {'API':>8}  {'warehouse':>9}  {'difference':>10}"]
        for check in sorted(self.checks, key=lambda c: (c.day, c.bot)):
            mark = "  repaired" if check.repaired else ""
            lines.append(
                f"{check.day.isoformat():<10}  {check.bot:<{width}}  {check.api:>8}  "
                f"{check.warehouse:>9}  {check.difference:>+10}{mark}"
            )
        return [*self.notes, *lines, self.summary()]

    def summary(self) -> str:
        """One line: what was checked, what differs, what was repaired."""
        missing = sum(c.difference for c in self.differing if c.difference > 0)
        extra = -sum(c.difference for c in self.differing if c.difference < 0)
        text = (
            f"audit: {len(self.checks)} day x bot checked, {len(self.differing)} differ "
            f"({missing} sessions missing, {extra} extra), {self.requests} requests, {self.seconds:.1f} s"
        )
        if self.differed_before_repair is not None:
            text += (
                f"; repair: {self.differed_before_repair} differed, {self.reloaded} sessions reloaded, "
                f"{self.deleted} deleted"
            )
        if self.models_rebuilt:
            text += "; models rebuilt"
        return text


@dataclass(frozen=True)
class AuditRange:
    """The instants an audit covers, [start, end] inclusive, and the time of the check."""

    start: datetime
    end: datetime
    now: datetime

    @classmethod
    def last_days(cls, days: int, now: datetime) -> AuditRange:
        """The last `days` UTC days, today included, ending now."""
        first = datetime.combine(now.date() - timedelta(days=days - 1), datetime.min.time(), UTC)
        return cls(first, now, now)


class Auditor:
    """Checks (and repairs) the sessions of one pipeline's warehouse against the API."""

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
            grace: How old a session the API shows must be to be due whatever the cursor says.
        """
        self.pipeline = pipeline
        self.options = options
        self.overrides = overrides
        self.clock = clock
        self.grace = grace
        self.config = options.run_config(clock)
        self.bots_state: dict[str, Any] = {}

    def run(self, audit_range: AuditRange, repair: bool = False) -> AuditResult:
        """Check every due day of every bot; with `repair`, reload what differs and check again."""
        started = time.monotonic()
        result = AuditResult(bots=self.config.bot_keys)
        finish_pending(self.pipeline)
        with warehouse_turn(self.pipeline):
            self.pipeline.sync_destination()
        self.bots_state = source_state(self.pipeline).get("bots", {})
        if not self.bots_state:
            raise NothingToAuditError(no_state(self.pipeline))
        with self._client() as client:
            counter = SessionCounter(client, self.config.page_size)
            for bot in self.config.bot_keys:
                result.checks += self._check_bot(counter, bot, audit_range, result)
            if not result.checks:
                raise NothingToAuditError("nothing was due in the range: " + "; ".join(result.notes))
            self._record(result.checks, audit_range.now)
            if repair:
                result.differed_before_repair = len(result.differing)
                if result.differing:
                    self._repair(counter, result)
                    self._record([c for c in result.checks if c.repaired], self._now())
            result.requests += client.stats.requests
        result.seconds = time.monotonic() - started
        return result

    def _now(self) -> datetime:
        """The loader's clock."""
        return self.config.clock()

    def _client(self) -> KoreClient:
        """A client within the same rate budget as `load`."""
        return self.options.open_client(self.pipeline.pipelines_dir)

    def _due_slices(self, bot: str, audit_range: AuditRange, result: AuditResult) -> list[DaySlice]:
        """The parts of the range's days that are due for `bot`: from where its loading began up
        to its cursor or, if later, the settled time (now less the grace period)."""
        state = self.bots_state.get(bot, {})
        cursor = parse_timestamp(state.get("cursor"))
        loaded_from = parse_timestamp(state.get("loaded_from")) or self.config.start_date
        label = bot_label(bot)
        settled = audit_range.now - self.grace
        if cursor is None:
            result.notes.append(f"{label}: never loaded by this pipeline: every settled session is due")
        elif cursor < settled:
            result.notes.append(
                f"{label}: the cursor stands at {_text(cursor)}: sessions the API shows up to "
                f"{_text(settled)} are due (loads may have stopped)"
            )
        kept = audit_range.now - timedelta(days=self.options.retention_days) + RETENTION_MARGIN
        first_kept = datetime.combine(kept.date() + timedelta(days=1), datetime.min.time(), UTC)
        start = max(audit_range.start, loaded_from, first_kept)
        end = min(audit_range.end, settled if cursor is None else max(cursor, settled))
        if start > end:
            result.notes.append(f"{label}: nothing due in the range (loaded from {_text(loaded_from)})")
        return day_slices(start, end)

    def _check_bot(
        self, counter: SessionCounter, bot: str, audit_range: AuditRange, result: AuditResult
    ) -> list[DayCheck]:
        """The checks of one bot: a request per stretch of up to 7 days, more only where they differ."""
        slices = self._due_slices(bot, audit_range, result)
        with warehouse_turn(self.pipeline), self.pipeline.sql_client() as sql:
            held = {piece.day: count_held(sql, bot, piece.start, piece.end) for piece in slices}
        api_count = counter.counter(bot)
        checks = []
        for group in stretches(slices):
            counts = api_day_counts(group, held, api_count)
            checks += [DayCheck(p.day, bot, p.start, p.end, counts[p.day], held[p.day]) for p in group]
        return checks

    def _repair(self, counter: SessionCounter, result: AuditResult) -> None:
        """Reload the ranges that differ, delete what the API calls invalid, and check again."""
        ranges: dict[str, list[tuple[datetime, datetime]]] = {}
        held_ids: dict[str, frozenset[str]] = {}
        with warehouse_turn(self.pipeline), self.pipeline.sql_client() as sql:
            for check in result.differing:
                found = ranges_to_reload(
                    check.start,
                    check.end,
                    check.api,
                    counter.counter(check.bot),
                    partial(count_held, sql, check.bot),
                    self.config.page_size,
                )
                ranges.setdefault(check.bot, []).extend(found)
                ids = {i for start, end in found for i in ids_held(sql, check.bot, start, end)}
                held_ids[check.bot] = held_ids.get(check.bot, frozenset()) | ids
        run = SourceRun()
        plan = RepairPlan(ranges=ranges, held_ids=held_ids)
        source = kore_sessions(run=run, clock=self.clock, repair=plan, **self.overrides)
        summary = load_sessions(self.pipeline, source, run)
        summary.check_complete()
        result.reloaded, result.deleted = summary.sessions_fetched, summary.sessions_deleted
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
                held = count_held(sql, check.bot, check.start, check.end)
                api = counter.count(check.bot, check.start, check.end)
                result.checks.append(replace(check, api=api, warehouse=held, repaired=True))

    def _record(self, checks: list[DayCheck], now: datetime) -> None:
        """Append the checks to `kore_audit` (made on first use)."""
        record_checks(
            self.pipeline,
            [
                (c.day, c.bot, c.api, c.warehouse, c.difference, c.start, c.end, now, c.repaired)
                for c in checks
            ],
        )


def _text(moment: datetime) -> str:
    """An instant as the API writes it, for messages."""
    return format_api_timestamp(moment)


