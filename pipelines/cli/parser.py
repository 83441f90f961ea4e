"""The `kore-sessions` command: load sessions, build the models, report, export, or run the demo."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any, NoReturn

from kore_sessions.cli.audit_command import command_audit
from kore_sessions.cli.command_settings import WarehouseSettings
from kore_sessions.cli.commands import (
    command_demo,
    command_export,
    command_forget,
    command_load,
    command_lookup,
    command_models,
    command_report,
)
from kore_sessions.cli.flags import (
    add_model_flags,
    add_quiet_flag,
    add_source_flags,
    an_id,
    non_negative_float,
    positive_int,
)
from kore_sessions.output.failures import (
    EXIT_CONFIG,
    EXIT_FAILED,
    LOGGER_NAME,
    describe_failure,
    setup_logging,
)
from kore_sessions.output.redaction import known_secrets, redact
from kore_sessions.report import DEFAULT_REPORT_FILE
from kore_sessions.runtime.audit import DEFAULT_AUDIT_DAYS, DEFAULT_GRACE_HOURS
from kore_sessions.source.heap import tune_process_heap
from kore_sessions.warehouse.export import EXPORT_FORMATS
from kore_sessions.warehouse.turn import TurnWait

logger = logging.getLogger(LOGGER_NAME)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code."""
    tune_process_heap()
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(quiet=getattr(args, "quiet", False))
    TurnWait.set(WarehouseSettings.from_arguments(args).turn_timeout)
    return run_guarded(args.handler, args)


class OneLineParser(argparse.ArgumentParser):
    """An argument parser that answers misuse in the one-line form, with exit code 2."""

    def error(self, message: str) -> NoReturn:
        """Print `kore-sessions: error: ...` (with where to look for help) and exit 2."""
        self.exit(EXIT_CONFIG, f"kore-sessions: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = OneLineParser(prog="kore-sessions", description="Load Kore.ai bot sessions into a warehouse.")
    parser.add_argument("--version", action="version", version=f"kore-sessions {package_version()}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for add in (_load, _audit, _models, _report, _export, _forget, _lookup, _demo):
        add(commands)
    return parser


def _load(commands: Any) -> None:
    """`load`: one incremental run, or a bounded backfill."""
    load = commands.add_parser("load", help="load sessions incrementally (or a bounded range)")
    add_source_flags(load, with_dates=True)
    WarehouseSettings.add_flags(load)
    add_model_flags(load)
    load.add_argument("--no-models", action="store_true", help="do not rebuild the SQL models")
    load.set_defaults(handler=command_load)


def _audit(commands: Any) -> None:
    """`audit`: the warehouse against the API's counts per day and bot."""
    audit = commands.add_parser("audit", help="compare the warehouse with the API's counts per day and bot")
    audit.add_argument(
        "--days",
        type=positive_int,
        help=f"the last N UTC days, today included (default {DEFAULT_AUDIT_DAYS})",
    )
    audit.add_argument("--start", dest="audit_start", help="first day (YYYY-MM-DD, UTC) or instant")
    audit.add_argument("--end", dest="audit_end", help="last day (YYYY-MM-DD, UTC, whole) or instant")
    audit.add_argument("--repair", action="store_true", help="reload the ranges that differ")
    audit.add_argument(
        "--grace-hours",
        type=non_negative_float,
        default=DEFAULT_GRACE_HOURS,
        help="sessions the API shows older than this must be loaded, wherever the cursor stands "
        f"(default {DEFAULT_GRACE_HOURS:g})",
    )
    audit.add_argument(
        "--all-pipelines",
        action="store_true",
        help="audit every pipeline (partition) with state in the dataset, each for its own bots",
    )
    add_source_flags(audit)
    WarehouseSettings.add_flags(audit)
    audit.set_defaults(handler=command_audit)


def _models(commands: Any) -> None:
    """`models`: build or refresh the SQL models."""
    models = commands.add_parser("models", help="build or refresh the SQL models in the dataset")
    WarehouseSettings.add_flags(models)
    add_model_flags(models)
    models.add_argument(
        "--days", type=positive_int, default=7, help="days shown in the printed table (default 7)"
    )
    models.set_defaults(handler=command_models)


def _report(commands: Any) -> None:
    """`report`: the HTML containment report."""
    report = commands.add_parser("report", help="write a self-contained HTML containment report")
    WarehouseSettings.add_flags(report)
    report.add_argument(
        "--output", default=DEFAULT_REPORT_FILE, help=f"HTML file to write (default {DEFAULT_REPORT_FILE})"
    )
    report.add_argument("--days", type=positive_int, default=30, help="days the report covers (default 30)")
    report.set_defaults(handler=command_report)


def _export(commands: Any) -> None:
    """`export`: the marts as files."""
    export = commands.add_parser("export", help="write the marts as Parquet or CSV files")
    WarehouseSettings.add_flags(export)
    export.add_argument(
        "--format",
        choices=EXPORT_FORMATS,
        default="parquet",
        dest="file_format",
        help="file format (default parquet)",
    )
    export.add_argument("directory", help="folder to write <mart>.<format> files into")
    export.set_defaults(handler=command_export)


def _forget(commands: Any) -> None:
    """`forget`: erase one person's sessions."""
    forget = commands.add_parser(
        "forget", help="erase a person's sessions from the warehouse (erasure requests)"
    )
    forget.add_argument(
        "--user-id", dest="user_ids", action="append", required=True, help="the user id (repeatable)"
    )
    WarehouseSettings.add_flags(forget)
    forget.set_defaults(handler=command_forget)


def _lookup(commands: Any) -> None:
    """`lookup`: sessions as the API has them now."""
    lookup = commands.add_parser("lookup", help="print sessions as the API has them now, loading nothing")
    wanted = lookup.add_mutually_exclusive_group(required=True)
    wanted.add_argument(
        "--session-id", dest="session_ids", action="append", type=an_id, help="a session id (repeatable)"
    )
    wanted.add_argument(
        "--call-id",
        dest="call_ids",
        action="append",
        type=an_id,
        help="an external voice call id, the API's callId filter (repeatable)",
    )
    lookup.add_argument(
        "--days", type=positive_int, default=7, help="days a call id is looked for in (default 7)"
    )
    budget_help = "where the rate budget is kept (default dlt's pipelines folder)"
    WarehouseSettings.add_flags(lookup, only=["pipelines_dir"], helps={"pipelines_dir": budget_help})
    add_source_flags(lookup)
    lookup.set_defaults(handler=command_lookup)


def _demo(commands: Any) -> None:
    """`demo`: the whole pipeline against the sandbox."""
    demo = commands.add_parser("demo", help="run the whole pipeline against a local sandbox API")
    demo.add_argument("--dir", default="demo", help="folder for the DuckDB file and dlt state (default demo)")
    demo.add_argument("--days", type=positive_int, default=35, help="days of generated sessions (default 35)")
    demo.add_argument(
        "--per-day", type=positive_int, default=60, help="sessions per bot and day (default 60)"
    )
    add_quiet_flag(demo)
    demo.set_defaults(handler=command_demo)


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


def package_version() -> str:
    """The installed version of kore-sessions."""
    try:
        return version("kore-sessions")
    except PackageNotFoundError:
        return "unknown (not installed)"


if __name__ == "__main__":
    sys.exit(main())
