"""What the marts count and in which calendar: the model settings, from `[models]` and flags."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from typing import Any

import dlt
from dlt.common.configuration.exceptions import ConfigFieldMissingException
from kore_sessions.source import ConfigError

# Config section of the model settings, e.g. [models] reporting_time_zone = "Europe/Berlin".
CONFIG_SECTION = "models"
# Without an allow list, a tag with more distinct values than this describes people or single
# sessions (caller numbers, call ids), not kinds of sessions: the tag mart leaves it out (and
# a tag with fewer whose name or any value looks personal, `kore_sessions.warehouse.personal_data`).
DEFAULT_TAG_MAX_VALUES = 25


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
        tag_names: The tags the tag mart slices by (an allow list); none given: every tag with at
            most `tag_max_values` distinct values of which neither the name nor any value looks
            personal (`kore_sessions.warehouse.personal_data`). The report prints no personal-looking value
            of a listed tag either.
        tag_max_values: Most distinct values a tag may have to be sliced by without the list.
        include_personal_data: Keep `user_id` and `call_id` in `fct_sessions` (NULL otherwise).
    """

    reporting_time_zone: str = "UTC"
    include_active: bool = False
    include_non_interactive: bool = False
    include_developer: bool = False
    tag_names: tuple[str, ...] = ()
    tag_max_values: int = DEFAULT_TAG_MAX_VALUES
    include_personal_data: bool = False

    def __post_init__(self) -> None:
        """Reject a time zone that is not an IANA Area/Location name (or UTC), and tag names
        the allow list cannot hold."""
        if not is_portable_time_zone(self.reporting_time_zone):
            raise ConfigError(
                f"unknown reporting time zone {self.reporting_time_zone!r}: use an IANA name "
                "such as 'UTC', 'Europe/Berlin' or 'America/New_York'"
            )
        if any(not name or "," in name for name in self.tag_names):
            raise ConfigError(f"models.tag_names {list(self.tag_names)!r}: give tag names without commas")
        if self.tag_max_values < 1:
            raise ConfigError(f"models.tag_max_values must be at least 1, not {self.tag_max_values}")

    @property
    def tag_allow_list(self) -> str | None:
        """The allow list as the models read it (`,a,b,`), or None when there is none."""
        return f",{','.join(self.tag_names)}," if self.tag_names else None

    @classmethod
    def from_config(cls, **overrides: Any) -> ModelSettings:
        """Settings from `[models]` in the dlt config, with non-None `overrides` on top."""
        values: dict[str, Any] = {}
        for name in cls.__dataclass_fields__:
            configured = _config_value(f"{CONFIG_SECTION}.{name}")
            if configured is not None:
                values[name] = configured
        values.update({key: value for key, value in overrides.items() if value is not None})
        for name in (
            "include_active",
            "include_non_interactive",
            "include_developer",
            "include_personal_data",
        ):
            if name in values:
                values[name] = _as_bool(name, values[name])
        if "tag_names" in values:
            values["tag_names"] = _names(values["tag_names"])
        if "tag_max_values" in values:
            values["tag_max_values"] = _whole("tag_max_values", values["tag_max_values"])
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


def _names(value: Any) -> tuple[str, ...]:
    """Tag names from a list or a comma-separated string."""
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(dict.fromkeys(str(item).strip() for item in items if str(item).strip()))


def _whole(name: str, value: Any) -> int:
    """A whole-number setting, or a one-line ConfigError."""
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"models.{name} must be a whole number, not {value!r}") from None


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
