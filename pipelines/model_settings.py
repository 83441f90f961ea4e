"""What the marts count and in which calendar: the model settings, from `[models]` and flags."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from typing import Any

import dlt
from dlt.common.configuration.exceptions import ConfigFieldMissingException

from sources.kore_sessions import ConfigError

# Config section of the model settings, e.g. [models] reporting_time_zone = "Europe/Berlin".
CONFIG_SECTION = "models"


def is_portable_time_zone(name: str) -> bool:
    """Whether every destination reads `name` as the same IANA zone.

    Only `UTC` and Area/Location names qualify: PostgreSQL reads short names such as `CET` or
    `EST` as fixed offsets without daylight saving, where DuckDB reads the IANA zone, and
    `localtime`, `posixrules` or `Factory` are not zones at all.
    """
    if name == "UTC":
        return True
    if "/" not in name or name.startswith(("posix/", "right/", "SystemV/")):
        return False
    return name in zoneinfo.available_timezones()


@dataclass(frozen=True)
class ModelSettings:
    """What the marts count and which calendar they count in.

    Attributes:
        reporting_time_zone: IANA zone deciding a session's day, week and month (default UTC).
        include_active: Count sessions still open, as the API shows them now (self-service).
        include_non_interactive: Count sessions where the user wrote nothing.
        include_developer: Count sessions of the bot's developers.
    """

    reporting_time_zone: str = "UTC"
    include_active: bool = False
    include_non_interactive: bool = False
    include_developer: bool = False

    def __post_init__(self) -> None:
        """Reject a time zone that is not an IANA Area/Location name (or UTC)."""
        if not is_portable_time_zone(self.reporting_time_zone):
            raise ConfigError(
                f"unknown reporting time zone {self.reporting_time_zone!r}: use an IANA name "
                "such as 'UTC', 'Europe/Berlin' or 'America/New_York'"
            )

    @classmethod
    def from_config(cls, **overrides: Any) -> ModelSettings:
        """Settings from `[models]` in the dlt config, with non-None `overrides` on top."""
        values: dict[str, Any] = {}
        for name in cls.__dataclass_fields__:
            configured = _config_value(f"{CONFIG_SECTION}.{name}")
            if configured is not None:
                values[name] = configured
        values.update({key: value for key, value in overrides.items() if value is not None})
        for name in ("include_active", "include_non_interactive", "include_developer"):
            if name in values:
                values[name] = _as_bool(name, values[name])
        return cls(**values)

    def describe(self) -> str:
        """One line saying what the marts count."""
        scope = ["closed"] + (["active"] if self.include_active else [])
        kinds = ["interactive"] + (["non-interactive"] if self.include_non_interactive else [])
        people = "with developer sessions" if self.include_developer else "without developer sessions"
        return (
            f"{' and '.join(scope)}, {' and '.join(kinds)} sessions, {people}; "
            f"days in {self.reporting_time_zone}"
        )


def _config_value(key: str) -> Any:
    """A dlt config value, or None when it is not set."""
    try:
        return dlt.config.get(key)
    except ConfigFieldMissingException:
        return None


def _as_bool(name: str, value: Any) -> bool:
    """A boolean setting from a bool or a true/false string."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise ConfigError(f"models.{name} must be true or false, not {value!r}")
