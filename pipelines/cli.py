"""The `kore-sessions` command: load sessions, build the models, report, export, or run the demo."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import NoReturn

from dlt.common.configuration.exceptions import ConfigurationException
from dlt.pipeline.exceptions import PipelineStepFailed

from sources.kore_sessions import (
    ConfigError,
    InvalidRecordError,
    KoreApiError,
)
from sources.kore_sessions.options import option_infos

from .audit import DEFAULT_AUDIT_DAYS
from .commands import (
    DEFAULT_REPORT_FILE,
    EXIT_CONFIG,
    EXIT_FAILED,
    command_audit,
    command_demo,
    command_export,
    command_load,
    command_models,
    command_report,
)
from .export import EXPORT_FORMATS
from .kore_sessions_pipeline import (
    DEFAULT_DATASET,
    DEFAULT_DUCKDB_FILE,
)
from .lock import RunLockedError
from .models import ModelError
from .redaction import RedactingFilter, known_secrets, redact
from .report import ReportError

# Errors a person can act on from their message alone (no exception name needed).
PLAIN_ERRORS = (KoreApiError, InvalidRecordError, ModelError, ReportError, RunLockedError)

logger = logging.getLogger("kore_sessions")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(quiet=getattr(args, "quiet", False))
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
    load = commands.add_parser("load", help="load sessions incrementally (or a bounded range)")
    _add_source_arguments(load, with_dates=True)
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


def _add_model_arguments(command: argparse.ArgumentParser) -> None:
    """Flags of the model settings; each overrides its key in [models]."""
    command.add_argument("--time-zone", dest="reporting_time_zone", help="reporting time zone (IANA)")
    for scope in ("active", "non-interactive", "developer"):
        command.add_argument(
            f"--include-{scope}", action="store_true", default=None, help=f"count {scope} sessions too"
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


def package_version() -> str:
    """The installed version of kore-sessions."""
    try:
        return version("kore-sessions")
    except PackageNotFoundError:
        return "unknown (not installed)"


if __name__ == "__main__":
    sys.exit(main())
