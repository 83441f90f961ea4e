"""What the marts count and in which calendar: the model settings, from `[models]` and flags.

`ModelSettings` is a dlt `@configspec`, resolved from `[models]` in `.dlt/config.toml` or the
environment (`MODELS__<KEY>`). Each setting is one field, and its metadata says all that is
derived from it: its help and its flag (`kore_sessions.cli.flags`: keys `help`, `flag`,
`repeatable`, `type`, `choices`), and its column in the settings table the models read
(`setting_columns`: `settings_statement` writes it, `built_settings` reads the record back).
Adding a setting: one field here, and the SQL that reads its column.
"""

from __future__ import annotations

import dataclasses
import json
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dlt.common.configuration import configspec, resolve_configuration
from dlt.common.configuration.exceptions import ConfigValueCannotBeCoercedException
from dlt.common.configuration.specs import BaseConfiguration
from kore_sessions.source import ConfigError

# Config section of the model settings, e.g. [models] reporting_time_zone = "Europe/Berlin".
CONFIG_SECTION = "models"
# Without an allow list, a tag with more distinct values than this describes people or single
# sessions (caller numbers, call ids), not kinds of sessions: the tag mart leaves it out (and
# a tag with fewer whose name or any value looks personal, `kore_sessions.warehouse.personal_data`).
DEFAULT_TAG_MAX_VALUES = 25
# A setting's column type in the settings table, by the field's Python type.
SQL_TYPES = {"str": "VARCHAR", "bool": "BOOLEAN", "int": "BIGINT"}
# A column's value as a setting again, by its SQL type.
SQL_READERS: dict[str, Callable[[Any], Any]] = {"VARCHAR": str, "BOOLEAN": bool, "BIGINT": int}


@dataclass(frozen=True)
class SettingColumn:
    """A setting's column in the settings table the models read.

    Attributes:
        name: The column.
        sql_type: Its SQL type (VARCHAR, BOOLEAN or BIGINT).
        write: The setting's value as the column holds it (None: NULL).
        read: The column's value (never NULL) as the setting (default: by its SQL type).
        setting: The field of `ModelSettings` (`setting_columns` fills it in).
    """

    name: str
    sql_type: str
    write: Callable[[Any], Any] = lambda value: value
    read: Callable[[Any], Any] | None = None
    setting: str = ""


def _allow_list(names: tuple[str, ...]) -> str | None:
    """Tag names as the models read them (`,a,b,`), or None when there are none."""
    return f",{','.join(names)}," if names else None


def _allowed_names(allow_list: Any) -> tuple[str, ...]:
    """Tag names from the models' allow list (`,a,b,`)."""
    return tuple(name for name in str(allow_list).split(",") if name)


def setting(default: Any, help_text: str, **more: Any) -> Any:
    """A model setting's field: its default, its help, and what else is derived from it.

    Args:
        default: The value when neither `[models]` nor a flag sets it.
        help_text: The flag's help.
        more: Further metadata: `flag` (default `--<name>`), `repeatable`, `type`, `choices`,
            `column` (a `SettingColumn`, when the field's type names none).
    """
    return dataclasses.field(default=default, metadata={"help": help_text, **more})


@configspec
class ModelSettings(BaseConfiguration):
    """What the marts count and which calendar they count in (each field's help says what it
    is). Without `tag_names` the tag mart slices by every tag with at most `tag_max_values`
    distinct values of which neither the name nor any value looks personal
    (`kore_sessions.warehouse.personal_data`); the report prints no personal-looking value of a
    listed tag either."""

    reporting_time_zone: str = setting(
        "UTC", "reporting time zone, IANA (default UTC)", flag="--time-zone"
    )
    include_active: bool = setting(False, "count active sessions too")
    include_non_interactive: bool = setting(False, "count non-interactive sessions too")
    include_developer: bool = setting(False, "count developer sessions too")
    # tuple[str, ...] once checked; Any for dlt, as config gives a list or `a,b`.
    tag_names: Any = setting(
        (),
        "a tag the tag mart slices by (repeatable; "
        "default: tags with few distinct values whose name is not personal)",
        flag="--tag",
        repeatable=True,
        column=SettingColumn("tag_allow_list", "VARCHAR", _allow_list, _allowed_names),
    )
    tag_max_values: int = setting(
        DEFAULT_TAG_MAX_VALUES,
        f"most distinct values a tag may have to be sliced by without --tag "
        f"(default {DEFAULT_TAG_MAX_VALUES})",
    )
    include_personal_data: bool = setting(
        False, "keep user_id and call_id in fct_sessions (NULL by default)"
    )

    __section__ = CONFIG_SECTION

    def __post_init__(self) -> None:
        """Check the settings given directly."""
        self._check()

    def on_resolved(self) -> None:
        """Check the settings resolved from config and flags."""
        self._check()

    def __setattr__(self, name: str, value: Any) -> None:
        """Settings, once checked, stay as they are (dlt's own bookkeeping goes on).

        Raises:
            dataclasses.FrozenInstanceError: a setting assigned after the check.
        """
        if self.__dict__.get("_checked") and not name.startswith("__") and name in self.__dataclass_fields__:
            raise dataclasses.FrozenInstanceError(f"cannot assign to model setting {name!r}")
        super().__setattr__(name, value)

    def __hash__(self) -> int:
        """Equal settings hash alike (they cannot change once checked)."""
        return hash(tuple(self.values()))

    def _check(self) -> None:
        """Bring each value to its type, then reject a time zone that is not an IANA
        Area/Location name (or UTC), and tag names the allow list cannot hold."""
        for field in model_setting_fields():
            kind = str(field.type)
            if kind == "bool":
                setattr(self, field.name, _as_bool(field.name, getattr(self, field.name)))
            elif kind == "int":
                setattr(self, field.name, _whole(field.name, getattr(self, field.name)))
        self.tag_names = _names(self.tag_names)
        if not is_portable_time_zone(self.reporting_time_zone):
            raise ConfigError(
                f"unknown reporting time zone {self.reporting_time_zone!r}: use an IANA name "
                "such as 'UTC', 'Europe/Berlin' or 'America/New_York'"
            )
        if any(not name or "," in name for name in self.tag_names):
            raise ConfigError(f"models.tag_names {list(self.tag_names)!r}: give tag names without commas")
        if self.tag_max_values < 1:
            raise ConfigError(f"models.tag_max_values must be at least 1, not {self.tag_max_values}")
        object.__setattr__(self, "_checked", True)

    @property
    def tag_allow_list(self) -> str | None:
        """The allow list as the models read it (`,a,b,`), or None when there is none."""
        return _allow_list(self.tag_names)

    @classmethod
    def from_config(cls, **overrides: Any) -> ModelSettings:
        """Settings from `[models]` in the dlt config, with non-None `overrides` on top.

        Raises:
            ConfigError: a value that cannot work, in one line.
        """
        given = {key: value for key, value in overrides.items() if value is not None}
        blank = cls()
        object.__setattr__(blank, "_checked", False)  # dlt sets the fields, then it is checked
        try:
            return resolve_configuration(blank, explicit_value=given)
        except ConfigValueCannotBeCoercedException as exc:
            kind = "true or false" if exc.hint is bool else "a whole number"
            raise ConfigError(f"models.{exc.field_name} must be {kind}, not {exc.field_value!r}") from None

    @classmethod
    def from_columns(cls, row: Mapping[str, Any]) -> ModelSettings:
        """The settings a settings table's row records (a column the row predates, or NULL:
        the setting's default)."""
        values = {
            column.setting: (column.read or SQL_READERS[column.sql_type])(row[column.name])
            for column in setting_columns()
            if row.get(column.name) is not None
        }
        return cls(**values)

    def columns(self) -> list[tuple[SettingColumn, Any]]:
        """Each setting's column and the value it holds, in the fields' order."""
        return [(column, column.write(getattr(self, column.setting))) for column in setting_columns()]

    def describe(self) -> str:
        """One line saying what the marts count."""
        scope = ["closed"] + (["active"] if self.include_active else [])
        kinds = ["interactive"] + (["non-interactive"] if self.include_non_interactive else [])
        people = "with developer sessions" if self.include_developer else "without developer sessions"
        return (
            f"{' and '.join(scope)}, {' and '.join(kinds)} sessions, {people}; "
            f"days in {self.reporting_time_zone}"
        )


def model_setting_fields() -> list[dataclasses.Field[Any]]:
    """The fields of `ModelSettings` that are settings, in order."""
    return [field for field in dataclasses.fields(ModelSettings) if not field.name.startswith("__")]


def setting_columns() -> list[SettingColumn]:
    """Each setting's column in the settings table, in the fields' order.

    Raises:
        TypeError: a setting whose type names no SQL type and that says no column.
    """
    columns = []
    for field in model_setting_fields():
        column = field.metadata.get("column")
        if column is None:
            if str(field.type) not in SQL_TYPES:
                raise TypeError(f"model setting {field.name}: give its column (type {field.type})")
            column = SettingColumn(field.name, SQL_TYPES[str(field.type)])
        columns.append(dataclasses.replace(column, setting=field.name))
    return columns


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


def _names(value: Any) -> tuple[str, ...]:
    """Tag names from a list, a JSON list or a comma-separated string."""
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ConfigError(f"models.tag_names {value!r} is not a valid JSON list") from None
    items = value.split(",") if isinstance(value, str) else list(value or ())
    return tuple(dict.fromkeys(str(item).strip() for item in items if str(item).strip()))


def _whole(name: str, value: Any) -> int:
    """A whole-number setting, or a one-line ConfigError."""
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"models.{name} must be a whole number, not {value!r}") from None


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
