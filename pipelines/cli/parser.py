"""The `kore-sessions` command: load sessions, build the models, report, export, or run the demo."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any, NoReturn

from kore_sessions.cli.commands import (
    DEFAULT_REPORT_FILE,
    command_audit,
    command_demo,
    command_export,
    command_forget,
    command_load,
    command_lookup,
    command_models,
    command_report,
)
from kore_sessions.output.failures import (
    EXIT_CONFIG,
    EXIT_FAILED,
    LOGGER_NAME,
    describe_failure,
    setup_logging,
)
from kore_sessions.output.redaction import known_secrets, redact
from kore_sessions.runtime.audit import DEFAULT_AUDIT_DAYS, DEFAULT_GRACE_HOURS
from kore_sessions.runtime.pipeline import (
    DEFAULT_DATASET,
    DEFAULT_DUCKDB_FILE,
)
from kore_sessions.source.heap import tune_process_heap
from kore_sessions.source.options import option_infos
from kore_sessions.warehouse.export import EXPORT_FORMATS
from kore_sessions.warehouse.turn import DEFAULT_TURN_TIMEOUT, TurnWait

logger = logging.getLogger(LOGGER_NAME)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code."""
    tune_process_heap()
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(quiet=getattr(args, "quiet", False))
    TurnWait.set(getattr(args, "turn_timeout", None))
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
    _add_source_arguments(load, with_dates=True)
    _add_warehouse_arguments(load)
    _add_model_arguments(load)
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
    _add_source_arguments(audit)
    _add_warehouse_arguments(audit)
    audit.set_defaults(handler=command_audit)


def _models(commands: Any) -> None:
    """`models`: build or refresh the SQL models."""
    models = commands.add_parser("models", help="build or refresh the SQL models in the dataset")
    _add_warehouse_arguments(models)
    _add_model_arguments(models)
    models.add_argument(
        "--days", type=positive_int, default=7, help="days shown in the printed table (default 7)"
    )
    models.set_defaults(handler=command_models)


def _report(commands: Any) -> None:
    """`report`: the HTML containment report."""
    report = commands.add_parser("report", help="write a self-contained HTML containment report")
    _add_warehouse_arguments(report)
    report.add_argument(
        "--output", default=DEFAULT_REPORT_FILE, help=f"HTML file to write (default {DEFAULT_REPORT_FILE})"
    )
    report.add_argument("--days", type=positive_int, default=30, help="days the report covers (default 30)")
    report.set_defaults(handler=command_report)


def _export(commands: Any) -> None:
    """`export`: the marts as files."""
    export = commands.add_parser("export", help="write the marts as Parquet or CSV files")
    _add_warehouse_arguments(export)
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
    _add_warehouse_arguments(forget)
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
    lookup.add_argument(
        "--pipelines-dir", help="where the rate budget is kept (default dlt's pipelines folder)"
    )
    _add_source_arguments(lookup)
    lookup.set_defaults(handler=command_lookup)


def _demo(commands: Any) -> None:
    """`demo`: the whole pipeline against the sandbox."""
    demo = commands.add_parser("demo", help="run the whole pipeline against a local sandbox API")
    demo.add_argument("--dir", default="demo", help="folder for the DuckDB file and dlt state (default demo)")
    demo.add_argument("--days", type=positive_int, default=35, help="days of generated sessions (default 35)")
    demo.add_argument(
        "--per-day", type=positive_int, default=60, help="sessions per bot and day (default 60)"
    )
    demo.add_argument("--quiet", action="store_true", help="no progress lines")
    demo.set_defaults(handler=command_demo)


def _add_source_arguments(command: argparse.ArgumentParser, with_dates: bool = False) -> None:
    """The source's options as flags (`load`, `audit`): one per option of `KoreSessionsOptions`,
    named after it, each overriding its key in [sources.kore_sessions]; `--start`/`--end` set
    `start_date`/`end_date` on `load` only (on `audit` they name its range)."""
    renamed = {"bot_ids": "--bot", "start_date": "--start", "end_date": "--end"}
    for option in option_infos():
        if option.name in ("start_date", "end_date") and not with_dates:
            continue
        flag = renamed.get(option.name, "--" + option.name.replace("_", "-"))
        shown = f" (default {option.default})" if option.default not in (None, False) else ""
        text = f"{option.help}{shown}".replace("%", "%%")
        if option.kind is bool:
            command.add_argument(flag, dest=option.name, action="store_true", default=None, help=text)
        elif option.name == "bot_ids":
            command.add_argument(flag, dest=option.name, action="append", help=text + " (repeatable)")
        else:
            command.add_argument(flag, dest=option.name, type=option.kind, help=text)
    command.add_argument("--quiet", action="store_true", help="no progress lines")


def _add_warehouse_arguments(command: argparse.ArgumentParser) -> None:
    """Flags saying which warehouse and dataset a command works on."""
    command.add_argument("--destination", default="duckdb", help="dlt destination (default duckdb)")
    command.add_argument("--dataset", default=DEFAULT_DATASET, help="dataset of the sessions and models")
    command.add_argument(
        "--pipeline-name",
        help="the pipeline (a partition of bots): its own state, lock and staging dataset (default "
        "dlt's pipeline_name key, else kore_sessions)",
    )
    command.add_argument("--pipelines-dir", help="where dlt keeps pipeline state")
    command.add_argument("--duckdb-file", help=f"DuckDB database file (default ./{DEFAULT_DUCKDB_FILE})")
    command.add_argument(
        "--turn-timeout",
        type=non_negative_float,
        help="seconds to wait while another process loads into the dataset or builds its models "
        f"(default {DEFAULT_TURN_TIMEOUT:g})",
    )


def an_id(text: str) -> str:
    """An argparse type: an id, not blank (a blank `callId` would filter nothing)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be blank")
    return text.strip()


def non_negative_float(text: str) -> float:
    """An argparse type: a number of at least 0."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be a number of at least 0, not {text!r}")
    return value


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return value


def _add_model_arguments(command: argparse.ArgumentParser) -> None:
    """Flags of the model settings; each overrides its key in [models]."""
    command.add_argument(
        "--time-zone", dest="reporting_time_zone", help="reporting time zone, IANA (default UTC)"
    )
    for scope in ("active", "non-interactive", "developer"):
        command.add_argument(
            f"--include-{scope}", action="store_true", default=None, help=f"count {scope} sessions too"
        )
    command.add_argument(
        "--tag",
        dest="tag_names",
        action="append",
        help="a tag the tag mart slices by (repeatable; "
        "default: tags with few distinct values whose name is not personal)",
    )
    command.add_argument(
        "--include-personal-data",
        action="store_true",
        default=None,
        help="keep user_id and call_id in fct_sessions (NULL by default)",
    )


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
