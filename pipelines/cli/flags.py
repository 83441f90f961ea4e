"""The command line's flags, derived from the fields that declare them, and the argument types.

A setting is declared once, as a dataclass field (a source option, a model setting, a warehouse
setting); its flag comes from the field and its metadata:

- `help`: the flag's help (required);
- `flag`: the flag's name (default `--<name>`, underscores as dashes);
- `type`: the argument's type (default from the field's annotation: bool is a switch, int,
  float, else str); `choices`: the values allowed;
- `repeatable`: the flag may be given again, each value appended;
- `renamed_to`: an old name, still accepted, left out of the help.

The value lands in the namespace under the field's name, None when the flag is not given (so
the configuration's value stands).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from kore_sessions.source.options import option_fields
from kore_sessions.warehouse.model_settings import model_setting_fields

# The argument type of a field's annotation (with Optional/None stripped); any other is str.
KINDS: dict[str, type] = {"int": int, "float": float, "bool": bool}
# Source options whose flags only `load` has (on `audit`, --start/--end name its range).
DATE_OPTIONS = ("start_date", "end_date")


def flag_of(field: dataclasses.Field[Any]) -> str:
    """The flag of a field: its `flag` metadata, else `--<name>`."""
    return field.metadata.get("flag") or "--" + field.name.replace("_", "-")


def kind_of(field: dataclasses.Field[Any]) -> Any:
    """The argument type of a field: its `type` metadata, else by its annotation."""
    if "type" in field.metadata:
        return field.metadata["type"]
    annotation = str(field.type).replace("Optional[", "").replace(" | None", "").rstrip("]")
    return KINDS.get(annotation, str)


def add_field_flags(
    command: argparse.ArgumentParser,
    fields: Iterable[dataclasses.Field[Any]],
    show_defaults: bool = False,
    helps: Mapping[str, str] | None = None,
) -> None:
    """One flag per field, as its metadata says (see the module's docstring).

    Args:
        command: The (sub)command's parser.
        fields: The fields, in the order their flags are listed.
        show_defaults: Add the field's default (when not None or False) and "(repeatable)" to
            the help (source options; other helps say their defaults themselves).
        helps: A help other than the field's, by field name (the same flag, for another use).

    Raises:
        TypeError: a field without its help.
    """
    for field in fields:
        if not field.metadata.get("help"):
            raise TypeError(f"{field.name} declares no help (its field's metadata), so it has no flag")
        text = (helps or {}).get(field.name) or field.metadata["help"]
        if show_defaults and field.default not in (None, False):
            text += f" (default {field.default})"
        if show_defaults and field.metadata.get("repeatable"):
            text += " (repeatable)"
        shown = argparse.SUPPRESS if "renamed_to" in field.metadata else text.replace("%", "%%")
        kind = kind_of(field)
        how: dict[str, Any] = {"dest": field.name, "help": shown}
        if kind is bool:
            how.update(action="store_true", default=None)
        elif field.metadata.get("repeatable"):
            how.update(action="append")
        else:
            how.update(type=kind)
        if "choices" in field.metadata:
            how["choices"] = field.metadata["choices"]
        command.add_argument(flag_of(field), **how)


def add_source_flags(command: argparse.ArgumentParser, with_dates: bool = False) -> None:
    """The source's options as flags (`load`, `audit`, `lookup`): one per option of
    `KoreSessionsOptions`, each overriding its key in [sources.kore_sessions]; `--start`/`--end`
    set `start_date`/`end_date` on `load` only; then `--quiet`."""
    fields = [field for field in option_fields() if with_dates or field.name not in DATE_OPTIONS]
    add_field_flags(command, fields, show_defaults=True)
    add_quiet_flag(command)


def add_quiet_flag(command: argparse.ArgumentParser) -> None:
    """`--quiet`: no progress lines (the commands that load)."""
    command.add_argument("--quiet", action="store_true", help="no progress lines")


def add_model_flags(command: argparse.ArgumentParser) -> None:
    """The model settings as flags: one per field of `ModelSettings`, each overriding its key
    in [models]."""
    add_field_flags(command, model_setting_fields())


def given_values(args: argparse.Namespace, fields: Iterable[dataclasses.Field[Any]]) -> dict[str, Any]:
    """The values the command line gives for these fields (flags not given are left out)."""
    values = {field.name: getattr(args, field.name, None) for field in fields}
    return {name: value for name, value in values.items() if value is not None}


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
