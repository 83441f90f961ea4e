"""`kore-sessions audit`: the warehouse against the API's counts per UTC day and bot: sessions,
and messages when the pipeline loads them (each check names its resource)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import dlt
from kore_sessions.cli.command_settings import SourceSettings, WarehouseSettings
from kore_sessions.cli.commands import pipeline_turn
from kore_sessions.output.failures import EXIT_INCOMPLETE
from kore_sessions.output.redaction import known_secrets, redact
from kore_sessions.runtime.audit import (
    DEFAULT_AUDIT_DAYS,
    Auditor,
    AuditRange,
    AuditResult,
    NothingToAuditError,
)
from kore_sessions.runtime.leftovers import loaded_anything
from kore_sessions.runtime.pipeline import duckdb_file, source_state
from kore_sessions.source import ConfigError, resolve_options
from kore_sessions.source.api.rules import ALL_BOTS_KEY
from kore_sessions.source.config import parse_date_setting
from kore_sessions.warehouse.dataset import pipelines_with_state
from kore_sessions.warehouse.turn import warehouse_turn


@dataclass(frozen=True)
class AuditRequest:
    """What the audit's own flags ask for.

    Attributes:
        days: `--days`: the last N UTC days (None: not given).
        start: `--start`: the first day or instant (None: not given).
        end: `--end`: the last day (whole) or instant (None: not given).
        repair: `--repair`: reload what differs.
        grace: `--grace-hours`: how old a session must be to be due.
        all_pipelines: `--all-pipelines`: every pipeline with state in the dataset.
    """

    days: int | None
    start: str | None
    end: str | None
    repair: bool
    grace: timedelta
    all_pipelines: bool

    @classmethod
    def from_arguments(cls, args: argparse.Namespace) -> AuditRequest:
        """The request the flags make."""
        return cls(
            args.days,
            args.audit_start,
            args.audit_end,
            args.repair,
            timedelta(hours=args.grace_hours),
            args.all_pipelines,
        )

    @property
    def purpose(self) -> str:
        """What the lock file says of the audit holding it."""
        return "kore-sessions audit --repair" if self.repair else "kore-sessions audit"

    def range(self, now: datetime) -> AuditRange:
        """The range the flags name: --days N ending now, or --start [--end]."""
        if self.days is not None and (self.start or self.end):
            raise ConfigError("give either --days or --start/--end, not both")
        if not self.start:
            if self.end:
                raise ConfigError("--end needs --start")
            return AuditRange.last_days(self.days or DEFAULT_AUDIT_DAYS, now)
        start = parse_date_setting("--start", self.start)
        end = parse_date_setting("--end", self.end) or now
        if self.end and len(self.end.strip()) == len("YYYY-MM-DD"):
            end += timedelta(days=1) - timedelta(milliseconds=1)  # a day names the whole day
        if start is None or start > now:
            raise ConfigError(f"--start {self.start} is in the future: nothing is due yet")
        if end < start:
            raise ConfigError(f"--end {self.end} is before --start {self.start}")
        return AuditRange(start, min(end, now), now)


def command_audit(args: argparse.Namespace) -> int:
    """`kore-sessions audit`: API counts against the warehouse per UTC day, bot and resource, for
    one pipeline or (`--all-pipelines`) every pipeline with state in the dataset; exit 3 while
    any check of any resource differs."""
    request, warehouse = AuditRequest.from_arguments(args), WarehouseSettings.from_arguments(args)
    if request.all_pipelines and warehouse.pipeline_name:
        raise ConfigError("give either --pipeline-name or --all-pipelines, not both")
    source = SourceSettings.from_arguments(args)
    options = source.options()
    audit_range = request.range(options.run_config().clock())
    if warehouse.destination == "duckdb" and not duckdb_file(warehouse.duckdb_file).exists():
        return nothing_to_audit(f"nothing to audit: no DuckDB file at {duckdb_file(warehouse.duckdb_file)}")
    names = [warehouse.name]
    if request.all_pipelines:
        with warehouse.reader() as reader:
            names = pipelines_with_state(reader, warehouse.folder) or names
    results: list[tuple[str, AuditResult]] = []
    for name in names:
        try:
            results.append((name, audit_pipeline(request, warehouse, name, source, audit_range)))
        except NothingToAuditError as exc:
            if not request.all_pipelines:
                return nothing_to_audit(str(exc))
            print(f"pipeline {name}: not a pipeline of kore-sessions bots, passed over")
    if not results:
        return nothing_to_audit("nothing to audit: no pipeline of the dataset has loaded sessions")
    for name, result in results:
        if request.all_pipelines:
            print(f"pipeline {name}:")
        for line in result.lines():
            print(line)
    audited = [result for _, result in results]
    unloaded = unaudited_bots(options.run_config().bot_keys, audited) if request.all_pipelines else []
    if unloaded:
        print(f"audit: configured but loaded by no pipeline (every session missing): {', '.join(unloaded)}")
    return EXIT_INCOMPLETE if unloaded or any(result.differing for result in audited) else 0


def nothing_to_audit(reason: str) -> int:
    """Say in one line why nothing was checked; the exit code says the answer is incomplete."""
    print(f"kore-sessions: {redact(reason, known_secrets())}", file=sys.stderr)
    return EXIT_INCOMPLETE


def unaudited_bots(configured: tuple[str, ...], results: list[AuditResult]) -> list[str]:
    """Configured bots that no audited pipeline holds."""
    audited = {bot for result in results for bot in result.bots}
    return sorted(set(configured) - audited)


def audit_pipeline(
    request: AuditRequest,
    warehouse: WarehouseSettings,
    name: str,
    source: SourceSettings,
    audit_range: AuditRange,
) -> AuditResult:
    """Audit one pipeline in its run lock; with `--all-pipelines`, the bots its state holds."""
    opened: list[dlt.Pipeline] = []
    kept = lambda: loaded_anything(opened[0] if opened else None)  # noqa: E731
    with pipeline_turn(warehouse, request.purpose, kept, name):
        opened.append(warehouse.pipeline(name))
        overrides = dict(source.overrides)
        if request.all_pipelines:
            overrides.update(bots_of(opened[0]))
        auditor = Auditor(opened[0], resolve_options(**overrides), overrides, grace=request.grace)
        return auditor.run(audit_range, repair=request.repair)


def bots_of(pipeline: dlt.Pipeline) -> dict[str, Any]:
    """The source options naming the bots a pipeline's state holds (restored from the dataset
    when this machine has none)."""
    with warehouse_turn(pipeline):
        pipeline.sync_destination()
    bots = sorted(source_state(pipeline).get("bots", {}))
    if bots == [ALL_BOTS_KEY]:
        return {"all_bots": True, "bot_ids": None}
    return {"bot_ids": bots or None, "all_bots": False} if bots else {}
