"""Validation of the source's settings into one immutable run configuration."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from kore_sessions.source.api.config_error import ConfigError
from kore_sessions.source.api.rules import (
    ALL_BOTS_KEY,
    CLOCK_SKEW_ALLOWANCE,
    DEFAULT_MAX_IN_FLIGHT,
    MAX_IN_FLIGHT,
    MAX_PAGE_SIZE,
)
from kore_sessions.source.api.timestamps import parse_timestamp
from kore_sessions.source.api.windows import check_span
from kore_sessions.source.settings import DEFAULT_APPENDED_WINDOWS_PER_PACKAGE, DEFAULT_WINDOWS_PER_PACKAGE

# The resources the source can load, in the order it loads them: the messages are asked for
# per channel the sessions showed, so the sessions go first.
SESSIONS_RESOURCE = "sessions"
MESSAGES_RESOURCE = "messages"
RESOURCES = (SESSIONS_RESOURCE, MESSAGES_RESOURCE)
# Most messages asked for a page: the v2 maximum (documented).
MAX_MESSAGES_PAGE_SIZE = 10_000
# Where the first backfill starts when no start_date is configured.
DEFAULT_BACKFILL_DAYS = 30
# Numeric options and the range each must lie in (None: no upper bound).
CHECKED_RANGES: tuple[tuple[str, float, float | None], ...] = (
    ("page_size", 1, MAX_PAGE_SIZE),
    ("messages_page_size", 1, MAX_MESSAGES_PAGE_SIZE),
    ("requests_per_minute", 1, None),
    ("requests_per_hour", 1, None),
    ("lookback_minutes", 0, None),
    ("max_in_flight", 1, MAX_IN_FLIGHT),
    ("windows_per_package", 1, None),
    ("appended_windows_per_package", 1, None),
    ("seconds_per_minute", 0.001, None),
    ("max_attempts", 1, None),
    ("backoff_initial", 0, None),
    ("backoff_max", 0, None),
    ("retry_deadline", 1, None),  # seconds; 0 would give up at the first failure, whatever max_attempts says
    ("retention_days", 15, None),
)


@dataclass(frozen=True)
class RepairPlan:
    """What `audit --repair` reloads: ranges of start_time per bot, as a bounded backfill.

    Attributes:
        ranges: Per bot key, the (start, end) ranges whose counts differ, both ends inclusive.
        held_ids: Per bot key, the sessions the warehouse holds in those ranges; those the
            ranges no longer return are looked up by id, and deleted only when the API says
            they are invalid.
        message_ranges: Per bot key, the ranges of createdOn whose message counts differ.
    """

    ranges: Mapping[str, Sequence[tuple[datetime, datetime]]]
    held_ids: Mapping[str, frozenset[str]] = field(default_factory=dict)
    message_ranges: Mapping[str, Sequence[tuple[datetime, datetime]]] = field(default_factory=dict)


@dataclass(frozen=True)
class RunConfig:
    """Everything one run needs to know, checked (`start_date_given`: start_date was configured,
    not the default; `resources`: what the source loads, in the order it loads them)."""

    host: str
    bot_keys: tuple[str, ...]
    start_date: datetime
    end_date: datetime | None
    page_size: int
    window_span: timedelta
    lookback: timedelta
    requests_per_minute: int
    requests_per_hour: int
    clock: Callable[[], datetime]
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    windows_per_package: int = DEFAULT_WINDOWS_PER_PACKAGE
    appended_windows_per_package: int = DEFAULT_APPENDED_WINDOWS_PER_PACKAGE
    repair: RepairPlan | None = None
    start_date_given: bool = False
    resources: tuple[str, ...] = (SESSIONS_RESOURCE,)
    keep_user_text: bool = False
    messages_page_size: int = MAX_MESSAGES_PAGE_SIZE

    @property
    def bounded(self) -> bool:
        """A backfill with an end (or a repair) leaves the cursor alone."""
        return self.end_date is not None or self.repair is not None


def utc_now() -> datetime:
    """The current instant in UTC."""
    return datetime.now(UTC)


def check_host(host: Any) -> str:
    """A base URL with http(s) scheme and a host name, without a trailing slash."""
    text = str(host or "").strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"host {text!r} is not a URL: give the full base URL, e.g. https://platform.kore.ai"
        )
    return text.rstrip("/")


def parse_bot_ids(bot_ids: str | Sequence[str] | None, setting: str = "bot_ids") -> list[str]:
    """Bot ids (or the names of another list setting) from a list, a JSON list, or a
    comma-separated string."""
    if bot_ids is None:
        return []
    if isinstance(bot_ids, str):
        text = bot_ids.strip()
        if text.startswith("["):
            try:
                bot_ids = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{setting} is not a valid JSON list: {exc}") from exc
        else:
            bot_ids = text.split(",")
    return [str(bot).strip() for bot in bot_ids if str(bot).strip()]


def parse_resources(value: Any) -> tuple[str, ...]:
    """The resources to load from a list, a JSON list or a comma-separated string, in the order
    the source loads them; a one-line error names one it does not know."""
    names = parse_bot_ids(value, "resources") if value not in (None, "", []) else [SESSIONS_RESOURCE]
    unknown = [name for name in names if name not in RESOURCES]
    if unknown or not names:
        listed = ", ".join(map(repr, unknown)) or "none"
        raise ConfigError(f"resources: {listed} unknown; choose from {', '.join(RESOURCES)}")
    if MESSAGES_RESOURCE in names and SESSIONS_RESOURCE not in names:
        raise ConfigError(
            "resources: messages need sessions beside them (each channel the sessions show is asked "
            'for its messages): resources = ["sessions", "messages"]'
        )
    return tuple(name for name in RESOURCES if name in names)


def parse_date_setting(name: str, value: Any) -> datetime | None:
    """A date or timestamp setting in UTC, or a one-line error naming the setting."""
    if value is None or value == "":
        return None
    try:
        return parse_timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{name} {value!r} is not a date: use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ") from exc


def build_run_config(options: Any, clock: Callable[[], datetime] | None = None) -> RunConfig:
    """Check every setting of the source's options and return the run's configuration.

    Args:
        options: The source's options (`KoreSessionsOptions`, or anything with its attributes).
        clock: The loader's clock; the system clock by default.

    Raises:
        ConfigError: the first setting that cannot work, with what to do about it.
    """
    bots = parse_bot_ids(options.bot_ids)
    if options.all_bots and bots:
        raise ConfigError("give either bot_ids or all_bots, not both")
    if not options.all_bots and not bots:
        raise ConfigError("no bot: set bot_ids (one or more bot ids) or all_bots = true")
    clock = clock or utc_now
    start = parse_date_setting("start_date", options.start_date)
    end = parse_date_setting("end_date", options.end_date)
    if end is not None and start is None:
        raise ConfigError("end_date needs a start_date: a bounded backfill has both ends")
    start_date_given = start is not None
    if start is None:
        start = clock() - timedelta(days=DEFAULT_BACKFILL_DAYS)
    elif start > clock() + CLOCK_SKEW_ALLOWANCE:
        raise ConfigError(f"start_date {start:%Y-%m-%dT%H:%M:%SZ} is in the future: no session is there yet")
    if end is not None and end <= start:
        raise ConfigError(f"end_date {end:%Y-%m-%dT%H:%M:%SZ} is not after start_date")
    for name, low, high in CHECKED_RANGES:
        _check_range(name, getattr(options, name), low, high)
    span = timedelta(hours=float(options.window_hours))
    try:
        check_span(span)
    except ValueError as exc:
        raise ConfigError(f"window_hours {options.window_hours}: {exc}") from exc
    return RunConfig(
        host=check_host(options.host),
        bot_keys=(ALL_BOTS_KEY,) if options.all_bots else tuple(dict.fromkeys(bots)),
        start_date=start,
        end_date=end,
        page_size=int(options.page_size),
        window_span=span,
        lookback=timedelta(minutes=float(options.lookback_minutes)),
        requests_per_minute=int(options.requests_per_minute),
        requests_per_hour=int(options.requests_per_hour),
        clock=clock,
        max_in_flight=int(options.max_in_flight),
        windows_per_package=int(options.windows_per_package),
        appended_windows_per_package=int(options.appended_windows_per_package),
        start_date_given=start_date_given,
        resources=parse_resources(options.resources),
        keep_user_text=bool(options.store_user_text),
        messages_page_size=int(options.messages_page_size),
    )


def _check_range(name: str, value: float, low: float, high: float | None) -> None:
    """One-line error when a number lies outside [low, high]."""
    if value < low or (high is not None and value > high):
        upper = f" and {high}" if high is not None else ""
        raise ConfigError(f"{name} must be at least {low}{upper}, got {value}")
