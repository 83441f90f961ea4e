"""What the README promises of the `kore-sessions` command and no other test checks, each end to
end: the command in a subprocess, the sandbox API on loopback, its request log as the witness."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from kore_sessions.cli.demo import DEMO_CLOCK_STEP, _demo_sessions
from kore_sessions.sandbox import SandboxApp, SandboxServer

from .cli_helpers import (
    DATABASE,
    EXTRACTED,
    NORMALIZED,
    cli_env,
    expected,
    kore,
    loaded,
    loaded_from,
    normalized,
    packages,
    rsa_key_pair,
)
from .conftest import BOTS, REAL_NOW, api_time, counted_in_sandbox, make_apps


def rows(database: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of a query on a DuckDB file, opened read-only."""
    with duckdb.connect(str(database), read_only=True) as con:
        return con.sql(sql).fetchall()


def window_requests(server: SandboxServer, bot: str) -> list[Any]:
    """The bot's listing requests (those with a dateFrom), in the order they arrived."""
    return [r for r in server.requests if r.bot_id == bot and r.body and "dateFrom" in r.body]


# --- kore-sessions demo ----------------------------------------------------------------------


def demo_sandboxes(first: datetime, last: datetime, demo_days: int, per_day: int) -> list[SandboxServer]:
    """The sandboxes the demo may have served, as they stood at its end (not started: only their
    views are read). The demo generates its sessions from a fixed seed and the second it
    started in, some second in [first, last]; its sandbox's clock starts DEMO_CLOCK_STEP before
    that second and ends at it."""
    found = []
    moment = first.replace(microsecond=0)
    while moment <= last:
        found.append(SandboxServer(_demo_sessions(moment - DEMO_CLOCK_STEP, demo_days, per_day), now=moment))
        moment += timedelta(seconds=1)
    return found


def test_demo_runs_end_to_end_and_loads_what_its_sandbox_served(tmp_path: Path) -> None:
    """`kore-sessions demo --dir d --days 2 --per-day 10` in an empty folder: exit 0, the DuckDB
    file, the pipeline state and the HTML report are written there, the sessions table holds
    exactly what the demo's sandbox served after its clock moved on (open sessions closed as
    it shows them), the daily mart counts what the dashboards count, and the data is as of a
    time after its newest session."""
    outside = ("SOURCES__", "DESTINATION__", "MODELS__")
    env = {k: v for k, v in os.environ.items() if not k.startswith(outside)}
    env.update(DLT_DATA_DIR=str(tmp_path / "dlt_home"), RUNTIME__DLTHUB_TELEMETRY="false")
    first = datetime.now(UTC)
    result = kore(["demo", "--dir", "d", "--days", "2", "--per-day", "10"], env, tmp_path)
    last = datetime.now(UTC)
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "d"
    database, report = folder / "kore_warehouse.duckdb", folder / "kore_containment_report.html"
    assert database.is_file() and report.is_file()
    assert list((folder / "pipelines").rglob("state.json")), "the pipeline state is kept in the folder"
    assert f"report: {report}" in result.stdout
    assert "plotly" in report.read_text(encoding="utf-8")
    sessions = normalized(loaded_from(database))
    candidates = demo_sandboxes(first, last, 2, 10)
    matching = [sandbox for sandbox in candidates if expected(sandbox) == sessions]
    if not matching:  # show how they differ from the likeliest sandbox
        nearest = next((c for c in candidates if set(expected(c)) == set(sessions)), candidates[-1])
        assert sessions == expected(nearest), "the sessions differ from any the demo's sandbox served"
    served = matching[0]
    total = rows(database, "SELECT SUM(sessions) FROM kore_sessions.fct_containment_daily")
    assert total == [(counted_in_sandbox(served),)]
    [(newest_session, data_as_of)] = rows(
        database,
        "SELECT (SELECT MAX(start_time) FROM kore_sessions.sessions), "
        "(SELECT MAX(inserted_at) FROM kore_sessions._dlt_loads WHERE status = 0)",
    )
    assert newest_session <= data_as_of, "the report's 'data as of' comes after every session it shows"


# --- warehouse and output flags ----------------------------------------------------------------


def test_duckdb_file_flag_names_the_warehouse(live_server: SandboxServer, tmp_path: Path) -> None:
    """`load --duckdb-file elsewhere/sessions.duckdb` writes the warehouse there (relative to
    the working folder) and not to ./kore_warehouse.duckdb; `models` reads it with the same
    flag, and without it finds no warehouse."""
    env = cli_env(live_server, tmp_path)
    (tmp_path / "elsewhere").mkdir()
    chosen = ["--duckdb-file", "elsewhere/sessions.duckdb"]
    result = kore(["load", *chosen], env, tmp_path)
    assert result.returncode == 0, result.stderr
    target = tmp_path / "elsewhere" / "sessions.duckdb"
    assert not (tmp_path / DATABASE).exists()
    assert normalized(loaded_from(target)) == expected(live_server)
    assert rows(target, "SELECT SUM(sessions) FROM kore_sessions.fct_containment_daily") == [
        (counted_in_sandbox(live_server),)
    ], "the models are built in the same file"
    models = kore(["models", *chosen], env, tmp_path)
    assert models.returncode == 0, models.stderr
    default = kore(["models"], env, tmp_path)
    assert default.returncode == 1
    assert default.stderr.strip().splitlines() == [
        f"kore-sessions: error: no DuckDB file at {tmp_path.resolve() / DATABASE}: load sessions "
        "first, or name the file with --duckdb-file"
    ]


def test_quiet_leaves_stderr_without_progress_lines(live_server: SandboxServer, tmp_path: Path) -> None:
    """`load --quiet`: nothing on stderr, the summary on stdout; the next run without it shows
    the progress lines --quiet held back."""
    env = cli_env(live_server, tmp_path)
    quiet = kore(["load", "--quiet"], env, tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    assert "windows:" in quiet.stdout and "requests:" in quiet.stdout
    talkative = kore(["load", "--no-models"], env, tmp_path)
    assert talkative.returncode == 0, talkative.stderr
    assert any(line.startswith("[kore-sessions] ") for line in talkative.stderr.splitlines())


# --- model settings ---------------------------------------------------------------------------


def counted(server: SandboxServer, active: bool, non_interactive: bool, developer: bool) -> tuple[int, int]:
    """(sessions, active sessions) the marts count under these settings, from the sandbox."""
    sessions = active_sessions = 0
    for view in server.visible_sessions():
        is_active = view["sessionStatus"] == "active"
        if (
            (not is_active or active)
            and (view["sessionType"] == "interactive" or non_interactive)
            and (not view["isDeveloper"] or developer)
        ):
            sessions += 1
            active_sessions += is_active
    return sessions, active_sessions


INCLUDE_FLAGS = ("--include-active", "--include-non-interactive", "--include-developer")


def test_include_flags_change_the_counted_sessions(live_server: SandboxServer, tmp_path: Path) -> None:
    """Each `--include-*` flag of `load` and `models` adds exactly its sessions to the marts
    (open ones also in `active_sessions`), and `kore_model_settings` records the settings."""
    env = cli_env(live_server, tmp_path)
    sql = "SELECT SUM(sessions), SUM(active_sessions) FROM kore_sessions.fct_containment_daily"
    settings_sql = (
        "SELECT include_active, include_non_interactive, include_developer "
        "FROM kore_sessions.kore_model_settings"
    )
    default = counted(live_server, False, False, False)
    runs = [
        ["load", "--quiet", "--include-active"],
        ["models"],
        *(["models", flag] for flag in INCLUDE_FLAGS[1:]),
        ["models", *INCLUDE_FLAGS],
    ]
    for args in runs:
        flags = [arg for arg in args if arg.startswith("--include-")]
        chosen = tuple(flag in flags for flag in INCLUDE_FLAGS)
        result = kore(args, env, tmp_path)
        assert result.returncode == 0, result.stderr
        wanted = counted(live_server, *chosen)
        assert rows(tmp_path / DATABASE, sql) == [wanted], flags
        assert rows(tmp_path / DATABASE, settings_sql) == [chosen], flags
        if flags:
            assert wanted[0] > default[0], f"the sandbox has sessions {flags} adds"


# --- source flags, observed in the sandbox's request log --------------------------------------


def test_lookback_minutes_sets_where_the_incremental_run_reads_from(
    live_server: SandboxServer, tmp_path: Path
) -> None:
    """After a backfill, `load --lookback-minutes 17` asks each bot for sessions from 17
    minutes before its cursor (the newest start_time the sandbox showed of that bot)."""
    env = cli_env(live_server, tmp_path)
    assert kore(["load", "--no-models"], env, tmp_path).returncode == 0
    live_server.clear_requests()
    result = kore(["load", "--no-models", "--lookback-minutes", "17"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    for bot in BOTS:
        cursor = max(api_time(view["start_time"]) for view in live_server.visible_sessions(bot))
        starts = {api_time(r.body["dateFrom"]) for r in window_requests(live_server, bot)}
        assert starts == {cursor - timedelta(minutes=17)}, bot


# A client window of 1.05 s (the flag's limit over a scaled minute or hour, plus 5%).
CLIENT_WINDOW_SECONDS = 1.05


@pytest.mark.parametrize(
    ("flag", "seconds_per_minute"),
    [("--requests-per-minute", "1.0"), ("--requests-per-hour", repr(1 / 60))],
)
def test_rate_flags_space_the_requests(
    live_server: SandboxServer, tmp_path: Path, flag: str, seconds_per_minute: str
) -> None:
    """`flag 2`, its minute (or hour) scaled to one second: any three requests of a bot reach
    the sandbox at least half the client's window apart (1.05 s; half of it allows for a
    request delayed on its way), where an unlimited client sends them within milliseconds."""
    env = cli_env(
        live_server,
        tmp_path,
        SOURCES__KORE_SESSIONS__SECONDS_PER_MINUTE=seconds_per_minute,
        SOURCES__KORE_SESSIONS__START_DATE=(REAL_NOW - timedelta(days=1)).isoformat(),
        # Small pages: enough requests a bot whatever the hour (a quiet night gives few sessions).
        SOURCES__KORE_SESSIONS__PAGE_SIZE="5",
    )
    result = kore(["load", "--no-models", flag, "2"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "rate limited: 0" in result.stdout
    for bot in BOTS:
        arrivals = sorted(r.at for r in live_server.requests if r.bot_id == bot)
        assert len(arrivals) >= 5, f"{bot}: enough requests to wait for the limit twice"
        spans = [(late - early).total_seconds() for early, late in zip(arrivals, arrivals[2:], strict=False)]
        assert min(spans) >= CLIENT_WINDOW_SECONDS / 2, f"{bot}: three requests within {min(spans):.3f} s"


def test_retry_after_is_waited_before_the_retry(recent_history: list, tmp_path: Path) -> None:
    """A 429 with `Retry-After: 2`: the same request comes again no sooner than 2 s later
    (the client's own backoff here is at most 0.05 s), and the run completes."""
    with SandboxServer(recent_history, apps=make_apps(), now=REAL_NOW, page_cap=100, retry_after=2) as server:
        server.inject("429", count=1)
        result = kore(["load", "--no-models"], cli_env(server, tmp_path), tmp_path)
        assert result.returncode == 0, result.stderr
        assert "retries: 1 (rate limited: 1)" in result.stdout
        (refused,) = [r for r in server.requests if r.fault == "429"]
        same = (refused.path, refused.body)
        retry = next(r for r in server.requests if r.at > refused.at and (r.path, r.body) == same)
        waited = (retry.at - refused.at).total_seconds()
        assert waited >= 2, f"retried {waited:.3f} s after a Retry-After of 2 s"
        assert normalized(loaded(tmp_path)) == expected(server)


# --- signing algorithms -----------------------------------------------------------------------


@dataclass(frozen=True)
class OneAlgorithmApp(SandboxApp):
    """A sandbox app that accepts tokens signed with `algorithm` and no other."""

    algorithm: str = "HS256"

    def verification_keys(self) -> list[tuple[Any, list[str]]]:
        """The app's key for its one algorithm."""
        key = self.client_secret if self.algorithm.startswith("HS") else self.public_key_pem
        return [(key, [self.algorithm])]


# A secret as long as HS512 wants (64 bytes).
LONG_SECRET = "hs512-app-secret-" + "0123456789abcdef" * 4


@pytest.mark.parametrize(("algorithm", "other"), [("HS512", "HS256"), ("RS512", "RS256")])
def test_hs512_and_rs512_apps_load_end_to_end(
    recent_history: list, tmp_path: Path, algorithm: str, other: str
) -> None:
    """An app that accepts only `algorithm`: configured with it, `load` gets every answer and
    the warehouse equals the sandbox; configured with `other`, the app refuses the first
    request (so the first run really signed with `algorithm`)."""
    private, public = rsa_key_pair()
    app = OneAlgorithmApp(
        client_id="cs-strict-app", client_secret=LONG_SECRET, public_key_pem=public, algorithm=algorithm
    )
    hmac = algorithm.startswith("HS")
    credentials = {
        "SOURCES__KORE_SESSIONS__CREDENTIALS__CLIENT_ID": app.client_id,
        "SOURCES__KORE_SESSIONS__CREDENTIALS__CLIENT_SECRET": LONG_SECRET if hmac else "",
        "SOURCES__KORE_SESSIONS__CREDENTIALS__PRIVATE_KEY": "" if hmac else private,
        "SOURCES__KORE_SESSIONS__CREDENTIALS__ALGORITHM": algorithm,
    }
    with SandboxServer(recent_history, apps=[app], now=REAL_NOW, page_cap=100) as server:
        env = cli_env(server, tmp_path, **credentials)
        result = kore(["load"], env, tmp_path)
        assert result.returncode == 0, result.stderr
        assert normalized(loaded(tmp_path)) == expected(server)
        assert all(r.status == 200 and r.claims for r in server.requests)
        server.clear_requests()
        (tmp_path / "other").mkdir()
        env = {**env, "SOURCES__KORE_SESSIONS__CREDENTIALS__ALGORITHM": other}
        refused = kore(["load", "--no-models"], env, tmp_path / "other")
        assert refused.returncode == 1
        assert "HTTP 401" in refused.stderr.strip().splitlines()[-1]
        assert {r.status for r in server.requests} == {401}


# --- the command line itself ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["load", "--no-such-flag"], "--no-such-flag"),
        ([], "command"),
        (["frobnicate"], "frobnicate"),
        (["models", "--days", "x"], "--days"),
        (["load", "--page-size", "many"], "--page-size"),
    ],
)
def test_command_line_misuse_is_one_line_and_exit_2(
    live_server: SandboxServer, tmp_path: Path, args: list[str], named: str
) -> None:
    """An unknown flag or command, a missing command, a value of the wrong type: exit 2 and one
    line `kore-sessions: error: ...` naming what is wrong (no usage text), nothing sent or
    written."""
    result = kore(args, cli_env(live_server, tmp_path), tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"one line, not:\n{result.stderr}"
    assert lines[0].startswith("kore-sessions: error: ") and named in lines[0], lines[0]
    assert result.stdout == ""
    assert not live_server.requests
    assert not (tmp_path / DATABASE).exists()


# --- a kill at dlt's most delicate moment --------------------------------------------------------

# `kore-sessions` that SIGKILLs itself right after dlt's normalize step renamed a package into
# the load folder and before it deleted the extracted copy ("Committing storage, do not kill
# this process", says dlt): the moment a SIGKILL at random hits now and then.
KILLED_AFTER_NORMALIZE_COMMIT = """
import os, signal
from dlt.common.storages.load_storage import LoadStorage

commit = LoadStorage.commit_new_load_package

def commit_then_die(self, load_id):
    commit(self, load_id)
    os.kill(os.getpid(), signal.SIGKILL)

LoadStorage.commit_new_load_package = commit_then_die
"""


def test_killed_while_normalize_commits_then_rerun_gives_exactly_the_sandbox(
    live_server: SandboxServer, tmp_path: Path
) -> None:
    """SIGKILL between dlt's rename of the normalized package and the deletion of its extracted
    copy (both are left on disk): the next `load` has nothing to clean up by hand, it finishes
    the package and ends at exactly the sandbox, as the README promises of any SIGKILL."""
    env = cli_env(live_server, tmp_path)
    killed = kore(["load", "--quiet", "--no-models"], env, tmp_path, patch=KILLED_AFTER_NORMALIZE_COMMIT)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert live_server.requests, "killed after fetching"
    left = packages(tmp_path, EXTRACTED) & packages(tmp_path, NORMALIZED)
    assert left, "the package is left both extracted and normalized"
    result = kore(["load", "--no-models"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert normalized(loaded(tmp_path)) == expected(live_server)
