"""A new user's mistakes: each answered in one line on stderr, with the exit code the README
promises, naming what to fix, with no library warning or exception name, and nothing left behind."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kore_sessions.sandbox import SandboxServer

from .cli_helpers import cli_env, kore
from .conftest import BOTS, CLIENT_ID

# A Python exception's name, which a person should never have to read.
EXCEPTION_NAME = re.compile(r"\b\w+(Error|Exception|Warning)\b")
CONFIGURED = {
    "SOURCES__KORE_SESSIONS__HOST": "http://127.0.0.1:9",
    "SOURCES__KORE_SESSIONS__BOT_IDS": BOTS[0],
    "SOURCES__KORE_SESSIONS__CREDENTIALS__CLIENT_ID": CLIENT_ID,
    "SOURCES__KORE_SESSIONS__CREDENTIALS__CLIENT_SECRET": "s3cret-s3cret-s3cret-s3cret-s3cret",
}
TOMORROW = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()


def bare_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """An environment with no configuration of the project at all."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "DESTINATION__", "MODELS__"))
    }
    return {**env, "DLT_DATA_DIR": str(tmp_path / "dlt_home"), "RUNTIME__DLTHUB_TELEMETRY": "false", **extra}


# What a run leaves in dlt's pipelines folder whatever happens: the pipeline's lock file (a
# process may hold it at any moment) and the rate budget (it remembers requests the server
# counted): never removed (pipelines/leftovers.py).
KEPT_ON_FAILURE = re.compile(
    r"^dlt_home/pipelines/(kore_sessions\.lock|kore_sessions_rate_budget\.sqlite(-wal|-shm)?)$"
)


def left_behind(folder: Path) -> list[str]:
    """Files and folders a failed first run left under `folder`, but the lock and the budget."""
    files = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir()]
    kept = [name for name in files if KEPT_ON_FAILURE.match(name)]
    folders = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_dir()}
    holding = {"dlt_home", "dlt_home/pipelines"} if kept else set()
    return sorted((set(files) - set(kept)) | (folders - holding))


def assert_one_line(result: subprocess.CompletedProcess[str], code: int, *fragments: str) -> str:
    """Exit `code`, and exactly one stderr line that names the problem in words."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code, result.stderr
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("kore-sessions: error: "), line
    assert not EXCEPTION_NAME.search(line), f"an exception name reached the user: {line}"
    for fragment in fragments:
        assert fragment in line, line
    return line


MISTAKES = [
    # (command line, configuration, exit code, what the line must name)
    (
        ["load"],
        {},
        2,
        [
            "missing configuration: host, bot_ids (or all_bots), credentials.client_id, "
            "credentials.client_secret",
            "SOURCES__KORE_SESSIONS__HOST",
        ],
    ),
    (
        ["load"],
        {"SOURCES__KORE_SESSIONS__HOST": "https://x"},
        2,
        ["missing configuration: bot_ids (or all_bots)"],
    ),
    (
        ["load"],
        {**CONFIGURED, "SOURCES__KORE_SESSIONS__PAGE_SIZE": "abc"},
        2,
        ["page_size 'abc' is not a whole number", "SOURCES__KORE_SESSIONS__PAGE_SIZE"],
    ),
    (
        ["load"],
        {**CONFIGURED, "SOURCES__KORE_SESSIONS__WINDOW_HOURS": "x"},
        2,
        ["window_hours 'x' is not a number"],
    ),
    (
        ["load"],
        {**CONFIGURED, "SOURCES__KORE_SESSIONS__ALL_BOTS": "maybe"},
        2,
        ["all_bots 'maybe' is not true or false"],
    ),
    (
        ["load"],
        {**CONFIGURED, "SOURCES__KORE_SESSIONS__CREDENTIALS__ALGORITHM": "XX9"},
        2,
        ["credentials.algorithm 'XX9' is not supported"],
    ),
    (
        ["load"],
        {**CONFIGURED, "SOURCES__KORE_SESSIONS__CREDENTIALS__ALGORITHM": "RS256"},
        2,
        ["missing configuration: credentials.private_key"],
    ),
    (["load", "--host", "not a url"], CONFIGURED, 2, ["is not a URL"]),
    (["load", "--all-bots", "--bot", "b"], CONFIGURED, 2, ["either --bot or --all-bots"]),
    (["load"], {**CONFIGURED, "SOURCES__KORE_SESSIONS__ALL_BOTS": "true"}, 2, ["not both"]),
    (["load", "--start", "2026-13-45"], CONFIGURED, 2, ["start_date"]),
    (["load", "--start", TOMORROW], CONFIGURED, 2, ["is in the future"]),
    (["load", "--end", "2026-01-01"], CONFIGURED, 2, ["--end needs --start"]),
    (["load", "--page-size", "0"], CONFIGURED, 2, ["page_size must be at least 1"]),
    (["load", "--window-hours", "200"], CONFIGURED, 2, ["under 7 days"]),
    (["load", "--max-in-flight", "0"], CONFIGURED, 2, ["max_in_flight"]),
    (["load", "--retention-days", "3"], CONFIGURED, 2, ["retention_days must be at least 15"]),
    (["load", "--pipeline-name", "a__b"], CONFIGURED, 2, ["pipeline name 'a__b'"]),
    (["load", "--page-size", "many"], CONFIGURED, 2, ["--page-size", "invalid int value"]),
    (["load", "--colour"], CONFIGURED, 2, ["unrecognized arguments: --colour"]),
    (["lod"], CONFIGURED, 2, ["invalid choice: 'lod'"]),
    ([], CONFIGURED, 2, ["the following arguments are required"]),
    (["models", "--days", "x"], CONFIGURED, 2, ["must be a whole number"]),
    (["models", "--time-zone", "CET"], CONFIGURED, 2, ["unknown reporting time zone 'CET'"]),
    (["models"], CONFIGURED, 1, ["no DuckDB file at", "load sessions first"]),
    (["report"], CONFIGURED, 1, ["no DuckDB file at"]),
    (["audit", "--days", "3", "--start", "2026-01-01"], CONFIGURED, 2, ["either --days or --start/--end"]),
    (["audit", "--start", TOMORROW], CONFIGURED, 2, ["is in the future"]),
    (["export", "--format", "xml", "out"], CONFIGURED, 2, ["invalid choice: 'xml'"]),
    (["load", "--destination", "bogus"], CONFIGURED, 2, ["unknown destination 'bogus'", "--destination"]),
    (["models", "--destination", "bogus"], CONFIGURED, 2, ["unknown destination 'bogus'"]),
    (
        ["load", "--destination", "postgres"],
        CONFIGURED,
        2,
        [
            "missing configuration of the postgres destination: credentials",
            "DESTINATION__POSTGRES__CREDENTIALS",
        ],
    ),
    (
        ["models", "--destination", "postgres"],
        {**CONFIGURED, "DESTINATION__POSTGRES__CREDENTIALS": "postgresql://kore:wrong@127.0.0.1:9/kore"},
        1,
        ["the warehouse cannot be reached", "127.0.0.1"],
    ),
    (["load", "--dataset", "Bad-Name"], CONFIGURED, 2, ["dataset name 'Bad-Name' cannot be used"]),
    (["models", "--dataset", "1abc"], CONFIGURED, 2, ["dataset name '1abc' cannot be used"]),
    (["load", "--retry-deadline", "0"], CONFIGURED, 2, ["retry_deadline must be at least 1"]),
    (["load", "--appended-windows-per-package", "0"], CONFIGURED, 2, ["appended_windows_per_package must"]),
    (["demo", "--per-day", "0"], CONFIGURED, 2, ["--per-day", "at least 1"]),
    (["lookup", "--call-id", " "], CONFIGURED, 2, ["--call-id", "must not be blank"]),
    (["lookup", "--session-id", ""], CONFIGURED, 2, ["--session-id", "must not be blank"]),
    (["load", "--duckdb-file", "new/x.duckdb"], CONFIGURED, 1, ["cannot connect to http://127.0.0.1:9"]),
    (
        ["load"],
        {**CONFIGURED, "DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG": "memory_limit=1GB"},
        2,
        ["global_config must be a table of DuckDB settings"],
    ),
    (  # settings given as JSON in the environment are taken (the run gets as far as the API)
        ["load"],
        {**CONFIGURED, "DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG": '{"memory_limit": "1GB"}'},
        1,
        ["cannot connect to http://127.0.0.1:9"],
    ),
]


@pytest.mark.parametrize(
    ("args", "config", "code", "fragments"),
    MISTAKES,
    ids=[" ".join(m[0]) + f" {i}" for i, m in enumerate(MISTAKES)],
)
def test_a_mistake_is_answered_in_one_line(
    args: list[str], config: dict[str, str], code: int, fragments: list[str], tmp_path: Path
) -> None:
    result = kore(args, bare_env(tmp_path, **config), tmp_path)
    assert_one_line(result, code, *fragments)
    assert not left_behind(tmp_path), left_behind(tmp_path)


def test_export_into_a_file_names_the_path(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    result = kore(["export", "--format", "csv", "afile"], bare_env(tmp_path, **CONFIGURED), tmp_path)
    assert_one_line(result, 2, "afile is a file, not a folder")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["export", "--format", "csv", "afile/sub"], "afile is a file, not a folder"),
        (["report", "--output", "afile/r.html"], "afile is a file, not a folder"),
        (["report", "--output", "."], ". is a folder: give the HTML file to write"),
    ],
    ids=["export-under-a-file", "report-under-a-file", "report-into-a-folder"],
)
def test_an_output_that_cannot_be_written_is_named(args: list[str], fragment: str, tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    result = kore(args, bare_env(tmp_path, **CONFIGURED), tmp_path)
    assert_one_line(result, 2, fragment)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_a_port_that_does_not_speak_http_fails_in_seconds(tmp_path: Path) -> None:
    """A port of another service closes every connection without an answer: the run gives up
    after a few tries (seconds, not minutes of retries), naming the host."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        closer = threading.Thread(target=_close_every_connection, args=(listener,), daemon=True)
        closer.start()
        started = time.monotonic()
        env = bare_env(tmp_path, **{**CONFIGURED, "SOURCES__KORE_SESSIONS__HOST": f"http://127.0.0.1:{port}"})
        result = kore(["load", "--backoff-max", "1"], env, tmp_path)
        took = time.monotonic() - started
    assert_one_line(result, 1, f"no HTTP answer from http://127.0.0.1:{port}", "check the host and its port")
    assert took < 30, f"gave up after {took:.0f} s"
    assert not left_behind(tmp_path), left_behind(tmp_path)


def _close_every_connection(listener: socket.socket) -> None:
    """Accept connections and close each at once, as a port of another service may."""
    with contextlib.suppress(OSError):
        while True:
            connection, _ = listener.accept()
            connection.close()


def test_version_and_defaults_in_help(tmp_path: Path) -> None:
    version = kore(["--version"], bare_env(tmp_path), tmp_path)
    assert version.returncode == 0 and re.fullmatch(r"kore-sessions \d+\.\d+\.\d+\n", version.stdout)
    shown = kore(["load", "--help"], bare_env(tmp_path), tmp_path).stdout
    for default in ("(default 1000)", "(default 144)", "(default 60)", "(default 1800)", "(default 4)"):
        assert default in " ".join(shown.split()), default


def test_a_wrong_port_fails_at_once_with_a_hint_and_leaves_nothing_behind(tmp_path: Path) -> None:
    """Nothing answers on the host's port: the first requests are refused, the run gives up at
    once (not after minutes of retries) naming the host, and removes what it made."""
    result = kore(["load"], bare_env(tmp_path, **CONFIGURED), tmp_path)
    assert_one_line(result, 1, "cannot connect to http://127.0.0.1:9", "check the host and its port")
    assert not left_behind(tmp_path), left_behind(tmp_path)


def test_a_short_wrong_secret_is_one_401_line_without_pyjwt_warnings(
    live_server: SandboxServer, tmp_path: Path
) -> None:
    env = cli_env(live_server, tmp_path, SOURCES__KORE_SESSIONS__CREDENTIALS__CLIENT_SECRET="short")
    result = kore(["load"], env, tmp_path)
    assert_one_line(result, 1, "HTTP 401", "client id and secret")
    assert not (tmp_path / "kore_warehouse.duckdb").exists(), "nothing loaded, nothing left"


def test_a_run_after_a_refused_one_starts_clean_and_loads(live_server: SandboxServer, tmp_path: Path) -> None:
    refused = kore(
        ["load"],
        cli_env(live_server, tmp_path, SOURCES__KORE_SESSIONS__CREDENTIALS__CLIENT_SECRET="x"),
        tmp_path,
    )
    assert refused.returncode == 1
    loaded = kore(["load", "--no-models"], cli_env(live_server, tmp_path), tmp_path)
    assert loaded.returncode == 0, loaded.stderr
    assert "finished" not in loaded.stdout, "no package was left by the refused run"
