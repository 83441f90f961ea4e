"""The pipeline end to end: sandbox API -> source -> dlt -> DuckDB."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, timedelta
from math import ceil

import pytest
from kore_sessions.sandbox import SandboxServer
from kore_sessions.source.api.rules import MAX_WINDOW_SPAN

from .conftest import (
    BOTS,
    HISTORY_START,
    NOW,
    PAGE_CAP,
    Loader,
    api_time,
    assert_matches_sandbox,
    make_apps,
)


def test_full_backfill_equals_the_sandbox(loader: Loader, server: SandboxServer) -> None:
    summary = loader.run()
    assert_matches_sandbox(loader, server)
    assert summary.sessions_new == len(server.visible_sessions())
    assert summary.retries == 0
    assert any(view["sessionStatus"] == "active" for view in server.visible_sessions())


def test_no_request_spans_seven_days_and_timestamps_are_full(loader: Loader, server: SandboxServer) -> None:
    loader.run(window_hours=167)
    windows = [r.body for r in server.requests if r.body and "dateFrom" in r.body]
    assert windows, "window requests were sent"
    for body in windows:
        start, end = api_time(body["dateFrom"]), api_time(body["dateTo"])
        assert end - start < MAX_WINDOW_SPAN
        assert body["dateFrom"].endswith("Z") and "T" in body["dateFrom"]
    assert all(r.query.get("containmentType") is None for r in server.requests)
    assert_matches_sandbox(loader, server)


def test_second_run_with_nothing_new_sends_only_what_it_must(loader: Loader, server: SandboxServer) -> None:
    loader.run()
    before = loader.query("SELECT * EXCLUDE (_dlt_load_id, _dlt_id) FROM sessions ORDER BY 1")
    state = loader.state()
    server.clear_requests()
    lookback = timedelta(minutes=60)
    loader.run(lookback_minutes=60)
    expected_requests = 0
    for bot in BOTS:
        views = server.visible_sessions(bot)
        cursor = api_time(state["bots"][bot]["cursor"])
        assert cursor == max(api_time(s["start_time"]) for s in views), "the newest session the server showed"
        recent = [s for s in views if api_time(s["start_time"]) >= cursor - lookback]
        open_before = [
            s
            for s, started in state["bots"][bot]["open_sessions"].items()
            if api_time(started) < cursor - lookback
        ]
        expected_requests += max(1, ceil(len(recent) / PAGE_CAP)) + ceil(len(open_before) / 50)
        for record in server.requests:
            if record.bot_id == bot and record.body and "dateFrom" in record.body:
                assert api_time(record.body["dateFrom"]) == cursor - lookback
    assert len(server.requests) == expected_requests
    after = loader.query("SELECT * EXCLUDE (_dlt_load_id, _dlt_id) FROM sessions ORDER BY 1")
    assert after == before
    assert loader.state() == state


def test_active_sessions_are_up_to_date_after_the_clock_moves(loader: Loader, server: SandboxServer) -> None:
    loader.run()
    active_before = {s["sessionId"] for s in server.visible_sessions() if s["sessionStatus"] == "active"}
    assert active_before
    server.advance(timedelta(hours=3))
    server.clear_requests()
    summary = loader.run(lookback_minutes=30)
    assert_matches_sandbox(loader, server)
    assert summary.sessions_refreshed > 0
    looked_up = {i for r in server.requests if r.body and "sessionId" in r.body for i in r.body["sessionId"]}
    assert looked_up and looked_up <= active_before
    assert all(len(r.body["sessionId"]) <= 50 for r in server.requests if r.body and "sessionId" in r.body)


def test_open_session_older_than_fourteen_days_keeps_its_session_tags(history: list, tmp_path) -> None:
    voice = next(s for s in history if s.session_tags and s.start < NOW - timedelta(days=16))
    long_open = replace(voice, end=NOW + timedelta(days=1))
    sessions = [s for s in history if s.session_id != voice.session_id] + [long_open]
    with SandboxServer(sessions, apps=make_apps(), now=NOW, page_cap=PAGE_CAP) as server:
        loader = Loader(server, tmp_path)
        loader.run()
        assert voice.session_id in loader.state()["bots"][voice.bot_id]["open_sessions"]
        server.advance(timedelta(days=2))
        loader.run()
        assert_matches_sandbox(loader, server)
        assert loader.tags("sessions__session_tags")[voice.session_id]
        assert voice.session_id not in loader.state()["bots"][voice.bot_id]["open_sessions"]


def test_server_capped_pages_advance_by_what_came_back(history: list, tmp_path) -> None:
    with SandboxServer(history, apps=make_apps(), now=NOW, page_cap=37) as server:
        loader = Loader(server, tmp_path)
        loader.run(page_size=1000)
        assert_matches_sandbox(loader, server)
        skips = [r.body["skip"] for r in server.requests if r.body and r.body.get("skip")]
        assert skips and all(skip % 37 == 0 for skip in skips)


def test_pre_9_shape_is_detected_and_normalized(history: list, tmp_path) -> None:
    with SandboxServer(history, apps=make_apps(), now=NOW, page_cap=PAGE_CAP, legacy=True) as server:
        loader = Loader(server, tmp_path)
        summary = loader.run()
        assert summary.legacy_bots == sorted(BOTS)
        asked = {r.query.get("containmentType") for r in server.requests}
        assert {"selfService", "dropOff", "agent"} <= asked
        rows = loader.sessions()
        views = {v["sessionId"]: v for v in server.visible_sessions()}
        assert sorted(rows) == sorted(views)
        for session_id, view in views.items():
            assert rows[session_id][7] == view["sessionType"].replace("Selfservice", "selfService")
            assert rows[session_id][6] is None, "no containment value in session_type"


def test_admin_route_loads_every_bot(history: list, tmp_path) -> None:
    from kore_sessions.source import KoreCredentials

    from .conftest import ADMIN_ID, ADMIN_SECRET

    with SandboxServer(history, apps=make_apps(), now=NOW, page_cap=PAGE_CAP) as server:
        loader = Loader(server, tmp_path)
        loader.run(
            bot_ids=None,
            all_bots=True,
            credentials=KoreCredentials(client_id=ADMIN_ID, client_secret=ADMIN_SECRET),
        )
        assert_matches_sandbox(loader, server)
        assert {r.path for r in server.requests} == {"/api/public/getSessions"}
        assert list(loader.state()["bots"]) == ["*"]


def test_bounded_backfill_leaves_incremental_state_alone(loader: Loader, server: SandboxServer) -> None:
    """A bounded backfill loads its range only and writes no cursor: on a new pipeline its
    state holds each bot without a cursor, so the next run starts at `start_date`; on a pipeline
    with cursors it leaves the state exactly as it was."""
    start, end = NOW - timedelta(days=10), NOW - timedelta(days=8)
    loader.run(start_date=start.isoformat(), end_date=end.isoformat())
    bots = loader.state()["bots"]
    assert sorted(bots) == sorted(BOTS), "the bounded run kept its state per bot"
    assert all("cursor" not in state for state in bots.values()), bots
    starts = [row[4].astimezone(UTC) for row in loader.sessions().values()]
    assert starts and all(start <= s <= end for s in starts)
    server.clear_requests()
    loader.run()
    froms = [api_time(r.body["dateFrom"]) for r in server.requests if r.body and "dateFrom" in r.body]
    assert min(froms) == HISTORY_START, "the incremental run starts where a first run does"
    assert_matches_sandbox(loader, server)
    incremental = loader.state()
    assert all(state.get("cursor") for state in incremental["bots"].values())
    server.clear_requests()
    loader.run(start_date=start.isoformat(), end_date=end.isoformat())
    assert server.requests, "the second bounded backfill fetched its range"
    assert loader.state() == incremental, "the cursors are where the incremental run left them"


@pytest.mark.parametrize("kind", ["429", "500", "502", "503", "drop", "truncate", "truncate_length"])
def test_each_fault_kind_is_retried_with_nothing_lost(
    loader: Loader, server: SandboxServer, kind: str
) -> None:
    server.inject(kind, count=2)
    summary = loader.run()
    assert summary.retries == 2
    assert_matches_sandbox(loader, server)
    assert [r.fault for r in server.requests].count(kind) == 2


def test_slow_answers_beyond_the_timeout_are_retried(
    loader: Loader, server: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kore_sessions.source.api.client as client_module

    monkeypatch.setattr(client_module, "READ_TIMEOUT", 0.3)
    server.fault_latency = 1.0
    server.inject("latency", count=1)
    summary = loader.run()
    # The sandbox logs an answer once it is sent: the run may end before the slow one is.
    deadline = time.monotonic() + 10 * server.fault_latency
    while not any(r.fault == "latency" for r in server.requests) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [r.fault for r in server.requests].count("latency") == 1, "the slow answer was given"
    assert summary.retries == 1
    assert_matches_sandbox(loader, server)


def test_mixed_random_faults_lose_nothing(loader: Loader, server: SandboxServer) -> None:
    """Random 500s, dropped connections, truncated bodies and 429s: the sandbox's log shows
    every kind fired, the run retried each, and nothing is lost."""
    rates = {"500": 0.1, "drop": 0.05, "truncate": 0.05, "429": 0.05}
    server.set_fault_rates(rates, seed=5)
    summary = loader.run(max_attempts=12)
    server.set_fault_rates({})
    fired = Counter(r.fault for r in server.requests if r.fault)
    assert set(fired) == set(rates), f"every kind fired: {dict(fired)}"
    assert summary.retries >= sum(fired.values()), "each faulted answer was retried"
    assert_matches_sandbox(loader, server)


def test_client_limiter_keeps_a_healthy_run_free_of_429(history: list, tmp_path) -> None:
    """The client's limit (3 a scaled minute of 0.5 s, 0.525 s with its margin) is half the
    server's (6 in 0.5 s): no 429 unless a request's way to the server is delayed by over half
    a second more than another's. A client that ignored its limit would meet the server's: each
    bot needs three times the server's minute limit in requests, fetched four at a time."""
    from kore_sessions.sandbox import RateLimit

    limit = RateLimit(per_minute=6, per_hour=600, seconds_per_minute=0.5)
    with SandboxServer(history, apps=make_apps(), now=NOW, page_cap=PAGE_CAP, rate_limit=limit) as server:
        loader = Loader(server, tmp_path)
        summary = loader.run(requests_per_minute=3, requests_per_hour=300, seconds_per_minute=0.5)
        assert_matches_sandbox(loader, server)
        assert summary.rate_limited == 0
        assert all(r.status != 429 for r in server.requests)
        for bot in BOTS:
            made = sum(1 for r in server.requests if r.bot_id == bot)
            assert made >= 3 * limit.per_minute, f"{bot}: {made} requests, too few to meet the limit"


def test_server_rate_limit_without_retry_after_is_backed_off(history: list, tmp_path) -> None:
    from kore_sessions.sandbox import RateLimit

    limit = RateLimit(per_minute=8, per_hour=1000, seconds_per_minute=0.5)
    with SandboxServer(history, apps=make_apps(), now=NOW, page_cap=30, rate_limit=limit) as server:
        loader = Loader(server, tmp_path)
        summary = loader.run(backoff_initial=0.2, backoff_max=1.0, max_attempts=10)
        assert_matches_sandbox(loader, server)
        assert summary.rate_limited > 0, "the unthrottled client met the server's limit"


def test_open_sessions_the_api_no_longer_knows_are_deleted(loader: Loader, server: SandboxServer) -> None:
    loader.run()
    open_ids = {s for bot in loader.state()["bots"].values() for s in bot["open_sessions"]}
    views = {v["sessionId"]: v for v in server.visible_sessions()}
    old_open = sorted(i for i in open_ids if api_time(views[i]["start_time"]) < NOW - timedelta(hours=1))
    assert old_open
    server.remove_sessions(old_open[:1])
    server.advance(timedelta(hours=2))
    summary = loader.run()
    assert summary.sessions_deleted == 1
    assert_matches_sandbox(loader, server)
    assert not loader.query(f"SELECT * FROM sessions__session_lang WHERE session_id = '{old_open[0]}'")


def test_a_400_fails_fast_with_the_api_message_and_no_state(loader: Loader, server: SandboxServer) -> None:
    from dlt.pipeline.exceptions import PipelineStepFailed

    loader.run()
    state = loader.state()
    server.advance(timedelta(hours=1))
    server.clear_requests()
    server.inject("400")
    with pytest.raises(PipelineStepFailed, match="injected by the sandbox"):
        loader.run()
    refused = [r for r in server.requests if r.status == 400]
    assert len(refused) == 1, "a refusal is not retried"
    assert len(server.requests) <= len(BOTS), "nothing is sent after it but the other bot's first page"
    assert loader.state() == state


def test_new_fields_evolve_the_schema(history: list, tmp_path) -> None:
    changed = [replace(s, extra={"sentiment": {"score": 0.5}, "callId": "c-1"}) for s in history[-50:]]
    with SandboxServer(history[:-50] + changed, apps=make_apps(), now=NOW, page_cap=PAGE_CAP) as server:
        loader = Loader(server, tmp_path)
        loader.run()
        assert_matches_sandbox(loader, server)
        visible = {v["sessionId"] for v in server.visible_sessions()}
        expected = sum(1 for s in changed if s.session_id in visible)
        rows = loader.query("SELECT COUNT(*) FROM sessions WHERE sentiment__score = 0.5 AND call_id = 'c-1'")
        assert rows[0][0] == expected > 0


def test_pre_9_open_sessions_are_up_to_date_after_the_clock_moves(history: list, tmp_path) -> None:
    with SandboxServer(history, apps=make_apps(), now=NOW, page_cap=PAGE_CAP, legacy=True) as server:
        loader = Loader(server, tmp_path)
        loader.run(lookback_minutes=10)
        server.advance(timedelta(hours=4))
        loader.run(lookback_minutes=10)
        rows = loader.sessions()
        for view in server.visible_sessions():
            row = rows[view["sessionId"]]
            assert row[7] == view["sessionType"], view["sessionId"]
            assert row[10] == view["noOfMessagesExchanged"], view["sessionId"]
            assert row[5].astimezone(UTC) == api_time(view["end_time"]), view["sessionId"]


def test_an_undocumented_containment_is_loaded_as_sent_and_reported(history: list, tmp_path) -> None:
    chosen = {s.session_id for s in history if s.end < NOW - timedelta(days=1)}
    chosen = set(sorted(chosen)[:5])
    escalated = {"containmentType": "escalated"}
    changed = [replace(s, extra=escalated) if s.session_id in chosen else s for s in history]
    odd = [s for s in changed if s.session_id in chosen]
    with SandboxServer(changed, apps=make_apps(), now=NOW, page_cap=PAGE_CAP) as server:
        loader = Loader(server, tmp_path)
        summary = loader.run()
        visible = {v["sessionId"] for v in server.visible_sessions()}
        shown = sum(1 for s in odd if s.session_id in visible)
        assert summary.undocumented_containment == {"escalated": shown} and shown > 0
        assert any("'escalated' x" in line for line in summary.lines())
        rows = loader.query("SELECT COUNT(*) FROM sessions WHERE containment_type = 'escalated'")
        assert rows == [(shown,)]
