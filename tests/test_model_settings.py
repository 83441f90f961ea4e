"""The model settings: one `@configspec` field each, from which the flag, the settings table's
column and the "built with" record are derived; every field has all three (derivation is
total), and `[models]` / `MODELS__<KEY>` resolve them as before."""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from kore_sessions.cli.command_settings import model_settings
from kore_sessions.cli.flags import flag_of, kind_of
from kore_sessions.cli.parser import build_parser
from kore_sessions.source import ConfigError
from kore_sessions.warehouse.model_settings import ModelSettings, model_setting_fields, setting_columns
from kore_sessions.warehouse.models import settings_statement

pytestmark = pytest.mark.unit

# A value other than the default, for the settings whose type says none.
OTHER_VALUES: dict[str, tuple[list[str], Any]] = {
    "reporting_time_zone": (["Europe/Berlin"], "Europe/Berlin"),
    "tag_names": (["callId", "--tag", "resolved"], ("callId", "resolved")),
}


def other_value(field: dataclasses.Field[Any]) -> tuple[list[str], Any]:
    """A value of the setting other than its default: (the flag's arguments, the value)."""
    if field.name in OTHER_VALUES:
        return OTHER_VALUES[field.name]
    if kind_of(field) is bool:
        return [], not field.default
    if kind_of(field) is int:
        return [str(field.default + 1)], field.default + 1
    raise AssertionError(f"add a value other than the default of {field.name} to OTHER_VALUES")


def every_setting_changed() -> ModelSettings:
    """Settings with every field set to a value other than its default."""
    return ModelSettings(**{field.name: other_value(field)[1] for field in model_setting_fields()})


@pytest.fixture(autouse=True)
def no_models_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """No `MODELS__*` of the environment running the tests."""
    for name in os.environ:
        if name.startswith("MODELS__"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize("command", ["load", "models"])
def test_every_setting_is_a_flag_that_overrides_it(command: str) -> None:
    """Each field is a flag of `load` and `models` with its help; given, it sets the setting."""
    parser = build_parser()
    subcommands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    actions = subcommands.choices[command]._actions
    flags = {flag: action for action in actions for flag in action.option_strings}
    for field in model_setting_fields():
        flag = flag_of(field)
        assert flag in flags, f"model setting {field.name} has no flag {flag}"
        assert flags[flag].help == field.metadata["help"] and field.metadata["help"].strip()
        arguments, value = other_value(field)
        settings = model_settings(parser.parse_args([command, flag, *arguments]))
        assert getattr(settings, field.name) == value, f"{flag} {arguments} did not set {field.name}"


@pytest.mark.parametrize("dialect", ["duckdb", "postgres"])
def test_every_setting_has_its_column_in_the_settings_statement(dialect: str) -> None:
    """Each field has a column in the table the models read, holding the setting's value."""
    names = [column.setting for column in setting_columns()]
    assert names == [field.name for field in model_setting_fields()]
    statement = settings_statement(every_setting_changed(), dialect, "d", datetime(2026, 1, 2, tzinfo=UTC))
    written = re.findall(r'AS "(\w+)"', statement)
    for column, _ in every_setting_changed().columns():
        assert column.name in written, f"{column.setting} has no column in the settings table"
    assert written[-3:] == ["personal_name_pattern", "personal_value_pattern", "built_at"]


def test_the_built_with_record_gives_every_setting_back() -> None:
    """`from_columns` of the columns written gives the same settings; a column a row predates
    (or NULL) takes the setting's default."""
    changed = every_setting_changed()
    row = {column.name: value for column, value in changed.columns()}
    assert ModelSettings.from_columns(row) == changed
    assert ModelSettings.from_columns({}) == ModelSettings()
    assert ModelSettings.from_columns(dict.fromkeys(row)) == ModelSettings()


def test_a_setting_without_a_column_type_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A field whose type names no SQL type and that says no column cannot be derived."""
    odd = dataclasses.field(default=None, metadata={"help": "odd"})
    odd.name, odd.type = "odd", "list"
    monkeypatch.setattr(
        "kore_sessions.warehouse.model_settings.model_setting_fields",
        lambda: [*model_setting_fields(), odd],
    )
    with pytest.raises(TypeError, match="model setting odd"):
        setting_columns()


def test_models_section_and_its_environment_names_resolve(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every documented key under [models], here by its environment variable; flags win; a name
    outside the section is not read."""
    monkeypatch.setenv("MODELS__REPORTING_TIME_ZONE", "America/New_York")
    monkeypatch.setenv("MODELS__INCLUDE_ACTIVE", "true")
    monkeypatch.setenv("MODELS__INCLUDE_NON_INTERACTIVE", "1")
    monkeypatch.setenv("MODELS__INCLUDE_DEVELOPER", "yes")
    monkeypatch.setenv("MODELS__TAG_NAMES", "resolved, callId,resolved")
    monkeypatch.setenv("MODELS__TAG_MAX_VALUES", "7")
    monkeypatch.setenv("MODELS__INCLUDE_PERSONAL_DATA", "true")
    monkeypatch.setenv("INCLUDE_DEVELOPER", "false")
    settings = ModelSettings.from_config()
    assert dict(settings) == {
        "reporting_time_zone": "America/New_York",
        "include_active": True,
        "include_non_interactive": True,
        "include_developer": True,
        "tag_names": ("resolved", "callId"),
        "tag_max_values": 7,
        "include_personal_data": True,
    }
    flags = build_parser().parse_args(["models", "--time-zone", "UTC", "--tag", "x", "--tag-max-values", "3"])
    assert dict(model_settings(flags)) == {
        **dict(settings),
        "reporting_time_zone": "UTC",
        "tag_names": ("x",),
        "tag_max_values": 3,
    }
    monkeypatch.setenv("MODELS__TAG_NAMES", '["a", "b"]')
    assert ModelSettings.from_config().tag_names == ("a", "b")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("INCLUDE_ACTIVE", "maybe", "models.include_active must be true or false, not 'maybe'"),
        ("TAG_MAX_VALUES", "many", "models.tag_max_values must be a whole number, not 'many'"),
        ("TAG_MAX_VALUES", "0", "models.tag_max_values must be at least 1, not 0"),
        ("REPORTING_TIME_ZONE", "CET", "unknown reporting time zone 'CET'"),
    ],
)
def test_a_bad_value_in_config_is_one_line(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(f"MODELS__{name}", value)
    with pytest.raises(ConfigError, match=re.escape(message)):
        ModelSettings.from_config()


def test_settings_cannot_change_once_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Given directly or resolved from config, settings are immutable, and equal ones hash alike."""
    monkeypatch.setenv("MODELS__INCLUDE_ACTIVE", "true")
    for settings in (ModelSettings(include_active=True), ModelSettings.from_config()):
        with pytest.raises(dataclasses.FrozenInstanceError):
            settings.include_active = False
        assert hash(settings) == hash(ModelSettings(include_active=True))
