"""`kore-sessions audit` checks the messages too: per UTC day and bot, the API's `total` (summed
over the bot's channels, one request a channel) against the messages the warehouse holds
(erased ones counted as held); `--repair` reloads the ranges that differ and deletes what the
complete reload no longer lists.

Why not per session against `noOfMessagesExchanged`: v2 (the route the loader reads) leaves
Alert- and Action-task messages out, so a session's count cannot match its loaded messages.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dlt
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from kore_sessions.runtime.audit import Auditor, AuditRange, AuditResult
from kore_sessions.runtime.pipeline import make_pipeline
from kore_sessions.sandbox import SandboxServer, generate_sessions
from kore_sessions.source import KoreCredentials, resolve_options
from kore_sessions.source.api.client import KoreApiError, Route
from kore_sessions.source.api.day_counts import day_slices, stretches
from kore_sessions.source.api.timestamps import parse_timestamp
from kore_sessions.source.messages.history_rules import MESSAGES_TABLE
from kore_sessions.source.messages.message_counts import MessageCounter
from kore_sessions.warehouse.erasures import ERASED_MESSAGES_TABLE, keep_erasures_out, message_key
from kore_sessions.warehouse.forget import MESSAGE_TABLES, delete_rows, forget_users
from kore_sessions.warehouse.held import AUDIT_TABLE, record_checks

from .cli_helpers import DATABASE, cli_env, kore
from .conftest import (
    BOTS,
    CLIENT_ID,
    CLIENT_SECRET,
    FAST_RETRIES,
    NOW,
    POSTGRES_DSN,
    REAL_NOW,
    Loader,
    drop_postgres_dataset,
    make_apps,
)

# Both resources, configured the documented way, and no rate limit the sandbox does not have.
BOTH = {
    "SOURCES__KORE_SESSIONS__RESOURCES": '["sessions","messages"]',
    "SOURCES__KORE_SESSIONS__REQUESTS_PER_MINUTE": "100000",
    "SOURCES__KORE_SESSIONS__REQUESTS_PER_HOUR": "1000000",
}
UNLIMITED = {"requests_per_minute": 100000, "requests_per_hour": 1000000}
# The loader's first day in the in-process tests (the sandbox's clock stands at NOW).
FIRST = NOW - timedelta(days=4)


# --- the counts ------------------------------------------------------------------------


class ChannelServer:
    """A client stand-in holding one message a minute on each of its channels; it refuses a
    span of 7 days less a millisecond (400), as a server that rounds dateTo up does."""

    def __init__(self, channels: dict[str, int]) -> None:
        self.per_minute = channels
        self.asked: list[tuple[str, timedelta]] = []

    def post(self, route: Route, bot: str, body: dict[str, Any], params: Any = None) -> dict[str, Any]:
        start, end = parse_timestamp(body["dateFrom"]), parse_timestamp(body["dateTo"])
        assert start is not None and end is not None and body["limit"] == 1
        self.asked.append((body["channelType"], end - start))
        if end - start > timedelta(days=7) - timedelta(seconds=1):
            raise KoreApiError("HTTP 400 from Kore.ai: The duration ... should be less than 7 days", 400)
        minutes = int((end - start) / timedelta(minutes=1)) + 1
        return {
            "messages": [],
            "moreAvailable": False,
            "total": minutes * self.per_minute[body["channelType"]],
        }


def test_a_days_count_is_one_request_per_channel_and_halves_a_refused_week() -> None:
    server = ChannelServer({"rtm": 1, "msteams": 2})
    counter = MessageCounter(server, page_size=100, channels={"bot": ("msteams", "rtm")})  # type: ignore[arg-type]
    day = datetime(2026, 11, 2, tzinfo=UTC)
    assert counter.count("bot", day, day + timedelta(minutes=9)) == 10 * 3
    assert [channel for channel, _ in server.asked] == ["msteams", "rtm"], "one request a channel"
    server.asked.clear()
    weeks = day_slices(day, day + timedelta(days=14) - timedelta(milliseconds=1))
    assert [counter.count("bot", g[0].start, g[-1].end) for g in stretches(weeks)] == [7 * 1440 * 3] * 2
    assert len(server.asked) == 1 + 2 * 2 + 2 * 2, "refused once, then each week in halves, per channel"
    assert MessageCounter(server, 100, {}).count_once("other", day, day) == 1, "rtm when none is known"


# --- kore_audit -------------------------------------------------------------------------

# The instants of a check, as `kore_audit` held them before it had a `resource`.
OLD_MOMENTS = ("checked_from", "checked_to", "checked_at")


def test_kore_audit_made_before_messages_gains_its_resource_column(warehouse: str, tmp_path: Path) -> None:
    """A `kore_audit` of an older version (no `resource`) keeps its rows, now marked
    `sessions`, and takes the messages' checks beside them, on DuckDB and PostgreSQL."""
    if warehouse == "postgres":
        destination = dlt.destinations.postgres(credentials=POSTGRES_DSN)
        dataset = f"kore_test_{uuid.uuid4().hex[:10]}"
        pipeline = make_pipeline(destination, dataset_name=dataset, pipelines_dir=tmp_path / "p")
    else:
        pipeline = make_pipeline("duckdb", pipelines_dir=tmp_path / "p", duckdb_path=tmp_path / "w.duckdb")
    day = date(2026, 11, 1)
    moment = datetime(2026, 11, 1, tzinfo=UTC)
    old = (day, BOTS[0], 5, 4, 1, moment, moment, moment, False)
    try:
        with pipeline.sql_client() as sql:
            sql.create_dataset()
            table = sql.make_qualified_table_name(AUDIT_TABLE)
            moments = ", ".join(f"{name} TIMESTAMP WITH TIME ZONE" for name in OLD_MOMENTS)
            sql.execute_sql(
                f"CREATE TABLE {table} (day DATE, bot_id VARCHAR, api_sessions BIGINT, "
                f"warehouse_sessions BIGINT, difference BIGINT, {moments}, repaired BOOLEAN)"
            )
            sql.execute_sql(f"INSERT INTO {table} VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)", *old)
        record_checks(pipeline, [(day, BOTS[0], 7, 7, 0, moment, moment, moment, False, MESSAGES_TABLE)])
        record_checks(pipeline, [(day, BOTS[0], 5, 5, 0, moment, moment, moment, True, "sessions")])
        with pipeline.sql_client() as sql:
            rows = sql.execute_sql(f"SELECT resource, api_sessions, repaired FROM {table} ORDER BY 2, 3")
        found = [tuple(row) for row in rows]
        assert found == [("sessions", 5, False), ("sessions", 5, True), ("messages", 7, False)]
    finally:
        if warehouse == "postgres":
            drop_postgres_dataset(pipeline.dataset_name)


# --- in process, on DuckDB and PostgreSQL ----------------------------------------------


@pytest.fixture
def small_server() -> Any:
    """Four days of both bots, the sandbox's clock at NOW."""
    history = generate_sessions(BOTS, FIRST, NOW, per_day=30, seed=61)
    with SandboxServer(history, apps=make_apps(), now=NOW, page_cap=40) as server:
        yield server


def options(server: SandboxServer, **extra: Any) -> dict[str, Any]:
    """The source's options of the in-process audits."""
    return {
        "host": server.url,
        "bot_ids": BOTS,
        "start_date": FIRST.isoformat(),
        "credentials": KoreCredentials(client_id=CLIENT_ID, client_secret=CLIENT_SECRET),
        **FAST_RETRIES,
        **UNLIMITED,
        **extra,
    }


def audit(loader: Loader, repair: bool = False, **extra: Any) -> AuditResult:
    """An audit of the loader's pipeline over the last 7 days, on the loader's clock."""
    overrides = options(loader.server, **extra)
    auditor = Auditor(loader.pipeline, resolve_options(**overrides), overrides, clock=loader.clock)
    return auditor.run(AuditRange.last_days(7, loader.clock()), repair=repair)


def messages_of_day(pipeline: dlt.Pipeline, bot: str, day: date) -> list[str]:
    """The ids of a bot's messages the warehouse holds that were created on a UTC day."""
    start = datetime.combine(day, datetime.min.time(), UTC)
    with pipeline.sql_client() as sql:
        rows = sql.execute_sql(
            f"SELECT message_id FROM {sql.make_qualified_table_name(MESSAGES_TABLE)} "
            "WHERE bot_id = %s AND created_on >= %s AND created_on < %s ORDER BY message_id",
            bot,
            start,
            start + timedelta(days=1),
        )
    return [str(message_id) for (message_id,) in rows]


def message_ids(loader: Loader) -> set[str]:
    """The messages the warehouse holds."""
    return {row[0] for row in loader.query("SELECT message_id FROM messages")}


def test_a_pipeline_of_sessions_only_audits_no_messages(
    small_server: SandboxServer, make_loader: Any
) -> None:
    loader = make_loader(small_server)
    loader.run(start_date=FIRST.isoformat(), **UNLIMITED)
    result = audit(loader)
    assert result.of("sessions") and not result.of(MESSAGES_TABLE) and not result.differing
    assert "messages" not in result.summary()
    configured = audit(loader, resources=["sessions", "messages"])
    assert configured.of(MESSAGES_TABLE) and configured.differing, "configured, never loaded: all missing"
    assert any("(messages): never loaded" in note for note in configured.notes)


@pytest.mark.parametrize("destination", ["duckdb", "postgres"])
def test_messages_audited_repaired_and_forgotten(
    destination: str, small_server: SandboxServer, make_loader: Any, request: pytest.FixtureRequest
) -> None:
    """Loaded messages pass; messages deleted from the warehouse and one it never had differ;
    the repair reloads the first, deletes the other (and its components), and passes; a person
    forgotten still passes (their messages count as held)."""
    if destination == "postgres":
        request.getfixturevalue("postgres_dsn")
    loader = make_loader(small_server, destination)
    loader.run(start_date=FIRST.isoformat(), resources=["sessions", "messages"], **UNLIMITED)
    complete = audit(loader)
    assert complete.of(MESSAGES_TABLE) and not complete.differing, "\n".join(complete.lines())
    loaded = message_ids(loader)
    day = (NOW - timedelta(days=2)).date()
    victims = messages_of_day(loader.pipeline, BOTS[0], day)[:3]
    fake_time = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=12)
    with loader.pipeline.sql_client() as sql:
        messages = sql.make_qualified_table_name(MESSAGES_TABLE)
        delete_rows(sql, victims, MESSAGE_TABLES)  # lost with their components and tags
        sql.execute_sql(
            f"INSERT INTO {messages} (message_id, _dlt_id, _dlt_load_id, bot_id, created_on) "
            "VALUES ('ms-fake', 'ms-fake', 'x', %s, %s)",
            BOTS[1],
            fake_time,
        )
        sql.execute_sql(
            f"INSERT INTO {sql.make_qualified_table_name('messages__components')} "
            "(_dlt_root_id, _dlt_parent_id, _dlt_list_idx, _dlt_id) "
            "VALUES ('ms-fake', 'ms-fake', 0, 'ms-fake:0')"
        )
    found = audit(loader)
    differing = {(c.day, c.bot, c.resource): c.difference for c in found.differing}
    assert differing == {(day, BOTS[0], MESSAGES_TABLE): 3, (day, BOTS[1], MESSAGES_TABLE): -1}
    assert "2 differ (3 messages missing, 1 extra)" in found.summary()
    repaired = audit(loader, repair=True)
    assert not repaired.differing and repaired.messages_deleted == 1 and repaired.messages_reloaded > 0
    assert {c.day for c in repaired.checks if c.repaired} == {day}
    assert message_ids(loader) == loaded
    assert not loader.query("SELECT * FROM messages__components WHERE _dlt_root_id = 'ms-fake'")
    assert not audit(loader).differing

    person = next(v["createdBy"] for v in small_server.visible_messages(BOTS[1], version=2) if v["createdBy"])
    forgotten = forget_users(loader.pipeline, [person])
    assert forgotten.messages > 0
    erased = loader.query(f"SELECT message_key, bot_id, created_at FROM {ERASED_MESSAGES_TABLE}")
    assert len(erased) == forgotten.messages and all(bot in BOTS and created for _, bot, created in erased)
    after = audit(loader)
    assert after.of(MESSAGES_TABLE) and not after.differing, "\n".join(after.lines())


def test_the_load_step_remembers_the_messages_it_takes_out_once(
    small_server: SandboxServer, make_loader: Any, tmp_path: Path
) -> None:
    """Messages of an erased person that a package brings are taken out and remembered, with
    their bot and creation, once: a message already remembered is not added again."""
    loader = make_loader(small_server)
    loader.run(start_date=FIRST.isoformat(), **UNLIMITED)
    person = next(v["createdBy"] for v in small_server.visible_messages(BOTS[0], version=2) if v["createdBy"])
    forget_users(loader.pipeline, [person])
    created = datetime(2026, 10, 30, 8, tzinfo=UTC)
    jobs = tmp_path / "package" / "new_jobs"
    jobs.mkdir(parents=True)
    columns = {
        "_dlt_id": ["m-new", "m-kept"],
        "message_id": ["m-new", "m-kept"],
        "session_id": ["s-x", "s-y"],
        "bot_id": [BOTS[0], BOTS[1]],
        "created_by": [person, "someone-else"],
        "created_on": pa.array([created, created], pa.timestamp("ms", tz="UTC")),
    }
    for name in ("messages.m0001.0.parquet", "messages.m0002.0.parquet"):
        pq.write_table(pa.table(columns), jobs / name)
    kept = keep_erasures_out(loader.pipeline, sorted(jobs.iterdir()))
    assert kept.messages == 1, "the same message, in two files"
    again = jobs / "messages.m0003.0.parquet"
    pq.write_table(pa.table(columns), again)
    keep_erasures_out(loader.pipeline, [again])
    key = message_key("m-new")
    rows = loader.query(f"SELECT bot_id, created_at FROM {ERASED_MESSAGES_TABLE} WHERE message_key = '{key}'")
    assert [(bot, moment.astimezone(UTC)) for bot, moment in rows] == [(BOTS[0], created)]


# --- the command -------------------------------------------------------------------------


def printed(stdout: str) -> dict[tuple[date, str, str], int]:
    """The table `audit` prints: (day, bot, resource) -> difference."""
    found = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) >= 6 and parts[0][:2] == "20" and parts[1] in BOTS:
            found[(date.fromisoformat(parts[0]), parts[1], parts[2])] = int(parts[5])
    return found


def test_the_command_audits_repairs_and_records_the_messages(
    live_server: SandboxServer, tmp_path: Path
) -> None:
    env = cli_env(live_server, tmp_path, **BOTH)
    assert kore(["load", "--no-models"], env, tmp_path).returncode == 0
    passed = kore(["audit"], env, tmp_path)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    checks = printed(passed.stdout)
    assert any(resource == "messages" for _, _, resource in checks) and not any(checks.values())
    day = (REAL_NOW - timedelta(days=2)).date()
    database = tmp_path / DATABASE
    start = datetime.combine(day, datetime.min.time(), UTC)
    with duckdb.connect(str(database)) as con:
        victims = con.execute(
            "SELECT message_id FROM kore_sessions.messages WHERE bot_id = ? AND created_on >= ? "
            "AND created_on < ? ORDER BY message_id LIMIT 2",
            [BOTS[1], start, start + timedelta(days=1)],
        ).fetchall()
        gone = [row[0] for row in victims]
        con.execute("DELETE FROM kore_sessions.messages WHERE message_id IN (?, ?)", gone)
        for child in ("messages__components", "messages__tags"):
            con.execute(f"DELETE FROM kore_sessions.{child} WHERE _dlt_root_id IN (?, ?)", gone)
    found = kore(["audit"], env, tmp_path)
    assert found.returncode == 3, found.stdout + found.stderr
    assert {key: diff for key, diff in printed(found.stdout).items() if diff} == {
        (day, BOTS[1], "messages"): 2
    }
    repaired = kore(["audit", "--repair"], env, tmp_path)
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "messages reloaded" in repaired.stdout and "repaired" in repaired.stdout
    with duckdb.connect(str(database), read_only=True) as con:
        held = con.execute("SELECT COUNT(*) FROM kore_sessions.messages WHERE message_id IN (?, ?)", gone)
        assert held.fetchall() == [(2,)]
        recorded = con.sql(
            "SELECT resource, repaired, SUM(difference) FROM kore_sessions.kore_audit "
            "GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall()
    assert recorded == [("messages", False, 2 + 2), ("messages", True, 0), ("sessions", False, 0)]
    newest = max(live_server.visible_sessions(BOTS[0]), key=lambda view: view["start_time"])
    forgot = kore(["forget", "--user-id", newest["userId"]], env, tmp_path)
    assert forgot.returncode == 0 and "messages of theirs" in forgot.stdout, forgot.stdout + forgot.stderr
    live_server.advance(timedelta(minutes=20))
    again = kore(["load", "--no-models", "--lookback-minutes", "600"], env, tmp_path)
    assert again.returncode == 0, again.stderr
    after = kore(["audit"], env, tmp_path)
    assert after.returncode == 0, after.stdout + after.stderr
    with duckdb.connect(str(database), read_only=True) as con:
        table = f"kore_sessions.{ERASED_MESSAGES_TABLE}"
        keys = con.sql(f"SELECT COUNT(*), COUNT(DISTINCT message_key) FROM {table}")
        total, distinct = keys.fetchall()[0]
    assert total == distinct > 0, "each erased message remembered once, though the lookback read it again"
