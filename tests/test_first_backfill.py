"""A bot's first backfill appends (nothing it loads can be in the tables yet); every other run
merges. Packages that merge go through dlt's staging dataset, packages that append do not: the
staging tables say which way each run went. A kill at random moments of a first backfill
leaves, once the load is run again, every session and message once in every table."""

from __future__ import annotations

import os
import random
import shutil
import signal
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from kore_sessions.runtime.pipeline import make_pipeline
from kore_sessions.sandbox import GeneratedSession, SandboxServer, generate_sessions
from kore_sessions.source.sessions import extract
from kore_sessions.warehouse.unfinished_jobs import unmarked_jobs

from .cli_helpers import (
    DATABASE,
    PIPELINE_FOLDER,
    cli_env,
    expected,
    kill_when,
    kore,
    loaded,
    normalized,
    pending_packages,
    sessions_after_crash,
)
from .conftest import (
    BOTS,
    HISTORY_START,
    NOW,
    PAGE_CAP,
    POSTGRES_DSN,
    REAL_NOW,
    RECENT_HISTORY_DAYS,
    Loader,
    assert_matches_sandbox,
    make_apps,
)
from .postgres_rows import postgres_ids, postgres_rows_twice
from .sandbox_helpers import hand_made_session
from .test_messages_resource import BOTH, UNBOUND

# Two-day windows, one a package: a first backfill of the history goes in ten packages.
PACKAGES = {"window_hours": 48, "windows_per_package": 1, "appended_windows_per_package": 1}
# Every table each resource loads, with its key (a child row's key is its `_dlt_id`).
TABLES = {
    "sessions": "session_id",
    "sessions__user_tags": "_dlt_id",
    "sessions__session_tags": "_dlt_id",
    "sessions__session_lang": "_dlt_id",
    "messages": "message_id",
    "messages__components": "_dlt_id",
    "messages__tags": "_dlt_id",
}
# The sessions resource's tables, with their keys (a load of sessions only).
SESSION_TABLES = {table: key for table, key in TABLES.items() if not table.startswith("messages")}


@pytest.fixture(scope="module")
def history() -> list[GeneratedSession]:
    """Twenty days of two bots before NOW, some still open."""
    return generate_sessions(BOTS, HISTORY_START, NOW, per_day=30, seed=23, active_share=0.3)


def staged(loader: Loader) -> list[str]:
    """Tables of dlt's staging dataset: only a package that merges makes them."""
    rows = loader.query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'kore_sessions_staging'"
    )
    return sorted(row[0] for row in rows if not row[0].startswith("_dlt"))


def assert_no_row_twice(query: Any, tables: dict[str, str] = TABLES) -> None:
    """No key twice in any table that exists."""
    for table, key in tables.items():
        try:
            total, distinct = query(f"SELECT COUNT(*), COUNT(DISTINCT {key}) FROM {table}")[0]
        except Exception as error:  # a table of a resource not loaded
            assert "does not exist" in str(error), error
            continue
        assert total == distinct, f"{table}: {total - distinct} rows twice"


def test_a_first_backfill_appends_every_package_and_the_next_run_merges(
    history: list, tmp_path: Path
) -> None:
    with SandboxServer(history, apps=make_apps(), now=NOW, page_cap=PAGE_CAP) as server:
        loader = Loader(server, tmp_path)
        summary = loader.run(resources=BOTH, **UNBOUND, **PACKAGES)
        assert summary.packages > 4
        assert loader.run_record.appending == {"sessions": True, "messages": True}
        assert staged(loader) == [], "no package of a first backfill merged"
        schema = loader.pipeline.default_schema.tables
        assert {schema[table]["write_disposition"] for table in TABLES} == {"append"}
        assert_matches_sandbox(loader, server)
        assert_no_row_twice(loader.query)
        server.advance(timedelta(hours=2))  # open sessions close, more messages come
        loader.run(resources=BOTH, **UNBOUND, **PACKAGES)
        assert loader.run_record.appending == {"sessions": False, "messages": False}
        assert "sessions" in staged(loader) and "messages" in staged(loader)
        assert loader.pipeline.default_schema.tables["sessions__user_tags"]["write_disposition"] == "merge"
        assert_matches_sandbox(loader, server)
        assert_no_row_twice(loader.query)


def test_a_merge_after_a_first_backfill_reaches_child_tables_without_rows(tmp_path: Path) -> None:
    """The first backfill appends session tags; a later package without any (a bounded run over
    untagged sessions) merges: every child table follows its root, rows or not."""
    early, late = NOW - timedelta(days=4), NOW - timedelta(days=1)
    sessions = [
        hand_made_session(1, early, 5, bot_id=BOTS[0], session_tags=(("topic", "billing"),)),
        hand_made_session(2, late, 5, bot_id=BOTS[0]),
    ]
    with SandboxServer(sessions, apps=make_apps(), now=NOW) as server:
        loader = Loader(server, tmp_path)
        loader.run(**UNBOUND, bot_ids=[BOTS[0]], start_date=(early - timedelta(hours=1)).isoformat())
        assert loader.run_record.appending == {"sessions": True}
        until = late + timedelta(hours=1)
        bounded = {"start_date": (late - timedelta(hours=1)).isoformat(), "end_date": until.isoformat()}
        loader.run(**UNBOUND, bot_ids=[BOTS[0]], **bounded)
        assert loader.run_record.appending == {"sessions": False}
        tables = loader.pipeline.default_schema.tables
        children = [child for child in TABLES if child.startswith("sessions__") and child in tables]
        assert "sessions__session_tags" in children
        assert {tables[child]["write_disposition"] for child in children} == {"merge"}
        assert loader.query("SELECT session_id, name FROM sessions__session_tags") == [(f"{1:024x}", "topic")]
        assert sorted(loader.query("SELECT session_id FROM sessions")) == [(f"{1:024x}",), (f"{2:024x}",)]


def test_rows_of_the_bots_without_state_merge(history: list, tmp_path: Path) -> None:
    """A second pipeline (another partition name) with no state of the bots, into a dataset
    that has their rows: it merges, and nothing is loaded twice."""
    with SandboxServer(history, apps=make_apps(), now=NOW, page_cap=PAGE_CAP) as server:
        first = Loader(server, tmp_path)
        first.run(**UNBOUND)
        second = Loader(server, tmp_path)
        second.pipeline = make_pipeline(
            "duckdb", pipelines_dir=tmp_path / "p2", duckdb_path=tmp_path / "w.duckdb", pipeline_name="part"
        )
        second.run(**UNBOUND)
        assert second.run_record.appending == {"sessions": False}
        assert_no_row_twice(first.query)
        assert_matches_sandbox(first, server)


def test_child_rows_without_their_root_merge(history: list, tmp_path: Path) -> None:
    """A killed load can commit a child table's job before its root's: a pipeline without state
    that finds such rows (no root row) does not take the tables for empty, and merges."""
    with SandboxServer(history, apps=make_apps(), now=NOW, page_cap=PAGE_CAP) as server:
        first = Loader(server, tmp_path)
        first.run(**UNBOUND)
        with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
            con.execute("DELETE FROM kore_sessions.sessions")  # the user tags stay, without a root
        second = Loader(server, tmp_path)
        second.pipeline = make_pipeline(
            "duckdb", pipelines_dir=tmp_path / "p2", duckdb_path=tmp_path / "w.duckdb", pipeline_name="part"
        )
        second.run(**UNBOUND)
        assert second.run_record.appending == {"sessions": False}
        assert_no_row_twice(first.query, {"sessions": "session_id"})


def test_a_bounded_first_backfill_merges(history: list, tmp_path: Path) -> None:
    with SandboxServer(history, apps=make_apps(), now=NOW, page_cap=PAGE_CAP) as server:
        loader = Loader(server, tmp_path)
        until = NOW - timedelta(days=5)
        loader.run(**UNBOUND, start_date=HISTORY_START.isoformat(), end_date=until.isoformat())
        assert loader.run_record.appending == {"sessions": False}
        assert "sessions" in staged(loader)
        loader.run(**UNBOUND)  # the incremental walk's first run: the bot has rows, so it merges
        assert loader.run_record.appending == {"sessions": False}
        assert_matches_sandbox(loader, server)
        assert_no_row_twice(loader.query)


def test_a_merged_package_is_cut_to_its_sessions_and_an_appended_one_to_more(
    history: list, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DuckDB holds a merge in memory: a package that merges keeps, after each bot's first
    window, as many windows as hold about its share of SESSIONS_PER_MERGED_PACKAGE (here 40 for
    two bots: one day's window of ~30 sessions each). A first backfill's packages append: they
    take up to `appended_windows_per_package` windows, not `windows_per_package`, cut the same
    way at SESSIONS_PER_APPENDED_PACKAGE (here 200: about three windows a bot). Every session
    once either way, and no window asked twice."""
    monkeypatch.setattr(extract, "SESSIONS_PER_MERGED_PACKAGE", 40)
    monkeypatch.setattr(extract, "SESSIONS_PER_APPENDED_PACKAGE", 200)
    days = {"window_hours": 24, "windows_per_package": 1, "appended_windows_per_package": 10}
    with SandboxServer(history, apps=make_apps(), now=NOW, page_cap=PAGE_CAP) as server:
        loader = Loader(server, tmp_path)
        appended = loader.run(**UNBOUND, **days)
        assert loader.run_record.appending == {"sessions": True}
        windows = appended.run.totals.windows // len(BOTS)
        assert windows >= 20
        assert 2 <= windows / appended.packages <= 4, "an appended package held about 200 sessions"
        assert_asked_once(server)
        server.clear_requests()
        three = {**days, "windows_per_package": 3}
        bounded = {"start_date": HISTORY_START.isoformat(), "end_date": NOW.isoformat()}
        merged = loader.run(**UNBOUND, **three, **bounded)
        assert loader.run_record.appending == {"sessions": False}
        assert merged.packages >= windows - 1, "a merged package holds about a window a bot"
        assert_asked_once(server)
        assert_matches_sandbox(loader, server)
        assert_no_row_twice(loader.query)


# Appended packages uncut (the default SESSIONS_PER_APPENDED_PACKAGE, ~30 sessions a day a bot)
# and cut at it (40: a share of 20 a bot, under a day's window, as a busy bot among many): the
# options, and the windows of a bot each package holds.
APPENDED_SIZES = {
    "uncut": (None, {"windows_per_package": 1, "appended_windows_per_package": 8}, 8),
    "cut": (40, {"windows_per_package": 3, "appended_windows_per_package": 10}, 3),
}


@pytest.mark.parametrize("size", list(APPENDED_SIZES))
def test_an_appended_package_holds_its_windows_or_at_least_windows_per_package(
    history: list, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: str
) -> None:
    """A first backfill whose windows hold few sessions goes in packages of
    `appended_windows_per_package` windows (the last one the rest); one whose share of
    SESSIONS_PER_APPENDED_PACKAGE is smaller than its first window is not cut below
    `windows_per_package`: its packages were never smaller than that."""
    sessions, options, windows_a_package = APPENDED_SIZES[size]
    if sessions is not None:
        monkeypatch.setattr(extract, "SESSIONS_PER_APPENDED_PACKAGE", sessions)
    with SandboxServer(history, apps=make_apps(), now=NOW, page_cap=PAGE_CAP) as server:
        loader = Loader(server, tmp_path)
        appended = loader.run(**UNBOUND, window_hours=24, **options)
        windows = appended.run.totals.windows // len(BOTS)
        assert appended.packages == -(-windows // windows_a_package)
        assert_asked_once(server)
        assert_matches_sandbox(loader, server)
        assert_no_row_twice(loader.query)


def test_into_postgres_a_first_backfill_keeps_windows_per_package(history: list, tmp_path: Path) -> None:
    """PostgreSQL loads a larger package no faster and with more memory: a first backfill into it
    appends in packages of `windows_per_package` windows, uncut, whatever
    `appended_windows_per_package` says. The last window (the hours the loader's clock leads by and
    the skew allowance's) is a short tail: it goes in the last package, not one of its own."""
    days = {"window_hours": 24, "windows_per_package": 2, "appended_windows_per_package": 8}
    with SandboxServer(history, apps=make_apps(), now=NOW, page_cap=PAGE_CAP) as server:
        loader = Loader(server, tmp_path, "postgres")
        try:
            appended = loader.run(**UNBOUND, **days)
            assert loader.run_record.appending == {"sessions": True}
            windows = appended.run.totals.windows // len(BOTS)
            assert windows == 21
            assert appended.packages == 10
            assert_matches_sandbox(loader, server)
            assert_no_row_twice(loader.query)
        finally:
            loader.drop_dataset()


def assert_asked_once(server: SandboxServer) -> None:
    """No page of a window was asked twice (a window cut from a package is not asked in it)."""
    asked = [(r.body["dateFrom"], r.body["dateTo"], r.body.get("skip"), r.path) for r in server.requests]
    assert len(asked) == len(set(asked)), "a window cut from a package was asked in it"


def test_messages_added_to_loaded_sessions_append_only_while_they_have_no_rows(
    history: list, tmp_path: Path
) -> None:
    """Sessions loaded before messages were asked for: the sessions merge, the messages' first
    backfill appends."""
    with SandboxServer(history, apps=make_apps(), now=NOW, page_cap=PAGE_CAP) as server:
        loader = Loader(server, tmp_path)
        loader.run(**UNBOUND)
        loader.run(resources=BOTH, **UNBOUND, **PACKAGES)
        assert loader.run_record.appending == {"sessions": False, "messages": True}
        assert_no_row_twice(loader.query)
        messages = loader.query("SELECT COUNT(*) FROM messages")[0][0]
        assert messages == len(server.visible_messages(version=2))


def rows_twice(cwd: Path) -> dict[str, int]:
    """Per table of the CLI's DuckDB file, how many rows repeat a key (read from a copy: a killed
    run's write-ahead log is replayed there, not in the real file)."""
    database, twice = cwd / DATABASE, {}
    if not database.exists():
        return {}
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / DATABASE
        for suffix in ("", ".wal"):
            if Path(f"{database}{suffix}").exists():
                shutil.copy(f"{database}{suffix}", f"{copy}{suffix}")
        twice = _rows_twice(copy)
    return twice


def _rows_twice(database: Path) -> dict[str, int]:
    """Per table of a DuckDB file, how many rows repeat a key."""
    twice: dict[str, int] = {}
    with duckdb.connect(str(database)) as con:
        names = {row[0] for row in con.sql("SELECT table_name FROM information_schema.tables").fetchall()}
        for table, key in TABLES.items():
            if table in names:
                total, distinct = con.sql(
                    f"SELECT COUNT(*), COUNT(DISTINCT {key}) FROM kore_sessions.{table}"
                ).fetchall()[0]
                twice[table] = total - distinct
    return twice


# How the killed first backfills are cut into packages: a window of a day a bot each, or up to
# the default `appended_windows_per_package` of half a day, cut at two windows a bot (~60
# sessions each) by a SESSIONS_PER_APPENDED_PACKAGE of 240 set in the command's process.
KILLED_PACKAGES = {
    "a window each": {"WINDOW_HOURS": "24", "WINDOWS_PER_PACKAGE": "1", "APPENDED_WINDOWS_PER_PACKAGE": "1"},
    # From where the history starts (cli_env's start is a day before it), so that the first
    # package's first window holds sessions and the walk cuts at its count: from an empty first
    # window it keeps every window, and whether a later package was cut depended on the moments
    # of the kills and the time of day.
    "cut appends": {
        "WINDOW_HOURS": "12",
        "WINDOWS_PER_PACKAGE": "1",
        "START_DATE": (REAL_NOW - timedelta(days=RECENT_HISTORY_DAYS)).isoformat(),
    },
}
# Set in every process of the command (as its sitecustomize); each cut walk writes a line.
CUT_APPENDS = """
from kore_sessions.source.api import walk
from kore_sessions.source.sessions import extract
extract.SESSIONS_PER_APPENDED_PACKAGE = 240
fit_package = walk.WindowWalk._fit_package
def noted_fit(self):
    windows = len(self.windows)
    fit_package(self)
    if len(self.windows) < windows:
        with open({cuts!r}, "a") as cuts:
            cuts.write(self.bot_key + "\\n")
walk.WindowWalk._fit_package = noted_fit
"""


@pytest.mark.parametrize("packages", list(KILLED_PACKAGES))
def test_a_first_backfill_killed_at_random_moments_loses_and_doubles_nothing(
    live_server: SandboxServer, tmp_path: Path, packages: str
) -> None:
    """SIGKILL a first backfill of sessions and messages after a random delay (the whole run
    takes about 7 s), four times in a row (each run goes on from what the last left, appending
    while it still may); then load to the end: every session and message once, in every table,
    child tables included. Its packages hold a window a bot, or windows cut to their sessions
    (the walk drops the rest and the next package resumes where it stopped)."""
    live_server.set_latency(0.03)
    options = {f"SOURCES__KORE_SESSIONS__{name}": value for name, value in KILLED_PACKAGES[packages].items()}
    env = cli_env(
        live_server,
        tmp_path,
        **options,
        SOURCES__KORE_SESSIONS__RESOURCES="sessions,messages",
        SOURCES__KORE_SESSIONS__REQUESTS_PER_MINUTE="100000",
    )
    if packages == "cut appends":  # every process of the command: sitecustomize runs at its start
        patched = tmp_path / "patched"
        patched.mkdir()
        (patched / "sitecustomize.py").write_text(CUT_APPENDS.format(cuts=str(tmp_path / "cuts")))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(patched), env.get("PYTHONPATH", "")]))
    seed = time.time_ns()  # a new draw every run of the test; the seed is in any failure
    moments = random.Random(seed)
    for _ in range(4):
        deadline = time.monotonic() + moments.uniform(1.0, 2.8)
        killed = kill_when(
            ["load", "--quiet", "--no-models"],
            env,
            tmp_path,
            live_server,
            lambda deadline=deadline: time.monotonic() >= deadline,
        )
        assert killed.returncode == -signal.SIGKILL, seed
        assert all(count == 0 for count in rows_twice(tmp_path).values()), seed
    live_server.set_latency(0)
    fresh = "# in a new process, which runs the sitecustomize" if packages == "cut appends" else ""
    result = kore(["load", "--no-models"], env, tmp_path, patch=fresh)
    assert result.returncode == 0, result.stderr
    assert not pending_packages(tmp_path)
    assert normalized(loaded(tmp_path)) == expected(live_server), seed
    assert rows_twice(tmp_path) == dict.fromkeys(TABLES, 0), seed
    with duckdb.connect(str(tmp_path / DATABASE), read_only=True) as con:
        ids = [row[0] for row in con.sql("SELECT message_id FROM kore_sessions.messages").fetchall()]
    assert sorted(ids) == sorted(v["_id"] for v in live_server.visible_messages(version=2)), seed
    if packages == "cut appends":
        assert (tmp_path / "cuts").read_text(), "a run appended in packages cut to their sessions"


def killed_after_a_commit(table: str) -> str:
    """A patch: the process dies right after the destination committed the first job of
    `table`, before dlt marks the job done (as a SIGKILL at that moment would)."""
    return f"""
import os
from dlt.common.destination import client
_release = client.RunnableLoadJob._release
def release(self, next_state):
    if next_state == "completed" and os.path.basename(self._file_path).startswith("{table}."):
        os._exit(9)
    _release(self, next_state)
client.RunnableLoadJob._release = release
"""


KILLED_AFTER_A_COMMIT = killed_after_a_commit("sessions")


def test_an_append_killed_between_its_commit_and_its_mark_is_loaded_once(
    live_server: SandboxServer, tmp_path: Path
) -> None:
    """dlt runs a started job again unless it marked it done; the rows the killed run had
    committed are taken out first (DuckDB would keep both)."""
    env = cli_env(live_server, tmp_path)
    killed = kore(["load", "--quiet", "--no-models"], env, tmp_path, patch=KILLED_AFTER_A_COMMIT)
    assert killed.returncode == 9, killed.stderr
    left = {job.table for job in unmarked_jobs(tmp_path / PIPELINE_FOLDER) if job.disposition == "append"}
    assert "sessions" in left, "a committed job dlt will run again"
    assert sessions_after_crash(tmp_path), "its rows are in the warehouse"
    result = kore(["load", "--no-models"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert normalized(loaded(tmp_path)) == expected(live_server)
    assert rows_twice(tmp_path) == {table: 0 for table in TABLES if not table.startswith("messages")}


@pytest.mark.parametrize("table", ["sessions", "sessions__user_tags"])
def test_on_postgres_an_append_killed_after_its_commit_finishes_on_the_next_load(
    live_server: SandboxServer, tmp_path: Path, postgres_dataset: str, table: str
) -> None:
    """On PostgreSQL `sessions`' `_dlt_id` is unique: without the rows taken out, its job run
    again would fail on every later load. A child table's is not (`NESTED_KEY_HINTS`): its job
    run again would load its rows twice."""
    env = cli_env(live_server, tmp_path, DESTINATION__POSTGRES__CREDENTIALS=POSTGRES_DSN)
    args = ["load", "--quiet", "--no-models", "--destination", "postgres", "--dataset", postgres_dataset]
    killed = kore(args, env, tmp_path, patch=killed_after_a_commit(table))
    assert killed.returncode == 9, killed.stderr
    left = unmarked_jobs(tmp_path / PIPELINE_FOLDER)
    assert table in {job.table for job in left if job.disposition == "append"}
    result = kore(args, env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(postgres_ids(postgres_dataset)) == sorted(expected(live_server))
    assert postgres_rows_twice(postgres_dataset, SESSION_TABLES) == dict.fromkeys(SESSION_TABLES, 0)
