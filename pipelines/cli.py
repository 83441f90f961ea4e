"""The `kore-sessions` command: load sessions, build the models, report, export, or run the demo."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import dlt
from dlt.common.configuration.exceptions import ConfigurationException
from dlt.pipeline.exceptions import PipelineStepFailed

from sources.kore_sessions import (
    ConfigError,
    ExtractStats,
    InvalidRecordError,
    KoreApiError,
    kore_sessions,
    resolve_options,
)
from sources.kore_sessions.config import parse_date_setting
from sources.kore_sessions.settings import SESSIONS_TABLE

from .audit import DEFAULT_AUDIT_DAYS, Auditor, AuditRange
from .export import EXPORT_FORMATS, export_marts
from .kore_sessions_pipeline import (
    DEFAULT_DATASET,
    DEFAULT_DUCKDB_FILE,
    PIPELINE_NAME,
    count_rows,
    duckdb_file,
    load_sessions,
    make_pipeline,
)
from .lock import RunLockedError, pipeline_lock
from .models import ModelError, ModelSettings, build_models, recent_containment_lines
from .redaction import RedactingFilter, known_secrets, redact
from .report import ReportError, write_report

# File `kore-sessions report` writes when no --output is given.
DEFAULT_REPORT_FILE = "kore_containment_report.html"
# Exit codes: 0 success, 1 the run failed, 2 the configuration or the command is wrong,
# 3 the audit found (or left) differences.
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_DIFFERENCES = 3
# Errors a person can act on from their message alone (no exception name needed).
PLAIN_ERRORS = (KoreApiError, InvalidRecordError, ModelError, ReportError, RunLockedError)

logger = logging.getLogger("kore_sessions")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(quiet=getattr(args, "quiet", False))
    return run_guarded(args.handler, args)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="kore-sessions", description="Load Kore.ai bot sessions into a warehouse."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    load = commands.add_parser("load", help="load sessions incrementally (or a bounded range)")
    load.add_argument("--start", dest="start_date", help="where the first backfill begins")
    load.add_argument("--end", dest="end_date", help="with --start: bounded backfill, no state")
    _add_source_arguments(load)
    _add_warehouse_arguments(load)
    _add_model_arguments(load)
    load.add_argument("--no-models", action="store_true", help="do not rebuild the SQL models")
    load.set_defaults(handler=command_load)
    audit = commands.add_parser("audit", help="compare the warehouse with the API's counts per day and bot")
    audit.add_argument(
        "--days", type=positive_int, help=f"the last N UTC days, today included ({DEFAULT_AUDIT_DAYS})"
    )
    audit.add_argument("--start", dest="audit_start", help="first day (YYYY-MM-DD, UTC) or instant")
    audit.add_argument("--end", dest="audit_end", help="last day (YYYY-MM-DD, UTC, whole) or instant")
    audit.add_argument("--repair", action="store_true", help="reload the ranges that differ")
    _add_source_arguments(audit)
    _add_warehouse_arguments(audit)
    audit.set_defaults(handler=command_audit)
    models = commands.add_parser("models", help="build or refresh the SQL models in the dataset")
    _add_warehouse_arguments(models)
    _add_model_arguments(models)
    models.add_argument("--days", type=positive_int, default=7, help="days shown in the printed table")
    models.set_defaults(handler=command_models)
    report = commands.add_parser("report", help="write a self-contained HTML containment report")
    _add_warehouse_arguments(report)
    report.add_argument("--output", default=DEFAULT_REPORT_FILE, help="HTML file to write")
    report.add_argument("--days", type=positive_int, default=30, help="days the report covers")
    report.set_defaults(handler=command_report)
    export = commands.add_parser("export", help="write the marts as Parquet or CSV files")
    _add_warehouse_arguments(export)
    export.add_argument("--format", choices=EXPORT_FORMATS, default="parquet", dest="file_format")
    export.add_argument("directory", help="folder to write <mart>.<format> files into")
    export.set_defaults(handler=command_export)
    demo = commands.add_parser("demo", help="run the whole pipeline against a local sandbox API")
    demo.add_argument("--dir", default="demo", help="folder for the DuckDB file and dlt state")
    demo.add_argument("--days", type=int, default=35, help="days of generated sessions")
    demo.add_argument("--per-day", type=int, default=60, help="sessions per bot and day")
    demo.add_argument("--quiet", action="store_true", help="no progress lines")
    demo.set_defaults(handler=command_demo)
    return parser


def _add_source_arguments(load: argparse.ArgumentParser) -> None:
    """Flags of the source (`load`, `audit`); each overrides its key in [sources.kore_sessions]."""
    load.add_argument("--host", help="base URL, e.g. https://platform.kore.ai")
    load.add_argument("--bot", action="append", dest="bot_ids", help="bot id (repeatable)")
    load.add_argument("--all-bots", action="store_true", default=None, help="admin route")
    load.add_argument("--page-size", type=int, help="sessions per request")
    load.add_argument("--window-hours", type=float, help="span of one request, under 168")
    load.add_argument("--lookback-minutes", type=float, help="re-read behind the cursor")
    load.add_argument("--requests-per-minute", type=int, help="client-side limit per bot")
    load.add_argument("--requests-per-hour", type=int, help="client-side limit per bot")
    load.add_argument("--max-in-flight", type=int, help="requests of one bot at once (default 4)")
    load.add_argument("--quiet", action="store_true", help="no progress lines")


def _add_warehouse_arguments(command: argparse.ArgumentParser) -> None:
    """Flags saying which warehouse and dataset a command works on."""
    command.add_argument("--destination", default="duckdb", help="dlt destination (default duckdb)")
    command.add_argument("--dataset", default=DEFAULT_DATASET, help="dataset of the sessions and models")
    command.add_argument("--pipelines-dir", help="where dlt keeps pipeline state")
    command.add_argument("--duckdb-file", help=f"DuckDB database file (default ./{DEFAULT_DUCKDB_FILE})")


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return value


def warehouse_pipeline(args: argparse.Namespace, must_exist: bool = False) -> dlt.Pipeline:
    """The pipeline of the warehouse the flags name; with `must_exist`, a DuckDB file must be there."""
    if must_exist and args.destination == "duckdb" and not duckdb_file(args.duckdb_file).exists():
        raise ModelError(
            f"no DuckDB file at {duckdb_file(args.duckdb_file)}: load sessions first, "
            "or name the file with --duckdb-file"
        )
    return make_pipeline(args.destination, args.dataset, args.pipelines_dir, args.duckdb_file)


def _add_model_arguments(command: argparse.ArgumentParser) -> None:
    """Flags of the model settings; each overrides its key in [models]."""
    command.add_argument("--time-zone", dest="reporting_time_zone", help="reporting time zone (IANA)")
    for scope in ("active", "non-interactive", "developer"):
        command.add_argument(
            f"--include-{scope}", action="store_true", default=None, help=f"count {scope} sessions too"
        )


def model_settings(args: argparse.Namespace) -> ModelSettings:
    """Model settings from [models] in config, with the command line's flags on top."""
    return ModelSettings.from_config(
        reporting_time_zone=args.reporting_time_zone,
        include_active=args.include_active,
        include_non_interactive=args.include_non_interactive,
        include_developer=args.include_developer,
    )


def source_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The source options given on the command line (the rest resolve from config)."""
    keys = (
        "host",
        "bot_ids",
        "all_bots",
        "start_date",
        "end_date",
        "page_size",
        "window_hours",
        "lookback_minutes",
        "requests_per_minute",
        "requests_per_hour",
        "max_in_flight",
    )
    overrides = {key: getattr(args, key) for key in keys if getattr(args, key, None) is not None}
    if args.all_bots:
        overrides["bot_ids"] = None
    elif args.bot_ids:
        overrides["all_bots"] = False
    if getattr(args, "end_date", None) and not getattr(args, "start_date", None):
        raise ConfigError("--end needs --start: a bounded backfill has both ends")
    return overrides


def command_load(args: argparse.Namespace) -> int:
    """`kore-sessions load`: one incremental run, or a bounded backfill."""
    settings = None if args.no_models else model_settings(args)
    stats = ExtractStats()
    source = kore_sessions(**source_overrides(args), stats=stats)
    with pipeline_lock(args.pipelines_dir, PIPELINE_NAME, "kore-sessions load"):
        pipeline = warehouse_pipeline(args)
        summary = load_sessions(pipeline, source, stats)
        for line in summary.lines():
            print(line)
        if settings is None:
            return 0
        loaded = count_rows(pipeline, SESSIONS_TABLE)
        if loaded is None:
            print(f"models: not built, destination {args.destination} has no SQL client")
        elif loaded == 0:
            print("models: not built, no sessions loaded yet")
        else:
            for line in build_models(pipeline, settings).lines():
                print(line)
    return 0


def command_audit(args: argparse.Namespace) -> int:
    """`kore-sessions audit`: API counts against the warehouse per UTC day and bot."""
    overrides = source_overrides(args)
    options = resolve_options(**overrides)
    audit_range = audit_range_of(args, options.run_config().clock())
    purpose = "kore-sessions audit --repair" if args.repair else "kore-sessions audit"
    with pipeline_lock(args.pipelines_dir, PIPELINE_NAME, purpose):
        pipeline = warehouse_pipeline(args, must_exist=True)
        result = Auditor(pipeline, options, overrides).run(audit_range, repair=args.repair)
    for line in result.lines():
        print(line)
    return EXIT_DIFFERENCES if result.differing else 0


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
    with pipeline_lock(args.pipelines_dir, PIPELINE_NAME, "kore-sessions models"):
        pipeline = warehouse_pipeline(args, must_exist=True)
        for line in build_models(pipeline, model_settings(args)).lines():
            print(line)
    print()
    for line in recent_containment_lines(pipeline, args.days):
        print(line)
    return 0


def command_report(args: argparse.Namespace) -> int:
    """`kore-sessions report`: write the HTML report and print its path."""
    pipeline = warehouse_pipeline(args, must_exist=True)
    print(write_report(pipeline, Path(args.output), days=args.days))
    return 0


def command_export(args: argparse.Namespace) -> int:
    """`kore-sessions export`: one file per mart in DIR; print each with its row count."""
    pipeline = warehouse_pipeline(args, must_exist=True)
    for exported in export_marts(pipeline, Path(args.directory), args.file_format):
        print(f"{exported.path}  {exported.rows} rows")
    return 0


def command_demo(args: argparse.Namespace) -> int:
    """`kore-sessions demo`: sandbox API on loopback -> DuckDB file, with a report."""
    from .demo import run_demo

    return run_demo(args.dir, days=args.days, per_day=args.per_day)


def run_guarded(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a command; turn any failure into one redacted line on stderr and an exit code."""
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("kore-sessions: interrupted; the next run continues from the last load", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:  # every failure ends as one line, never a traceback with secrets
        code, message = describe_failure(exc)
        logger.debug("failure", exc_info=True)
        print(f"kore-sessions: error: {redact(message, known_secrets())}", file=sys.stderr)
        return code


def describe_failure(exc: BaseException) -> tuple[int, str]:
    """Exit code and one-line reason of a failure, unwrapping dlt's step errors."""
    root = _root_cause(exc)
    if isinstance(root, ConfigError | ConfigurationException):
        return EXIT_CONFIG, _one_line(root)
    if isinstance(root, PLAIN_ERRORS):
        return EXIT_FAILED, _one_line(root)
    step = exc.step if isinstance(exc, PipelineStepFailed) else None
    where = f"{step} step failed: " if step else ""
    return EXIT_FAILED, where + f"{type(root).__name__}: {_one_line(root)}"


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost error a person can act on."""
    seen: set[int] = set()
    current = exc
    while id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (ConfigError, *PLAIN_ERRORS)):
            return current
        inner = current.__cause__ or current.__context__
        if inner is None:
            return current
        current = inner
    return current


def _one_line(exc: BaseException) -> str:
    """The message of an error folded onto one line."""
    return " ".join(str(exc).split()) or type(exc).__name__


def setup_logging(quiet: bool) -> None:
    """Progress lines on stderr, with secrets redacted."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[kore-sessions] %(message)s"))
    handler.addFilter(RedactingFilter())
    logger.handlers[:] = [handler]
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False


if __name__ == "__main__":
    sys.exit(main())
