"""The command line's arguments become typed settings once: the warehouse flags are declared
once (`WarehouseSettings`), and nothing below a command's top receives the parsed arguments."""

from __future__ import annotations

import argparse
import ast
import dataclasses
from pathlib import Path

import pytest
from kore_sessions.cli.command_settings import WarehouseSettings
from kore_sessions.cli.flags import flag_of
from kore_sessions.cli.parser import build_parser

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
# The functions that may receive the parsed arguments: each command, the parser's entry and
# guard, and the constructors of typed settings.
READ_ARGUMENTS = {"run_guarded", "from_arguments", "model_settings", "given_values"}
WAREHOUSE_COMMANDS = ("load", "audit", "models", "report", "export", "forget")


def subcommand(name: str) -> argparse.ArgumentParser:
    """The parser of one subcommand."""
    parser = build_parser()
    subcommands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return subcommands.choices[name]


@pytest.mark.parametrize("command", WAREHOUSE_COMMANDS)
def test_every_warehouse_setting_is_a_flag_of_each_command(command: str) -> None:
    flags = {flag for action in subcommand(command)._actions for flag in action.option_strings}
    for field in dataclasses.fields(WarehouseSettings):
        assert field.metadata["help"].strip() and flag_of(field) in flags, f"{command} lacks {field.name}"
    extra = {"export": ["DIR"], "forget": ["--user-id", "u"]}.get(command, [])
    given = [
        "--destination", "postgres", "--dataset", "d", "--pipeline-name", "p", "--pipelines-dir", "x",
        "--duckdb-file", "f.duckdb", "--turn-timeout", "5",
    ]
    settings = WarehouseSettings.from_arguments(build_parser().parse_args([command, *given, *extra]))
    assert settings == WarehouseSettings("postgres", "d", "p", "x", "f.duckdb", 5.0)
    defaults = WarehouseSettings.from_arguments(build_parser().parse_args([command, *extra]))
    assert defaults == WarehouseSettings() and defaults.destination == "duckdb"


def test_lookup_has_the_pipelines_folder_only_and_the_demo_none() -> None:
    lookup = {flag for action in subcommand("lookup")._actions for flag in action.option_strings}
    assert "--pipelines-dir" in lookup and "--destination" not in lookup
    args = build_parser().parse_args(["lookup", "--session-id", "s", "--pipelines-dir", "x"])
    assert WarehouseSettings.from_arguments(args) == WarehouseSettings(pipelines_dir="x")
    assert WarehouseSettings.from_arguments(build_parser().parse_args(["demo"])) == WarehouseSettings()


def test_no_helper_receives_the_parsed_arguments() -> None:
    """Outside cli/ nothing knows argparse; inside it only the commands and the constructors of
    typed settings take a Namespace."""
    for path in sorted((ROOT / "pipelines").rglob("*.py")) + sorted((ROOT / "sources").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        takes = [
            node.name
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and any("Namespace" in ast.unparse(arg.annotation or ast.Constant("")) for arg in node.args.args)
        ]
        if path.parent != ROOT / "pipelines" / "cli":
            assert "argparse" not in path.read_text(encoding="utf-8"), f"{path} knows argparse"
            continue
        helpers = [name for name in takes if not name.startswith("command_") and name not in READ_ARGUMENTS]
        assert not helpers, f"{path.name}: {helpers} take the parsed arguments"
