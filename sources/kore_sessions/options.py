"""The source's options, declared once, resolved the dlt way (config.toml, secrets.toml, env)."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any, Optional

from dlt.common.configuration import configspec, resolve_configuration
from dlt.common.configuration.exceptions import (
    ConfigFieldMissingException,
    ConfigurationValueError,
    ConfigValueCannotBeCoercedException,
)
from dlt.common.configuration.specs import BaseConfiguration

from kore_sessions.source.api.budget import budget_path, shared_budget
from kore_sessions.source.api.client import ClientStats, KoreClient, RetryPolicy
from kore_sessions.source.api.credentials import KoreCredentials
from kore_sessions.source.api.rules import (
    DEFAULT_ALGORITHM,
    DEFAULT_BACKOFF_INITIAL,
    DEFAULT_BACKOFF_MAX,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_PAGE_SIZE,
    DEFAULT_REQUESTS_PER_HOUR,
    DEFAULT_REQUESTS_PER_MINUTE,
    DEFAULT_RETRY_DEADLINE,
    DEFAULT_WINDOW_HOURS,
    KEY_PAIR_ALGORITHMS,
)
from kore_sessions.source.config import MAX_MESSAGES_PAGE_SIZE, ConfigError, RunConfig, build_run_config
from kore_sessions.source.settings import (
    DEFAULT_APPENDED_WINDOWS_PER_PACKAGE,
    DEFAULT_LOOKBACK_MINUTES,
    DEFAULT_RETENTION_DAYS,
    DEFAULT_WINDOWS_PER_PACKAGE,
    SESSIONS_PER_APPENDED_PACKAGE,
    SOURCE_NAME,
)

# Where dlt looks for them: [sources.kore_sessions] or SOURCES__KORE_SESSIONS__<KEY>.
CONFIG_SECTIONS = ("sources", SOURCE_NAME)
# The renamed options this process has given notice of (once each).
_NOTICED: set[str] = set()


def option(default: Any, help_text: str, **cli: Any) -> Any:
    """A source option's field: its default and its help, from which its flag, the flag's help
    and its default are derived (`kore_sessions.cli.flags`).

    Args:
        default: The value when neither config nor a flag sets it.
        help_text: What the option means, one sentence or two.
        cli: Further metadata for the command line: `flag` (default `--<name>`), `repeatable`,
            or `renamed_to` (an old name, still read, with a notice).
    """
    return dataclasses.field(default=default, metadata={"help": help_text, **cli})


@configspec
class KoreSessionsOptions(BaseConfiguration):
    """Every option of the `kore_sessions` source; each field's help says what it means."""

    host: str = option(None, "Base URL of the Kore.ai environment, e.g. `https://platform.kore.ai`.")
    bot_ids: Optional[Any] = option(  # noqa: UP045 - dlt reads Optional from the annotation
        None,
        "One or more bot ids (a list, a JSON list or a comma-separated string).",
        flag="--bot",
        repeatable=True,
    )
    all_bots: bool = option(False, "Use the Admin Console route that covers every bot of the account.")
    start_date: Optional[Any] = option(  # noqa: UP045
        None, "Where the first backfill starts when there is no state (default 30 days ago).", flag="--start"
    )
    end_date: Optional[Any] = option(  # noqa: UP045
        None, "With start_date, a bounded backfill that leaves the cursor alone.", flag="--end"
    )
    resources: Optional[Any] = option(  # noqa: UP045
        None,
        "What to load: sessions (the default), or sessions and messages (a list, a JSON list or "
        "a comma-separated string).",
        flag="--resources",
    )
    store_user_text: bool = option(
        False, "Keep what users typed (incoming message text); off: only its length and kind."
    )
    page_size: int = option(DEFAULT_PAGE_SIZE, "Sessions asked for per request (the server may cap it).")
    messages_page_size: int = option(
        MAX_MESSAGES_PAGE_SIZE, "Messages asked for per request (at most 10,000; the server may cap it)."
    )
    window_hours: float = option(DEFAULT_WINDOW_HOURS, "Span of one request's window, under 7 days.")
    lookback_minutes: float = option(
        DEFAULT_LOOKBACK_MINUTES, "How far behind its cursor each run reads again, for late arrivals."
    )
    requests_per_minute: int = option(
        DEFAULT_REQUESTS_PER_MINUTE, "Rolling limit per bot (per account on the admin route)."
    )
    requests_per_hour: int = option(DEFAULT_REQUESTS_PER_HOUR, "Rolling hourly limit, checked as well.")
    max_in_flight: int = option(
        DEFAULT_MAX_IN_FLIGHT, "Requests of one bot waiting or running at once (bots run in parallel)."
    )
    windows_per_package: int = option(
        DEFAULT_WINDOWS_PER_PACKAGE,
        "Windows of one bot per load package; a longer backfill takes several (a first backfill into "
        "DuckDB: at least as many, see appended_windows_per_package).",
    )
    appended_windows_per_package: int = option(
        DEFAULT_APPENDED_WINDOWS_PER_PACKAGE,
        "Windows of one bot per load package of a first backfill into DuckDB, which appends (fewer "
        f"when they would hold over about {SESSIONS_PER_APPENDED_PACKAGE:,} sessions of all bots at "
        "the first window's count).",
    )
    windows_per_run: Optional[int] = option(  # noqa: UP045
        None, "The old name of windows_per_package.", renamed_to="windows_per_package"
    )
    seconds_per_minute: float = option(
        60.0,
        "Length of the limits' minute in seconds (60; less only for a sandbox or benchmark with "
        "scaled-down limits).",
    )
    max_attempts: int = option(
        DEFAULT_MAX_ATTEMPTS, "Attempts per request before giving up on retryable errors."
    )
    backoff_initial: float = option(
        DEFAULT_BACKOFF_INITIAL, "First backoff wait in seconds; it doubles per attempt, with jitter."
    )
    backoff_max: float = option(DEFAULT_BACKOFF_MAX, "Longest single wait in seconds.")
    retry_deadline: float = option(
        DEFAULT_RETRY_DEADLINE, "Longest time in seconds spent retrying one request."
    )
    retention_days: int = option(
        DEFAULT_RETENTION_DAYS, "Days of sessions the platform keeps; `audit` checks nothing older."
    )
    rate_budget_file: Optional[str] = option(  # noqa: UP045
        None,
        "SQLite file counting each bot's requests for every process of the machine (default: "
        "`kore_sessions_rate_budget.sqlite` in the pipelines folder).",
    )
    credentials: KoreCredentials = option(None, "The app's client id and secret (or private key).")

    def run_config(self, clock: Callable[[], datetime] | None = None) -> RunConfig:
        """The checked configuration of one run.

        Raises:
            ConfigError: the first setting that cannot work, on one line.
        """
        return build_run_config(self, clock)

    def retry_policy(self) -> RetryPolicy:
        """How often and how long a request is retried."""
        return RetryPolicy(self.max_attempts, self.backoff_initial, self.backoff_max, self.retry_deadline)

    def open_client(self, pipelines_dir: str | None, stats: ClientStats | None = None) -> KoreClient:
        """A client of the configured host, its limits and retries, counting its requests in the
        rate budget of the pipelines folder (shared by every process that loads from it).

        Args:
            pipelines_dir: The pipelines folder whose budget file is shared (None: this process).
            stats: The counters to count into (default: the client's own).

        Raises:
            ConfigError: the first setting that cannot work, on one line.
        """
        config = self.run_config()
        return KoreClient(
            config.host,
            self.credentials,
            requests_per_minute=config.requests_per_minute,
            requests_per_hour=config.requests_per_hour,
            retry_policy=self.retry_policy(),
            seconds_per_minute=self.seconds_per_minute,
            budget=shared_budget(budget_path(self.rate_budget_file, pipelines_dir)),
            stats=stats,
        )


def option_names() -> tuple[str, ...]:
    """The names of every option, in declaration order."""
    return tuple(name for name in KoreSessionsOptions.__dataclass_fields__ if not name.startswith("__"))


def option_fields() -> list[dataclasses.Field[Any]]:
    """Every option but the credentials (a secret has no flag), in declaration order; each
    field's metadata holds its help (`option`)."""
    return [
        field
        for field in dataclasses.fields(KoreSessionsOptions)
        if not field.name.startswith("__") and field.name != "credentials"
    ]


def renamed_options() -> dict[str, str]:
    """`{old name: new name}` of the options renamed, whose old names still work."""
    fields = dataclasses.fields(KoreSessionsOptions)
    return {field.name: field.metadata["renamed_to"] for field in fields if "renamed_to" in field.metadata}


def notice_renamed(old: str, new: str) -> None:
    """Say once a process, on stderr, that an option goes by a new name."""
    if old not in _NOTICED:
        _NOTICED.add(old)
        print(f"notice: {old} is now {new}; the old name still works", file=sys.stderr)


def _apply_renamed(options: KoreSessionsOptions, given: dict[str, Any]) -> None:
    """Move a renamed option's value to its new name, with a notice. The new name wins where
    both are set at the same level (given, or configured); a value given wins over config."""
    configured = set(options.__resolved_fields_set__ or ()) - set(given)
    for old, new in renamed_options().items():
        value = getattr(options, old)
        if value is None:
            continue
        notice_renamed(old, new)
        if new not in given and (old in given or new not in configured):
            setattr(options, new, value)
        setattr(options, old, None)


def resolve_options(**overrides: Any) -> KoreSessionsOptions:
    """The options from explicit values, then `[sources.kore_sessions]` config, then defaults.

    Args:
        overrides: Option values that win over the configuration; an explicit None clears an
            option the configuration sets (e.g. `bot_ids=None` with `all_bots=True`).

    Raises:
        TypeError: an override that is not an option.
        ConfigError: required options are missing, or a value has the wrong type (one line,
            naming the keys and where to set them).
    """
    unknown = sorted(set(overrides) - set(option_names()))
    if unknown:
        raise TypeError(f"kore_sessions has no option {', '.join(unknown)}")
    given = {name: value for name, value in overrides.items() if value is not None}
    try:
        options = resolve_configuration(KoreSessionsOptions(), sections=CONFIG_SECTIONS, explicit_value=given)
    except ConfigValueCannotBeCoercedException as exc:
        kind = {int: "a whole number", float: "a number", bool: "true or false"}.get(exc.hint, str(exc.hint))
        raise ConfigError(
            f"{exc.field_name} {exc.field_value!r} is not {kind} ({_where(exc.field_name)})"
        ) from exc
    except (ConfigFieldMissingException, ConfigurationValueError):  # missing, or the app's key missing
        options = resolve_configuration(
            KoreSessionsOptions(), sections=CONFIG_SECTIONS, explicit_value=given, accept_partial=True
        )
    for name, value in overrides.items():
        if value is None:
            setattr(options, name, None)
    _apply_renamed(options, given)
    missing = missing_keys(options)
    if not missing and not options.is_resolved():
        options = resolve_configuration(options, sections=CONFIG_SECTIONS)  # says what else is wrong
    if missing:
        places = ", ".join(_env_name(key.split(" ")[0]) for key in missing)
        raise ConfigError(
            f"missing configuration: {', '.join(missing)}; set them under [sources.kore_sessions] in "
            f".dlt/config.toml and .dlt/secrets.toml, or as {places}"
        )
    return options


def missing_keys(options: KoreSessionsOptions) -> list[str]:
    """The keys a run needs that are not set: host, a bot, the app's id and its key."""
    missing = [] if options.host else ["host"]
    if not options.bot_ids and not options.all_bots:
        missing.append("bot_ids (or all_bots)")
    credentials = options.credentials
    if credentials is None or not credentials.client_id:
        missing.append("credentials.client_id")
    algorithm = str(getattr(credentials, "algorithm", None) or DEFAULT_ALGORITHM).upper()
    if algorithm in KEY_PAIR_ALGORITHMS:
        if credentials is None or not credentials.private_key:
            missing.append("credentials.private_key")
    elif credentials is None or not credentials.client_secret:
        missing.append("credentials.client_secret")
    return missing


def _env_name(key: str) -> str:
    """The environment variable of an option key, e.g. SOURCES__KORE_SESSIONS__CREDENTIALS__CLIENT_ID."""
    return "__".join(part.upper() for part in (*CONFIG_SECTIONS, *key.split(".")))


def _where(key: str) -> str:
    """Where an option is set, in words."""
    return f"{_env_name(key)} or {key} under [sources.kore_sessions]"
