"""PostgreSQL as the destination end to end: backfill, incremental runs, refresh, deletes, models."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from kore_sessions.runtime.pipeline import file_format_for
from kore_sessions.sandbox import GeneratedSession, SandboxServer
from kore_sessions.warehouse.model_settings import ModelSettings
from kore_sessions.warehouse.models import build_models

from .conftest import (
    BOTS,
    HISTORY_START,
    NOW,
    api_time,
    assert_matches_sandbox,
    counted_in_sandbox,
    make_apps,
)

SESSION_VALUES = (
    "session_id, bot_id, channel, user_id, start_time, end_time, session_type, containment_type, "
    "is_developer, session_status, no_of_messages_exchanged, no_of_tasks_executed"
)


def test_postgres_backfill_incremental_refresh_and_delete(
    server: SandboxServer, make_loader: Any, postgres_dsn: str
) -> None:
    """The same runs as on DuckDB, into PostgreSQL: the tables equal the sandbox after each one."""
    loader = make_loader(server, "postgres")
    first = loader.run()
    assert_matches_sandbox(loader, server)
    assert first.sessions_new == len(server.visible_sessions())

    before = loader.query(f"SELECT {SESSION_VALUES} FROM sessions ORDER BY session_id")
    state = loader.state()
    again = loader.run(lookback_minutes=60)
    assert again.sessions_new == 0
    assert loader.query(f"SELECT {SESSION_VALUES} FROM sessions ORDER BY session_id") == before
    assert loader.state() == state

    open_ids = {s for bot in state["bots"].values() for s in bot["open_sessions"]}
    views = {v["sessionId"]: v for v in server.visible_sessions()}
    old_open = sorted(i for i in open_ids if api_time(views[i]["start_time"]) < NOW - timedelta(hours=1))
    assert old_open, "the history has sessions open for over an hour"
    server.remove_sessions(old_open[:1])
    server.advance(timedelta(hours=3))
    moved = loader.run(lookback_minutes=30)
    assert moved.sessions_refreshed > 0 and moved.sessions_deleted == 1
    assert_matches_sandbox(loader, server)
    orphans = loader.query(
        "SELECT COUNT(*) FROM sessions__session_tags WHERE _dlt_root_id NOT IN (SELECT _dlt_id FROM sessions)"
    )
    assert orphans == [(0,)]

    build_models(loader.pipeline, ModelSettings())
    assert loader.query("SELECT SUM(sessions) FROM fct_containment_daily") == [(counted_in_sandbox(server),)]


def job_formats(pipeline: Any) -> set[str]:
    """File formats of the jobs of the sessions' tables in the pipeline's last load."""
    load_info = pipeline.last_trace.last_load_info
    jobs = [job for package in load_info.load_packages for job in package.jobs["completed_jobs"]]
    files = [job.job_file_info for job in jobs]
    return {file.file_format for file in files if file.table_name.startswith("sessions")}


def test_postgres_takes_the_bulk_path_and_keeps_empty_text(make_loader: Any, postgres_dsn: str) -> None:
    """Arrow tables reach PostgreSQL as Parquet through ADBC (not row by row), and what the API
    sent comes back as sent: an empty string stays empty (dlt's CSV COPY would make it NULL),
    a null stays null, on PostgreSQL as on DuckDB."""
    start = NOW - timedelta(hours=5)
    session = GeneratedSession(
        session_id="empty-text",
        bot_id=BOTS[0],
        user_id="",
        channel="rtm",
        start=start,
        end=start + timedelta(minutes=4),
        session_tags=(("topic", ""), ("callerNumber", None), ("intent", "billing")),
    )
    tags_sql = "SELECT name, value, value_type FROM sessions__session_tags ORDER BY name"
    loaded = {}
    with SandboxServer([session], apps=make_apps(), now=NOW) as server:
        for destination in ("postgres", "duckdb"):
            loader = make_loader(server, destination)
            for run, wanted in enumerate(({"parquet"}, {"parquet", "sql"})):
                # the bot's first backfill appends the Parquet; the next run merges (SQL statements)
                loader.run(start_date=HISTORY_START.isoformat(), bot_ids=[BOTS[0]], lookback_minutes=600)
                if destination == "postgres":
                    assert file_format_for(loader.pipeline) == "parquet"
                    assert job_formats(loader.pipeline) == wanted, run
            loaded[destination] = (loader.query("SELECT user_id FROM sessions"), loader.query(tags_sql))
    assert loaded["postgres"] == loaded["duckdb"]
    users, tags = loaded["postgres"]
    assert users == [("",)]
    assert [(name, value) for name, value, _ in tags] == [
        ("callerNumber", None),
        ("intent", "billing"),
        ("topic", ""),
    ]
