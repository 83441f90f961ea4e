"""Failures as a person reads them: one line, the exit code the README promises, no secret
and no value of a session (see `redaction`).

Used by the command line and by the orchestration, so it imports nothing heavy.
"""

from __future__ import annotations

import logging
import re
import sys

from dlt.common.configuration.exceptions import ConfigFieldMissingException, ConfigurationException
from dlt.common.destination.exceptions import UnknownDestinationModule
from dlt.pipeline.exceptions import PipelineStepFailed
from kore_sessions.output.redaction import RedactingFilter, known_secrets, redact
from kore_sessions.source import ConfigError, InvalidRecordError, KoreApiError

# Exit codes: 0 success, 1 the run failed, 2 the configuration or the command is wrong,
# 3 the command ran but its answer is incomplete: the audit found (or left) differences, a
# lookup did not find every id (scripts tell "not there" from "could not ask").
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_INCOMPLETE = 3
# The logger every progress line goes through.
LOGGER_NAME = "kore_sessions"
# dlt's own logger (its warnings reach the same stderr), named after dlt's run context.
DLT_LOGGER_NAME = "dlt"


class ActionableError(Exception):
    """An error whose message alone tells a person what to do (no exception name needed)."""


# DuckDB's answer when another process holds its file (a BI tool, a shell, another load).
DUCKDB_HELD = re.compile(r'Could not set lock on file "(?P<file>[^"]+)".*?\(PID (?P<pid>\d+)\)', re.DOTALL)
# Errors a person can act on from their message alone (no exception name needed).
PLAIN_ERRORS = (KoreApiError, InvalidRecordError, ActionableError)


def describe_failure(exc: BaseException) -> tuple[int, str]:
    """Exit code and one-line reason of a failure, unwrapping dlt's step errors.

    The reason has every credential masked and every value a library quoted from the data
    withheld: whatever the error, its line names at most a session id and a field.
    """
    code, reason = _describe(exc)
    return code, redact(reason, known_secrets())


def _describe(exc: BaseException) -> tuple[int, str]:
    """Exit code and one-line reason of a failure, as its error tells it."""
    root = _root_cause(exc)
    if isinstance(root, UnknownDestinationModule):
        return EXIT_CONFIG, (
            f"unknown destination {root.ref!r}: give a dlt destination name, e.g. duckdb, postgres, "
            "bigquery, snowflake, filesystem (--destination)"
        )
    if isinstance(root, ConfigFieldMissingException) and root.spec_name != "KoreSessionsOptions":
        return EXIT_CONFIG, _missing_destination_config(root)
    if isinstance(root, ConfigError | ConfigurationException):
        return EXIT_CONFIG, _one_line(root)
    if isinstance(root, PLAIN_ERRORS):
        return EXIT_FAILED, _one_line(root)
    if isinstance(root, OSError) and root.filename and root.strerror:
        return EXIT_FAILED, f"{root.strerror}: {root.filename}"
    if type(root).__name__ == "OperationalError":  # the warehouse's driver could not reach it
        return EXIT_FAILED, f"the warehouse cannot be reached: {_one_line(root)}"
    held = DUCKDB_HELD.search(str(root))
    if held:
        return EXIT_FAILED, (
            f"the DuckDB file {held['file']} is open in another process (pid {held['pid']}): DuckDB "
            "allows one process at a time; close it (a BI tool, a Python shell) or wait for that "
            "run, or load into PostgreSQL"
        )
    step = exc.step if isinstance(exc, PipelineStepFailed) else None
    where = f"{step} step failed: " if step else ""
    return EXIT_FAILED, where + f"{type(root).__name__}: {_one_line(root)}"


def _missing_destination_config(exc: ConfigFieldMissingException) -> str:
    """The destination's settings that are missing, and where to set them, on one line."""
    kind = getattr(exc.config, "destination_type", None) or "<destination>"
    example = f"DESTINATION__{kind.upper()}__{exc.fields[0].upper()}" if exc.fields else ""
    return (
        f"missing configuration of the {kind} destination: {', '.join(exc.fields)}; set it in "
        f".dlt/secrets.toml under [destination.{kind}] or as {example} (e.g. a connection string "
        "postgresql://user:password@host:5432/database)"
    )


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost error a person can act on."""
    seen: set[int] = set()
    current = exc
    while id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (ConfigError, ConfigurationException, *PLAIN_ERRORS)):
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
    """Progress lines on stderr, with secrets redacted and values of the data withheld (dlt's
    own log lines too)."""
    redacting = RedactingFilter()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[kore-sessions] %(message)s"))
    handler.addFilter(redacting)
    logger = logging.getLogger(LOGGER_NAME)
    logger.handlers[:] = [handler]
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False
    _guard(logging.getLogger(DLT_LOGGER_NAME), redacting)


def _guard(logger: logging.Logger, redacting: RedactingFilter) -> None:
    """Put `redacting` on a logger whose handlers are not ours (dlt sets its own up), in place
    of the one an earlier setup put there."""
    for old in [f for f in logger.filters if isinstance(f, RedactingFilter)]:
        logger.removeFilter(old)
    logger.addFilter(redacting)
