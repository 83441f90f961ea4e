"""What each `kore-sessions` command does, once its arguments are parsed."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import dlt
from kore_sessions.cli.folders import check_folders_on_the_way
from kore_sessions.output.console import recent_containment_lines
from kore_sessions.output.failures import EXIT_INCOMPLETE
from kore_sessions.output.redaction import known_secrets, redact
from kore_sessions.report import write_report
from kore_sessions.runtime.audit import (
    DEFAULT_AUDIT_DAYS,
    Auditor,
    AuditRange,
    AuditResult,
    NothingToAuditError,
)
from kore_sessions.runtime.leftovers import loaded_anything, working_folder_kept_only_if_used
from kore_sessions.runtime.lock import pipeline_lock, pipelines_folder
from kore_sessions.runtime.pipeline import (
    PIPELINE_NAME,
    check_dataset_name,
    check_pipeline_name,
    duckdb_file,
    inspect_command,
    load_sessions,
    make_pipeline,
    source_state,
)
from kore_sessions.runtime.working_folder import prune_loaded_jobs
from kore_sessions.source import ConfigError, SourceRun, kore_sessions, resolve_options
from kore_sessions.source.api.rules import ALL_BOTS_KEY
from kore_sessions.source.config import parse_date_setting
from kore_sessions.source.options import option_names
from kore_sessions.warehouse.dataset import pipelines_with_state
from kore_sessions.warehouse.export import export_marts
from kore_sessions.warehouse.model_files import ModelError
from kore_sessions.warehouse.model_settings import ModelSettings
from kore_sessions.warehouse.models import build_models, models_unbuildable
from kore_sessions.warehouse.turn import warehouse_turn

# File `kore-sessions report` writes when no --output is given.
DEFAULT_REPORT_FILE = "kore_containment_report.html"
# What a load's lock file says of its holder; the one command refused at once beside a run.
LOAD_PURPOSE = "kore-sessions load"


def require_warehouse(args: argparse.Namespace) -> None:
    """Fail (creating nothing) when the flags name a DuckDB file that is not there (a dataset
    name that cannot work is named first: a mistake in the command comes before its effect)."""
    check_dataset_name(args.dataset)
    if args.destination == "duckdb" and not duckdb_file(args.duckdb_file).exists():
        raise ModelError(
            f"no DuckDB file at {duckdb_file(args.duckdb_file)}: load sessions first, "
            "or name the file with --duckdb-file"
        )


@contextmanager
def reader_pipeline(args: argparse.Namespace) -> Iterator[dlt.Pipeline]:
    """The warehouse the flags name, through a pipeline kept in a temporary folder: a command
    that owns no pipeline (`models`, `report`, `export`, `forget`) needs no pipeline's lock (it
    takes the dataset's turn) and creates nothing in the pipelines folder."""
    require_warehouse(args)
    with tempfile.TemporaryDirectory(prefix="kore-sessions-") as folder:
        yield make_pipeline(args.destination, args.dataset, folder, args.duckdb_file, pipeline_name(args))


def warehouse_pipeline(
    args: argparse.Namespace, must_exist: bool = False, name: str | None = None
) -> dlt.Pipeline:
    """The pipeline of the warehouse the flags name (or pipeline `name` of it); with `must_exist`,
    a DuckDB file must be there."""
    if must_exist:
        require_warehouse(args)
    return make_pipeline(
        args.destination, args.dataset, args.pipelines_dir, args.duckdb_file, name or pipeline_name(args)
    )


def pipeline_name(args: argparse.Namespace) -> str:
    """The pipeline (partition) the command works on: `--pipeline-name`, else dlt's
    `pipeline_name` key (env `PIPELINE_NAME`), else the default one."""
    configured = dlt.config.get("pipeline_name")
    return check_pipeline_name(
        args.pipeline_name or (configured if isinstance(configured, str) else PIPELINE_NAME)
    )


def model_settings(args: argparse.Namespace) -> ModelSettings:
    """Model settings from [models] in config, with the command line's flags on top."""
    return ModelSettings.from_config(
        reporting_time_zone=args.reporting_time_zone,
        include_active=args.include_active,
        include_non_interactive=args.include_non_interactive,
        include_developer=args.include_developer,
        tag_names=args.tag_names,
        include_personal_data=args.include_personal_data,
    )


def source_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The source options given on the command line (the rest resolve from config)."""
    overrides = {key: getattr(args, key) for key in option_names() if getattr(args, key, None) is not None}
    if args.all_bots and args.bot_ids:
        raise ConfigError("give either --bot or --all-bots, not both")
    if args.all_bots:
        overrides["bot_ids"] = None
    elif args.bot_ids:
        overrides["all_bots"] = False
    if getattr(args, "end_date", None) and not getattr(args, "start_date", None):
        raise ConfigError("--end needs --start: a bounded backfill has both ends")
    return overrides


def command_load(args: argparse.Namespace) -> int:
    """`kore-sessions load`: one incremental run, or a bounded backfill.

    A run that fails before loading anything removes what it created (see `leftovers`).
    """
    settings = None if args.no_models else model_settings(args)
    run = SourceRun()
    source = kore_sessions(**source_overrides(args), run=run)
    opened: list[dlt.Pipeline] = []
    with pipeline_turn(args, LOAD_PURPOSE, lambda: loaded_anything(opened[0] if opened else None)):
        opened.append(warehouse_pipeline(args))
        summary = load_sessions(opened[0], source, run)
        for line in summary.lines():
            print(line)
        summary.check_complete()
        if args.pipelines_dir or pipeline_name(args) != PIPELINE_NAME:  # dlt's CLI looks elsewhere
            print(f"inspect: {inspect_command(opened[0])}")
        if settings is not None:
            build_after_load(opened[0], settings)
    return 0


@contextmanager
def pipeline_turn(
    args: argparse.Namespace,
    purpose: str,
    kept: Callable[[], bool] = lambda: False,
    name: str | None = None,
) -> Iterator[None]:
    """The pipeline's run lock for one command; if the command fails and `kept()` says nothing
    is worth keeping, the pipeline's working folder it made goes again (see `leftovers`).

    `load` is refused at once while another run of its pipeline holds the lock (two scheduled
    loads overlapping: the later has nothing to add); every other command waits for its turn.
    """
    name = name or pipeline_name(args)
    folder = pipelines_folder(args.pipelines_dir) / name
    lock = pipeline_lock(args.pipelines_dir, name, purpose, wait=purpose != LOAD_PURPOSE)
    # The lock first: a run that does not get it has made nothing, and cleans nothing up.
    with lock, working_folder_kept_only_if_used(folder, kept):
        yield


def build_after_load(pipeline: dlt.Pipeline, settings: ModelSettings) -> None:
    """Rebuild the models after a load, where the warehouse has sessions and a SQL client."""
    why_not = models_unbuildable(pipeline)
    if why_not:
        print(f"models: not built, {why_not}")
    else:
        for line in build_models(pipeline, settings).lines():
            print(line)


def command_audit(args: argparse.Namespace) -> int:
    """`kore-sessions audit`: API counts against the warehouse per UTC day and bot, for one
    pipeline or (`--all-pipelines`) every pipeline with state in the dataset."""
    if args.all_pipelines and args.pipeline_name:
        raise ConfigError("give either --pipeline-name or --all-pipelines, not both")
    overrides = source_overrides(args)
    options = resolve_options(**overrides)
    audit_range = audit_range_of(args, options.run_config().clock())
    if args.destination == "duckdb" and not duckdb_file(args.duckdb_file).exists():
        return nothing_to_audit(f"nothing to audit: no DuckDB file at {duckdb_file(args.duckdb_file)}")
    names = [pipeline_name(args)]
    if args.all_pipelines:
        with reader_pipeline(args) as reader:
            names = pipelines_with_state(reader, pipelines_folder(args.pipelines_dir)) or names
    results: list[tuple[str, AuditResult]] = []
    for name in names:
        try:
            results.append((name, audit_pipeline(args, name, overrides, audit_range)))
        except NothingToAuditError as exc:
            if not args.all_pipelines:
                return nothing_to_audit(str(exc))
            print(f"pipeline {name}: not a pipeline of kore-sessions bots, passed over")
    if not results:
        return nothing_to_audit("nothing to audit: no pipeline of the dataset has loaded sessions")
    for name, result in results:
        if args.all_pipelines:
            print(f"pipeline {name}:")
        for line in result.lines():
            print(line)
    audited = [result for _, result in results]
    unloaded = unaudited_bots(options.run_config().bot_keys, audited) if args.all_pipelines else []
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
    args: argparse.Namespace, name: str, overrides: dict[str, Any], audit_range: AuditRange
) -> AuditResult:
    """Audit one pipeline in its run lock; with `--all-pipelines`, the bots its state holds."""
    purpose = "kore-sessions audit --repair" if args.repair else "kore-sessions audit"
    opened: list[dlt.Pipeline] = []
    with pipeline_turn(args, purpose, lambda: loaded_anything(opened[0] if opened else None), name):
        opened.append(warehouse_pipeline(args, name=name))
        if args.all_pipelines:
            overrides = {**overrides, **bots_of(opened[0])}
        grace = timedelta(hours=args.grace_hours)
        auditor = Auditor(opened[0], resolve_options(**overrides), overrides, grace=grace)
        return auditor.run(audit_range, repair=args.repair)


def bots_of(pipeline: dlt.Pipeline) -> dict[str, Any]:
    """The source options naming the bots a pipeline's state holds (restored from the dataset
    when this machine has none)."""
    with warehouse_turn(pipeline):
        pipeline.sync_destination()
    bots = sorted(source_state(pipeline).get("bots", {}))
    if bots == [ALL_BOTS_KEY]:
        return {"all_bots": True, "bot_ids": None}
    return {"bot_ids": bots or None, "all_bots": False} if bots else {}


def audit_range_of(args: argparse.Namespace, now: datetime) -> AuditRange:
    """The range the audit flags name: --days N ending now, or --start [--end]."""
    if args.days is not None and (args.audit_start or args.audit_end):
        raise ConfigError("give either --days or --start/--end, not both")
    if not args.audit_start:
        if args.audit_end:
            raise ConfigError("--end needs --start")
        return AuditRange.last_days(args.days or DEFAULT_AUDIT_DAYS, now)
    start = parse_date_setting("--start", args.audit_start)
    end = parse_date_setting("--end", args.audit_end) or now
    if args.audit_end and len(args.audit_end.strip()) == len("YYYY-MM-DD"):
        end += timedelta(days=1) - timedelta(milliseconds=1)  # a day names the whole day
    if start is None or start > now:
        raise ConfigError(f"--start {args.audit_start} is in the future: nothing is due yet")
    if end < start:
        raise ConfigError(f"--end {args.audit_end} is before --start {args.audit_start}")
    return AuditRange(start, min(end, now), now)


def command_models(args: argparse.Namespace) -> int:
    """`kore-sessions models`: (re)build the models and print the last days' containment."""
    settings = model_settings(args)
    with reader_pipeline(args) as pipeline, warehouse_turn(pipeline):
        for line in build_models(pipeline, settings).lines():
            print(line)
        print()
        for line in recent_containment_lines(pipeline, args.days):
            print(line)
    return 0


def command_report(args: argparse.Namespace) -> int:
    """`kore-sessions report`: write the HTML report and print its path."""
    if Path(args.output).is_dir():
        raise ConfigError(f"{args.output} is a folder: give the HTML file to write (--output)")
    check_folders_on_the_way(Path(args.output).parent)
    with reader_pipeline(args) as pipeline, warehouse_turn(pipeline):  # not in a load's way
        written = write_report(pipeline, Path(args.output), days=args.days)
    print(written)
    return 0


def command_export(args: argparse.Namespace) -> int:
    """`kore-sessions export`: one file per mart in DIR; print each with its row count."""
    check_folders_on_the_way(Path(args.directory))
    with reader_pipeline(args) as pipeline, warehouse_turn(pipeline):  # marts as one build left them
        exported = export_marts(pipeline, Path(args.directory), args.file_format)
    for written in exported:
        print(f"{written.path}  {written.rows} rows")
    return 0


def command_forget(args: argparse.Namespace) -> int:
    """`kore-sessions forget`: erase the sessions of the users named, rebuild the marts."""
    from kore_sessions.warehouse.forget import forget_users

    with reader_pipeline(args) as pipeline:  # the dataset's turn only: beside any load
        forgotten = forget_users(pipeline, args.user_ids)
    for folder in pipelines_folder(args.pipelines_dir).glob("*/"):
        prune_loaded_jobs(folder)  # copies of loaded packages a crash kept, of every pipeline
    for line in forgotten.lines():
        print(line)
    return 0


def command_lookup(args: argparse.Namespace) -> int:
    """`kore-sessions lookup`: sessions by id or call id as the API has them, one JSON a line."""
    from kore_sessions.cli.lookup import by_call_ids, by_session_ids

    options = resolve_options(**source_overrides(args))
    config = options.run_config()
    with options.open_client(str(pipelines_folder(args.pipelines_dir))) as client:  # load's budget
        if args.call_ids:
            found = by_call_ids(
                client, config.bot_keys, args.call_ids, config.clock(), args.days, config.page_size
            )
        else:
            found = by_session_ids(client, config.bot_keys, args.session_ids)
    for session in found.sessions:
        print(json.dumps(session, sort_keys=True))
    if found.missing:
        print(found.missing_line(), file=sys.stderr)
        return EXIT_INCOMPLETE
    return 0


def command_demo(args: argparse.Namespace) -> int:
    """`kore-sessions demo`: sandbox API on loopback -> DuckDB file, with a report."""
    from kore_sessions.cli.demo import run_demo

    return run_demo(args.dir, days=args.days, per_day=args.per_day)
