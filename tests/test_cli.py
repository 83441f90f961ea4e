"""The `kore-sessions` command in a subprocess, configured only the documented ways."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
from kore_sessions.sandbox import SandboxApp, SandboxServer, generate_sessions

from .cli_helpers import (
    DATABASE,
    LOADED,
    PACKAGE_A_DAY,
    assert_killed_with_work_left,
    cli_env,
    expected,
    kill_when,
    kore,
    load_started,
    loaded,
    normalized,
    package_reached,
    requests_seen,
    rsa_key_pair,
)
from .conftest import ADMIN_ID, ADMIN_SECRET, BOTS, CLIENT_SECRET, REAL_NOW, make_apps


def test_load_from_env_config_prints_progress_and_summary(live_server: SandboxServer, tmp_path: Path) -> None:
    result = kore(["load"], cli_env(live_server, tmp_path), tmp_path)
    assert result.returncode == 0, result.stderr
    assert "window" in result.stderr, "progress lines while it works"
    for word in ("windows:", "requests:", "retries:", "new", "updated", "time:"):
        assert word in result.stdout
    assert normalized(loaded(tmp_path)) == expected(live_server)


def test_flags_override_config(live_server: SandboxServer, tmp_path: Path) -> None:
    env = cli_env(live_server, tmp_path, SOURCES__KORE_SESSIONS__HOST="http://127.0.0.1:9")
    result = kore(["load", "--host", live_server.url, "--bot", BOTS[0]], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert {r.bot_id for r in live_server.requests} == {BOTS[0]}


def test_a_load_that_found_no_session_builds_empty_models(tmp_path: Path) -> None:
    """Bots without a session yet: the load succeeds and the models are built, empty (a load
    exits 0 without models only on a destination that is not a SQL warehouse)."""
    with SandboxServer([], apps=make_apps(), now=REAL_NOW, bot_ids=BOTS) as empty:
        result = kore(["load"], cli_env(empty, tmp_path), tmp_path)
        report = kore(["report"], cli_env(empty, tmp_path), tmp_path)
    assert result.returncode == 0, result.stderr
    assert "models: 18 built (5 views, 13 tables)" in result.stdout, result.stdout
    assert report.returncode == 0, report.stderr


def test_an_earlier_start_on_a_pipeline_with_state_says_how_to_load_that_range(
    live_server: SandboxServer, tmp_path: Path
) -> None:
    """A run with state goes on from its cursor; it names the range `--start` asked for and did
    not load, and the bounded backfill it prints loads exactly that range."""
    env = cli_env(live_server, tmp_path)
    later = REAL_NOW - timedelta(days=2)
    first = kore(["load", "--start", later.isoformat()], env, tmp_path)
    assert first.returncode == 0, first.stderr
    assert "before what" not in first.stdout, "a first run has nothing to say about it"
    first_load = loaded(tmp_path)
    assert first_load and len(first_load) < len(expected(live_server)), "the first run left older sessions"
    earlier = kore(["load"], env, tmp_path)  # the configured start_date: 6 days back
    assert earlier.returncode == 0, earlier.stderr
    notice = next(line for line in earlier.stdout.splitlines() if "before what" in line)
    assert f"before what {len(BOTS)} bot(s) loaded first" in notice
    assert set(loaded(tmp_path)) == set(first_load), "an incremental run does not go back"
    bounded = notice.split("load the earlier range once with ")[1].split()
    backfill = kore(["load", *bounded], env, tmp_path)
    assert backfill.returncode == 0, backfill.stderr
    assert "before what" not in backfill.stdout
    assert normalized(loaded(tmp_path)) == expected(live_server)
    again = kore(["load"], env, tmp_path)
    assert again.returncode == 0, again.stderr
    assert "before what" not in again.stdout, "the backfill moved loaded_from back: nothing left to say"


@pytest.mark.parametrize(
    ("args", "env_change", "message"),
    [
        (["load", "--host", "not a url"], {}, "is not a URL"),
        (["load", "--end", "2026-01-01"], {}, "--end needs --start"),
        (["load", "--start", "2026-13-45"], {}, "start_date"),
        (["load", "--start", "2026-02-01", "--end", "2026-01-01"], {}, "not after start_date"),
        (["load", "--page-size", "0"], {}, "page_size"),
        (["load", "--window-hours", "200"], {}, "under 7 days"),
        (["load", "--page-size", "20000"], {}, "page_size"),
        (["load", "--max-in-flight", "0"], {}, "max_in_flight"),
        (["load", "--start", "yesterday"], {}, "start_date"),
        (["load"], {"SOURCES__KORE_SESSIONS__END_DATE": "2026-01-01"}, "not after start_date"),
    ],
)
def test_bad_input_is_one_line_exit_2_nothing_written(
    live_server: SandboxServer, tmp_path: Path, args: list[str], env_change: dict, message: str
) -> None:
    result = kore(args, cli_env(live_server, tmp_path, **env_change), tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not live_server.requests
    assert not (tmp_path / DATABASE).exists()


@pytest.mark.parametrize(
    ("change", "status", "hint"),
    [
        (
            {"SOURCES__KORE_SESSIONS__CREDENTIALS__CLIENT_SECRET": "wrong-secret-abcdef"},
            "401",
            "published",
        ),
        ({"SOURCES__KORE_SESSIONS__BOT_IDS": "st-unknown-bot"}, "404", "bot id"),
        (
            {
                "SOURCES__KORE_SESSIONS__BOT_IDS": "",
                "SOURCES__KORE_SESSIONS__ALL_BOTS": "true",
            },
            "403",
            "scope",
        ),
    ],
)
def test_api_refusals_fail_fast_with_message_and_no_state_advanced(
    live_server: SandboxServer, tmp_path: Path, change: dict, status: str, hint: str
) -> None:
    first = kore(["load"], cli_env(live_server, tmp_path), tmp_path)
    assert first.returncode == 0, first.stderr
    state_files = _state_snapshot(tmp_path)
    before = loaded(tmp_path)
    live_server.clear_requests()
    result = kore(["load"], cli_env(live_server, tmp_path, **change), tmp_path)
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[-1]
    assert f"HTTP {status}" in line and hint in line
    assert 1 <= len(live_server.requests) <= len(BOTS), "no retry of a refusal (bots run in parallel)"
    assert _state_snapshot(tmp_path) == state_files
    assert loaded(tmp_path) == before


def test_killed_midway_and_rerun_gives_exactly_the_sandbox(
    live_server: SandboxServer, tmp_path: Path
) -> None:
    """SIGKILL mid-fetch, while a package is being loaded, and after a package is committed
    with more to come: each kill lands mid-run and leaves work, and the rerun ends at exactly
    the sandbox. (A kill while normalize commits: tests/test_cli_promises.py.)"""
    live_server.set_latency(0.03)
    env = cli_env(live_server, tmp_path, **PACKAGE_A_DAY)
    points = [
        lambda: requests_seen(live_server, 3),
        lambda: load_started(tmp_path),
        lambda: package_reached(tmp_path, LOADED),
    ]
    for point in points:
        killed = kill_when(["load", "--quiet"], env, tmp_path, live_server, point())
        assert_killed_with_work_left(killed, tmp_path, live_server)
    live_server.set_latency(0)
    result = kore(["load", "--no-models"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert normalized(loaded(tmp_path)) == expected(live_server)


def test_secrets_never_reach_output_state_or_tables(live_server: SandboxServer, tmp_path: Path) -> None:
    outputs = [kore(["load"], cli_env(live_server, tmp_path), tmp_path)]
    assert outputs[0].returncode == 0
    bad = cli_env(live_server, tmp_path, SOURCES__KORE_SESSIONS__HOST="http://127.0.0.1:9")
    outputs.append(kore(["load", "--quiet"], {**bad, "SOURCES__KORE_SESSIONS__MAX_ATTEMPTS": "2"}, tmp_path))
    assert outputs[1].returncode == 1
    for output in outputs:
        assert CLIENT_SECRET not in output.stdout + output.stderr
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.suffix not in (".duckdb", ".wal"):
            assert CLIENT_SECRET.encode() not in path.read_bytes(), path
    with duckdb.connect(str(tmp_path / DATABASE), read_only=True) as con:
        tables = con.sql("SELECT table_schema, table_name FROM information_schema.tables").fetchall()
        for schema, table in tables:
            text = con.sql(f'SELECT CAST(COLUMNS(*) AS VARCHAR) FROM "{schema}"."{table}"').fetchall()
            assert CLIENT_SECRET not in json.dumps(text, default=str), table


def test_admin_route_with_all_bots_flag(recent_history: list, tmp_path: Path) -> None:
    with SandboxServer(recent_history, apps=make_apps(), now=REAL_NOW, page_cap=200) as server:
        env = cli_env(
            server,
            tmp_path,
            SOURCES__KORE_SESSIONS__CREDENTIALS__CLIENT_ID=ADMIN_ID,
            SOURCES__KORE_SESSIONS__CREDENTIALS__CLIENT_SECRET=ADMIN_SECRET,
        )
        result = kore(["load", "--all-bots"], env, tmp_path)
        assert result.returncode == 0, result.stderr
        assert normalized(loaded(tmp_path)) == expected(server)


def test_rs256_app_with_enforced_jti(recent_history: list, tmp_path: Path) -> None:
    private_pem, public_pem = rsa_key_pair()
    app = SandboxApp(client_id="cs-rsa-app", public_key_pem=public_pem, enforce_jti=True)
    with SandboxServer(recent_history, apps=[app], now=REAL_NOW, page_cap=100) as server:
        env = cli_env(
            server,
            tmp_path,
            SOURCES__KORE_SESSIONS__CREDENTIALS__CLIENT_ID="cs-rsa-app",
            SOURCES__KORE_SESSIONS__CREDENTIALS__CLIENT_SECRET="",
            SOURCES__KORE_SESSIONS__CREDENTIALS__ALGORITHM="RS256",
            SOURCES__KORE_SESSIONS__CREDENTIALS__PRIVATE_KEY=private_pem,
        )
        result = kore(["load"], env, tmp_path)
        assert result.returncode == 0, result.stderr
        assert normalized(loaded(tmp_path)) == expected(server)
        jtis = [r.claims["jti"] for r in server.requests]
        assert len(jtis) == len(set(jtis)) > 1


def _state_snapshot(folder: Path) -> dict[str, bytes]:
    """Every pipeline state file under the dlt home, by path."""
    return {str(path): path.read_bytes() for path in (folder / "dlt_home").rglob("state.json")}


def no_sessions_loaded(cwd: Path) -> bool:
    """Whether the command's DuckDB file has no sessions table (or is not there at all)."""
    if not (cwd / DATABASE).exists():
        return True
    with duckdb.connect(str(cwd / DATABASE), read_only=True) as con:
        found = con.sql(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'sessions'"
        ).fetchall()
    return found == [(0,)]


def test_an_answer_not_in_the_documented_shape_fails_the_run(
    live_server: SandboxServer, tmp_path: Path
) -> None:
    """`sessions` that is not a list: exit 1, one line naming the problem, nothing written."""
    live_server.inject("bad_shape", count=10)
    result = kore(["load"], cli_env(live_server, tmp_path), tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "sessions" in lines[0] and "list" in lines[0], lines
    assert no_sessions_loaded(tmp_path)


def test_a_session_without_start_time_fails_the_run_and_names_it(tmp_path: Path) -> None:
    """A session the API returns without `start_time` is never dropped silently: the run fails
    with one line naming the session, and the warehouse is not changed."""
    broken = generate_sessions(BOTS[:1], REAL_NOW - timedelta(hours=5), REAL_NOW, per_day=200, seed=3)
    # Visible at once: the generator may make the newest session a late arrival, unseen yet.
    broken = [*broken[:-1], replace(broken[-1], visible_at=None, extra={"start_time": None})]
    with SandboxServer(broken, apps=make_apps(), now=REAL_NOW, page_cap=50) as server:
        env = cli_env(server, tmp_path, SOURCES__KORE_SESSIONS__BOT_IDS=BOTS[0])
        result = kore(["load"], env, tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and broken[-1].session_id in lines[0] and "start_time" in lines[0], lines
    assert no_sessions_loaded(tmp_path)
