"""The source's options: each declared once, with its help; the CLI derives its flags from them;
`windows_per_package` keeps its old name `windows_per_run` working, with a notice."""

from __future__ import annotations

import argparse
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from kore_sessions.cli.command_settings import SourceSettings
from kore_sessions.cli.flags import flag_of, kind_of
from kore_sessions.cli.parser import build_parser
from kore_sessions.sandbox import SandboxServer
from kore_sessions.source import options as options_module
from kore_sessions.source.api.timestamps import format_api_timestamp
from kore_sessions.source.options import KoreSessionsOptions, option_fields, resolve_options

from .cli_helpers import cli_env, kore
from .conftest import REAL_NOW

NOTICE = "notice: windows_per_run is now windows_per_package; the old name still works"
CONFIGURED = {
    "SOURCES__KORE_SESSIONS__HOST": "https://platform.kore.ai",
    "SOURCES__KORE_SESSIONS__BOT_IDS": "st-a",
    "SOURCES__KORE_SESSIONS__CREDENTIALS__CLIENT_ID": "cs-a",
    "SOURCES__KORE_SESSIONS__CREDENTIALS__CLIENT_SECRET": "secret-of-the-app",
}


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The required options set in the environment, and no notice given yet in this process."""
    for name, value in CONFIGURED.items():
        monkeypatch.setenv(name, value)
    for name in ("WINDOWS_PER_RUN", "WINDOWS_PER_PACKAGE"):
        monkeypatch.delenv(f"SOURCES__KORE_SESSIONS__{name}", raising=False)
    monkeypatch.setattr(options_module, "_NOTICED", set())
    return monkeypatch


def help_of(command: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The `--help` text of a subcommand, unwrapped (one line a flag), spaces collapsed."""
    monkeypatch.setenv("COLUMNS", "10000")
    parser = build_parser()
    subcommands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return " ".join(subcommands.choices[command].format_help().split())


@pytest.mark.unit
def test_every_option_has_its_help_in_its_field_and_on_the_command_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each option's help is its field's metadata (not parsed out of a docstring), and `load
    --help` shows it beside the option's flag."""
    shown = help_of("load", monkeypatch)
    for field in option_fields():
        text = field.metadata.get("help", "")
        assert text.strip(), f"option {field.name} has no help"
        if "renamed_to" in field.metadata:
            assert flag_of(field) not in shown, f"the old flag {flag_of(field)} is listed"
            continue
        metavar = "" if kind_of(field) is bool else f" {field.name.upper()}"
        line = f"{flag_of(field)}{metavar} {' '.join(text.split())}"
        assert line in shown, f"load --help lacks {field.name}'s flag and help: {line}"
    assert "Attributes:" not in (KoreSessionsOptions.__doc__ or ""), "the help is said in one place"


@pytest.mark.unit
def test_every_option_is_a_flag_of_load_that_overrides_it() -> None:
    """A value on the command line becomes the option's override, under its own name."""
    samples: dict[Any, list[str]] = {bool: [], int: ["2"], float: ["2.5"], str: ["2026-01-02"]}
    for field in option_fields():
        argv = [flag_of(field), *samples[kind_of(field)]]
        if field.name == "end_date":
            argv += ["--start", "2026-01-01"]
        overrides = SourceSettings.from_arguments(build_parser().parse_args(["load", *argv])).overrides
        assert field.name in overrides, f"{argv} set no {field.name}"


@pytest.mark.unit
@pytest.mark.parametrize(
    ("env", "given", "expected"),
    [
        ({"WINDOWS_PER_RUN": "5"}, {}, 5),
        ({}, {"windows_per_run": 4}, 4),
        ({"WINDOWS_PER_RUN": "5", "WINDOWS_PER_PACKAGE": "7"}, {}, 7),
        ({"WINDOWS_PER_RUN": "5"}, {"windows_per_package": 2}, 2),
        ({"WINDOWS_PER_PACKAGE": "7"}, {"windows_per_run": 1}, 1),
    ],
)
def test_the_old_name_windows_per_run_still_works_with_one_notice(
    configured: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    given: dict[str, Any],
    expected: int,
) -> None:
    """The old key (here via its environment variable) and the old keyword set
    windows_per_package; the new name wins at the same level, a given value over config; the
    notice is one line, once a process."""
    for name, value in env.items():
        configured.setenv(f"SOURCES__KORE_SESSIONS__{name}", value)
    for _ in range(2):
        options = resolve_options(**given)
        assert options.windows_per_package == expected
        assert options.run_config().windows_per_package == expected
    assert capsys.readouterr().err.splitlines() == [NOTICE]


@pytest.mark.unit
def test_the_new_name_alone_gives_no_notice(
    configured: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    configured.setenv("SOURCES__KORE_SESSIONS__WINDOWS_PER_PACKAGE", "6")
    assert resolve_options().windows_per_package == 6
    assert resolve_options().windows_per_package == 6
    assert resolve_options(windows_per_package=2).windows_per_package == 2
    assert capsys.readouterr().err == ""


@pytest.mark.unit
def test_the_old_key_in_config_toml_still_works(
    configured: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`windows_per_run` under [sources.kore_sessions] in .dlt/config.toml."""
    (tmp_path / ".dlt").mkdir()
    (tmp_path / ".dlt" / "config.toml").write_text("[sources.kore_sessions]\nwindows_per_run = 9\n")
    configured.chdir(tmp_path)
    from dlt.common.configuration.container import Container
    from dlt.common.configuration.specs.pluggable_run_context import PluggableRunContext

    Container()[PluggableRunContext].reload_providers()
    try:
        assert resolve_options().windows_per_package == 9
    finally:
        configured.undo()
        Container()[PluggableRunContext].reload_providers()
    assert capsys.readouterr().err.splitlines() == [NOTICE]


@pytest.mark.unit
def test_the_old_flag_still_works_hidden_from_the_help(monkeypatch: pytest.MonkeyPatch) -> None:
    args = build_parser().parse_args(["load", "--windows-per-run", "2"])
    assert SourceSettings.from_arguments(args).overrides == {"windows_per_run": 2}
    args = build_parser().parse_args(["load", "--windows-per-package", "2"])
    assert SourceSettings.from_arguments(args).overrides == {"windows_per_package": 2}
    assert "--windows-per-package WINDOWS_PER_PACKAGE" in help_of("load", monkeypatch)
    for command in ("load", "audit", "lookup"):
        assert "windows-per-run" not in help_of(command, monkeypatch)


def test_a_load_with_the_old_flag_says_so_once_and_loads_a_package_a_window(
    live_server: SandboxServer, tmp_path: Path
) -> None:
    """End to end: `--windows-per-run 1` loads one window a bot per package (several packages of
    a bounded backfill, which merges), with the notice once on stderr, however often the options
    are resolved."""
    env = cli_env(live_server, tmp_path, SOURCES__KORE_SESSIONS__WINDOW_HOURS="48")
    start, end = (format_api_timestamp(at) for at in (REAL_NOW - timedelta(days=6), REAL_NOW))
    bounded = ["--start", start, "--end", end]
    result = kore(["load", "--quiet", "--no-models", "--windows-per-run", "1", *bounded], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines().count(NOTICE) == 1, result.stderr
    packages = re.search(r"loaded as (\d+) packages", result.stdout)
    assert packages and int(packages[1]) >= 3, result.stdout
