"""`kore-sessions audit`: the API's counts per UTC day and bot against the warehouse, repaired.

The sandbox's clock lags the command's (the real one) by six hours and moves on between runs;
a tenth of its sessions show up two to four hours after they started, later than the lookback
of the incremental runs, so those runs leave them behind and only the audit finds them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from math import ceil
from pathlib import Path
from typing import Any

import duckdb
import psycopg2
import pytest
from kore_sessions.runtime.audit import DEFAULT_GRACE_HOURS
from kore_sessions.sandbox import GeneratedSession, SandboxServer, generate_sessions
from kore_sessions.source.api.client import KoreApiError, Route
from kore_sessions.source.api.timestamps import parse_timestamp
from kore_sessions.source.sessions.completeness import (
    SessionCounter,
    api_day_counts,
    day_slices,
    ranges_to_reload,
    stretches,
)

from .cli_helpers import DATABASE, cli_env, expected, kore, loaded, normalized
from .conftest import ADMIN_ID, ADMIN_SECRET, BOTS, REAL_NOW, api_time, make_apps

T0 = datetime(2026, 11, 3, 12, 30, tzinfo=UTC)
# The sandbox lags the command's clock by this much.
SERVER_LAG = timedelta(hours=6)
SERVER_NOW = REAL_NOW - SERVER_LAG
LOAD_FROM = SERVER_NOW - timedelta(days=9, hours=5)


# --- the pure rules -------------------------------------------------------------------


def test_day_slices_cover_each_utc_day_to_the_millisecond() -> None:
    slices = day_slices(T0, T0 + timedelta(days=2))
    assert [s.day for s in slices] == [date(2026, 11, 3), date(2026, 11, 4), date(2026, 11, 5)]
    assert slices[0].start == T0 and slices[-1].end == T0 + timedelta(days=2)
    assert slices[1].start == datetime(2026, 11, 4, tzinfo=UTC)
    assert slices[1].end == datetime(2026, 11, 4, 23, 59, 59, 999000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "days", "groups"),
    [
        (datetime(2026, 11, 1, tzinfo=UTC), 15, [7, 7, 2]),  # seven whole days fit one request
        (T0, 7, [7, 1]),  # from noon: the eighth day would make the span 7 days or more
        (T0, 6, [7]),  # noon to the seventh day's noon: under 7 days
    ],
)
def test_stretches_ask_for_as_many_days_as_one_request_may_span(
    start: datetime, days: int, groups: list[int]
) -> None:
    slices = day_slices(start, start + timedelta(days=days))
    found = stretches(slices)
    assert [len(group) for group in found] == groups
    assert all(group[-1].end - group[0].start < timedelta(days=7) for group in found)


class FakeApi:
    """Counts sessions per day like the API, and counts the requests."""

    def __init__(self, per_day: dict[date, int]) -> None:
        self.per_day = per_day
        self.requests = 0

    def __call__(self, start: datetime, end: datetime) -> int:
        self.requests += 1
        return sum(n for day, n in self.per_day.items() if start.date() <= day <= end.date())


def test_day_counts_cost_one_request_when_nothing_differs_and_a_few_more_where_it_does() -> None:
    group = day_slices(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 7, 23, tzinfo=UTC))
    truth = {piece.day: 100 + index for index, piece in enumerate(group)}
    api = FakeApi(truth)
    assert api_day_counts(group, dict(truth), api) == truth and api.requests == 1
    held = {**truth, date(2026, 11, 5): 90}
    api = FakeApi(truth)
    assert api_day_counts(group, held, api) == truth
    assert api.requests == 4, "the whole week, then one half of each differing part: 1 + 3"
    held = {**held, date(2026, 11, 1): 101}
    api = FakeApi(truth)
    assert api_day_counts(group, held, api) == truth


def test_ranges_to_reload_narrow_to_where_the_counts_differ() -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    end = start + timedelta(days=1) - timedelta(milliseconds=1)
    minutes = [start + timedelta(minutes=m) for m in range(0, 1440, 2)]  # 720 sessions
    missing = {minutes[100], minutes[101]}

    def api(low: datetime, high: datetime) -> int:
        return sum(1 for m in minutes if low <= m <= high)

    def held(low: datetime, high: datetime) -> int:
        return sum(1 for m in minutes if low <= m <= high and m not in missing)

    ranges = ranges_to_reload(start, end, api(start, end), api, held, page_size=50)
    assert len(ranges) == 1
    low, high = ranges[0]
    assert low <= min(missing) and max(missing) <= high
    assert api(low, high) <= 2 * 50, "small enough that splitting it further is not worth a request"
    assert ranges_to_reload(start, end, api(start, end), api, api, page_size=50) == []


# --- the command ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def late_history() -> list[GeneratedSession]:
    """Ten days of two bots up to six hours after the sandbox's now. A fifth of the sessions
    that start in the five hours around its now show up two and a half hours late: later than
    the lookback of hourly runs, whatever the time of day."""
    sessions = generate_sessions(
        BOTS, SERVER_NOW - timedelta(days=10), SERVER_NOW + timedelta(hours=6), per_day=300, seed=41
    )
    low, high = SERVER_NOW - timedelta(hours=2), SERVER_NOW + timedelta(hours=3)
    around = [s for s in sessions if low <= s.start <= high]
    late = {s.session_id for s in around[::5]}
    return [
        replace(s, visible_at=s.start + timedelta(hours=2, minutes=30)) if s.session_id in late else s
        for s in sessions
    ]


@pytest.fixture
def lagging_server(late_history: list[GeneratedSession]) -> SandboxServer:
    """The sandbox, six hours behind the command's clock."""
    with SandboxServer(late_history, apps=make_apps(), now=SERVER_NOW, page_cap=50) as server:
        yield server


def audit_env(server: SandboxServer, tmp_path: Path) -> dict[str, str]:
    """The command's environment: loading starts at LOAD_FROM; the sandbox has no rate limits,
    so neither has the client (the budget is shared by the test's commands and would pace a
    load, an audit and a repair within one minute)."""
    return cli_env(
        server,
        tmp_path,
        SOURCES__KORE_SESSIONS__START_DATE=LOAD_FROM.isoformat(),
        SOURCES__KORE_SESSIONS__REQUESTS_PER_MINUTE="100000",
        SOURCES__KORE_SESSIONS__REQUESTS_PER_HOUR="1000000",
    )


def cursor_of(tmp_path: Path, bot: str) -> datetime:
    """A bot's cursor, from the command's pipeline state."""
    import json

    state_file = next((tmp_path / "dlt_home").rglob("state.json"))
    state = json.loads(state_file.read_text())
    return api_time(state["sources"]["kore_sessions"]["resources"]["sessions"]["bots"][bot]["cursor"])


def due_truth(server: SandboxServer, tmp_path: Path) -> Counter[tuple[date, str]]:
    """The API's sessions per UTC day and bot from LOAD_FROM to each bot's cursor."""
    cursors = {bot: cursor_of(tmp_path, bot) for bot in BOTS}
    counts: Counter[tuple[date, str]] = Counter()
    for view in server.visible_sessions():
        started = api_time(view["start_time"])
        if LOAD_FROM <= started <= cursors[view["botId"]]:
            counts[(started.date(), view["botId"])] += 1
    return counts


def warehouse_counts(tmp_path: Path) -> Counter[tuple[date, str]]:
    """The warehouse's sessions per UTC day and bot."""
    with duckdb.connect(str(tmp_path / DATABASE), read_only=True) as con:
        con.sql("SET TimeZone = 'UTC'")
        rows = con.sql(
            "SELECT CAST(start_time AS DATE), bot_id, COUNT(*) FROM kore_sessions.sessions GROUP BY 1, 2"
        ).fetchall()
    return Counter({(day, bot): n for day, bot, n in rows})


def printed_checks(stdout: str, resource: str = "sessions") -> dict[tuple[date, str], tuple[int, int, int]]:
    """The table `audit` prints, of one resource: (day, bot) -> (API, warehouse, difference)."""
    checks = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) >= 6 and parts[0][:2] == "20" and parts[1] in BOTS and parts[2] == resource:
            checks[(date.fromisoformat(parts[0]), parts[1])] = (int(parts[3]), int(parts[4]), int(parts[5]))
    return checks


def audited_through(cursor: datetime) -> date:
    """The last day an audit checks: that of the cursor or, if later, of the settled time (now
    less the grace): with the server six hours behind, in a UTC day's hours 3 to 6 the settled
    time is in a day the server has not reached."""
    settled = datetime.now(UTC) - timedelta(hours=DEFAULT_GRACE_HOURS)
    return max(cursor, settled).date()


def count_requests(server: SandboxServer) -> int:
    """Counting requests (limit 1) the sandbox received."""
    return sum(1 for r in server.requests if r.body and r.body.get("limit") == 1)


def test_a_complete_warehouse_passes_with_one_request_per_seven_days(
    lagging_server: SandboxServer, tmp_path: Path
) -> None:
    env = audit_env(lagging_server, tmp_path)
    assert kore(["load", "--no-models"], env, tmp_path).returncode == 0
    lagging_server.clear_requests()
    result = kore(["audit"], env, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    checks = printed_checks(result.stdout)
    assert checks and all(difference == 0 for _, _, difference in checks.values())
    week = {datetime.now(UTC).date() - timedelta(days=n) for n in range(7)}
    newest = max(cursor_of(tmp_path, bot) for bot in BOTS)
    assert {day for day, _ in checks} == {day for day in week if day <= audited_through(newest)}
    assert len(lagging_server.requests) == count_requests(lagging_server) == len(BOTS), "1 request a bot"
    for (day, bot), (api, held, _) in checks.items():
        assert api == held == due_truth(lagging_server, tmp_path)[(day, bot)]
    lagging_server.clear_requests()
    wide = kore(["audit", "--days", "30"], env, tmp_path)
    assert wide.returncode == 0, wide.stdout + wide.stderr
    due = {bot: cursor_of(tmp_path, bot) - LOAD_FROM for bot in BOTS}
    assert count_requests(lagging_server) == sum(ceil(span / timedelta(days=7)) for span in due.values())
    assert min(day for day, _ in printed_checks(wide.stdout)) == LOAD_FROM.date(), "from where loading began"
    with duckdb.connect(str(tmp_path / DATABASE), read_only=True) as con:
        query = "SELECT COUNT(*), COUNT(DISTINCT checked_at) FROM kore_sessions.kore_audit"
        recorded = con.sql(query).fetchall()
    assert recorded == [(len(checks) + len(printed_checks(wide.stdout)), 2)]


def test_late_arrivals_are_found_and_repaired(lagging_server: SandboxServer, tmp_path: Path) -> None:
    env = audit_env(lagging_server, tmp_path)
    assert kore(["load", "--no-models"], env, tmp_path).returncode == 0
    for _ in range(4):
        lagging_server.advance(timedelta(hours=1))
        run = kore(["load", "--no-models", "--lookback-minutes", "30"], env, tmp_path)
        assert run.returncode == 0, run.stderr
    truth, held = due_truth(lagging_server, tmp_path), warehouse_counts(tmp_path)
    missing = {key: truth[key] - held[key] for key in truth if truth[key] != held[key]}
    assert sum(missing.values()) > 0, "the incremental runs left late arrivals behind"
    result = kore(["audit", "--days", "12"], env, tmp_path)
    assert result.returncode == 3, result.stdout + result.stderr
    checks = printed_checks(result.stdout)
    assert {key: diff for key, (_, _, diff) in checks.items() if diff} == missing
    assert f"{len(missing)} differ ({sum(missing.values())} sessions missing, 0 extra)" in result.stdout
    repaired = kore(["audit", "--days", "12", "--repair"], env, tmp_path)
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "repaired" in repaired.stdout
    assert warehouse_counts(tmp_path) >= truth
    cursors = {bot: cursor_of(tmp_path, bot) for bot in BOTS}
    due = {
        v["sessionId"]
        for v in lagging_server.visible_sessions()
        if LOAD_FROM <= api_time(v["start_time"]) <= cursors[v["botId"]]
    }
    assert due <= set(loaded(tmp_path)), "every due session is in the warehouse after the repair"
    assert kore(["load", "--no-models"], env, tmp_path).returncode == 0
    starts = {v["sessionId"]: api_time(v["start_time"]) for v in lagging_server.visible_sessions()}
    since_load_from = {key: row for key, row in expected(lagging_server).items() if starts[key] >= LOAD_FROM}
    assert normalized(loaded(tmp_path)) == since_load_from, "and the next load completes the rest"


def test_sessions_deleted_on_the_platform_are_deleted_only_when_the_api_calls_them_invalid(
    lagging_server: SandboxServer, tmp_path: Path
) -> None:
    env = audit_env(lagging_server, tmp_path)
    assert kore(["load", "--no-models"], env, tmp_path).returncode == 0
    two_days_ago = SERVER_NOW.date() - timedelta(days=2)
    gone = sorted(
        v["sessionId"]
        for v in lagging_server.visible_sessions(BOTS[0])
        if api_time(v["start_time"]).date() == two_days_ago
    )[:3]
    lagging_server.remove_sessions(gone)
    found = kore(["audit"], env, tmp_path)
    assert found.returncode == 3
    assert printed_checks(found.stdout)[(two_days_ago, BOTS[0])][2] == -3
    lagging_server.clear_requests()
    repaired = kore(["audit", "--repair"], env, tmp_path)
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "3 deleted" in repaired.stdout
    bodies = [r.body for r in lagging_server.requests if r.body and "sessionId" in r.body]
    asked = {session_id for body in bodies for session_id in body["sessionId"]}
    assert asked == set(gone), "only the sessions the ranges no longer list are asked by id"
    assert not set(gone) & set(loaded(tmp_path))


def test_a_day_range_and_the_exit_codes(lagging_server: SandboxServer, tmp_path: Path) -> None:
    env = audit_env(lagging_server, tmp_path)
    nothing = kore(["audit"], env, tmp_path)
    assert nothing.returncode == 3 and "nothing to audit: no DuckDB file" in nothing.stderr
    assert kore(["load", "--no-models"], env, tmp_path).returncode == 0
    first = (SERVER_NOW - timedelta(days=4)).date()
    last = first + timedelta(days=2)
    ranged = kore(["audit", "--start", first.isoformat(), "--end", last.isoformat()], env, tmp_path)
    assert ranged.returncode == 0, ranged.stderr
    assert {day for day, _ in printed_checks(ranged.stdout)} == {first + timedelta(days=n) for n in range(3)}
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    for args in (
        ["audit", "--days", "0"],
        ["audit", "--days", "3", "--start", "2026-01-01"],
        ["audit", "--end", "2026-01-01"],
        ["audit", "--start", tomorrow],
        ["audit", "--start", "2026-01-05", "--end", "2026-01-04"],
    ):
        bad = kore(args, env, tmp_path)
        assert bad.returncode == 2, (args, bad.stderr)
    wrong = {**env, "SOURCES__KORE_SESSIONS__CREDENTIALS__CLIENT_SECRET": "wrong-secret-0123456789"}
    refused = kore(["audit"], wrong, tmp_path)
    assert refused.returncode == 1 and "HTTP 401" in refused.stderr.strip().splitlines()[-1]


def test_audit_and_repair_on_postgres_keep_the_marts_in_step(
    lagging_server: SandboxServer, postgres_dsn: str, postgres_dataset: str, tmp_path: Path
) -> None:
    dataset = postgres_dataset
    env = {**audit_env(lagging_server, tmp_path), "DESTINATION__POSTGRES__CREDENTIALS": postgres_dsn}
    flags = ["--destination", "postgres", "--dataset", dataset]
    assert kore(["load", *flags, "--time-zone", "Asia/Kolkata"], env, tmp_path).returncode == 0
    gone = sorted(v["sessionId"] for v in lagging_server.visible_sessions(BOTS[1]))[-40:-38]
    lagging_server.remove_sessions(gone)
    assert kore(["audit", *flags], env, tmp_path).returncode == 3
    repaired = kore(["audit", "--repair", *flags], env, tmp_path)
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "2 deleted" in repaired.stdout and "models rebuilt" in repaired.stdout
    with psycopg2.connect(postgres_dsn) as connection, connection.cursor() as cursor:
        cursor.execute(f'SELECT COUNT(*) FROM "{dataset}".sessions WHERE session_id = ANY(%s)', (gone,))
        assert cursor.fetchone() == (0,)
        cursor.execute(f'SELECT COUNT(*) FROM "{dataset}".sessions')
        held = cursor.fetchone()[0]
        cursor.execute(f'SELECT COUNT(*) FROM "{dataset}".fct_sessions')
        modelled = cursor.fetchone()[0]
        assert held == modelled
        cursor.execute(f'SELECT reporting_time_zone FROM "{dataset}".kore_model_settings')
        assert cursor.fetchone() == ("Asia/Kolkata",), "rebuilt with the settings of the last build"
        audit_table = f'"{dataset}".kore_audit'
        cursor.execute(f"SELECT repaired, SUM(difference) FROM {audit_table} GROUP BY 1 ORDER BY 1")
        assert cursor.fetchall() == [(False, -4), (True, 0)], "before the repair (twice), and after"


def test_the_admin_route_is_audited_for_the_whole_account(
    lagging_server: SandboxServer, tmp_path: Path
) -> None:
    env = {
        **audit_env(lagging_server, tmp_path),
        "SOURCES__KORE_SESSIONS__CREDENTIALS__CLIENT_ID": ADMIN_ID,
        "SOURCES__KORE_SESSIONS__CREDENTIALS__CLIENT_SECRET": ADMIN_SECRET,
    }
    assert kore(["load", "--all-bots", "--no-models"], env, tmp_path).returncode == 0
    lagging_server.clear_requests()
    result = kore(["audit", "--all-bots", "--days", "3"], env, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    cursor = cursor_of(tmp_path, "*")
    due_days = {datetime.now(UTC).date() - timedelta(days=n) for n in range(3)}
    due_days = {day for day in due_days if day <= audited_through(cursor)}
    lines = [line.split() for line in result.stdout.splitlines()]
    rows = {date.fromisoformat(row[0]): row for row in lines if row and row[0][:2] == "20"}
    assert set(rows) == due_days and {row[1] for row in rows.values()} == {"*"}
    for day, (_, _, _, api, held, _) in rows.items():
        starts = (api_time(v["start_time"]) for v in lagging_server.visible_sessions())
        truth = sum(1 for started in starts if started.date() == day and started <= cursor)
        assert int(api) == int(held) == truth
    assert {r.path for r in lagging_server.requests} == {"/api/public/getSessions"}
    assert count_requests(lagging_server) == 1


def test_days_older_than_the_platform_keeps_are_not_audited(
    lagging_server: SandboxServer, tmp_path: Path
) -> None:
    env = {**audit_env(lagging_server, tmp_path), "SOURCES__KORE_SESSIONS__RETENTION_DAYS": "18"}
    assert kore(["load", "--no-models"], env, tmp_path).returncode == 0
    result = kore(["audit", "--days", "9"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    days = {day for day, _ in printed_checks(result.stdout)}
    today = datetime.now(UTC).date()
    assert min(days) == today - timedelta(days=3), "whole days within 18 days less 14 of margin"


class RoundingServer:
    """A client stand-in for a server that refuses a span of 7 days less a millisecond (400);
    it holds one session at every full hour."""

    def __init__(self) -> None:
        self.asked: list[timedelta] = []

    def post(self, route: Route, bot: str, body: dict[str, Any], params: Any = None) -> dict[str, Any]:
        start, end = parse_timestamp(body["dateFrom"]), parse_timestamp(body["dateTo"])
        assert start is not None and end is not None
        self.asked.append(end - start)
        if end - start > timedelta(days=7) - timedelta(seconds=1):
            raise KoreApiError("HTTP 400 from Kore.ai: The duration ... should be less than 7 days", 400)
        first = start.replace(minute=0, second=0, microsecond=0)
        first += timedelta(hours=1) if first < start else timedelta(0)
        total = max(0, int((end - first) / timedelta(hours=1)) + 1)
        return {"sessions": [], "moreAvailable": False, "total": total}


def test_a_server_that_refuses_seven_whole_days_is_asked_in_halves_from_then_on() -> None:
    server = RoundingServer()
    counter = SessionCounter(server, page_size=100)  # type: ignore[arg-type]
    first = datetime(2026, 11, 1, tzinfo=UTC)
    week = day_slices(first, first + timedelta(days=14) - timedelta(milliseconds=1))
    totals = [counter.count("bot", group[0].start, group[-1].end) for group in stretches(week)]
    assert totals == [7 * 24, 7 * 24]
    assert len(server.asked) == 1 + 2 + 2, "refused once, then each week in two halves"
