"""Tests of the sandbox itself: a real server, called with httpx."""

from __future__ import annotations

import http.client
import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from kore_sessions.sandbox import (
    RATE_LIMIT_MESSAGE,
    GeneratedSession,
    RateLimit,
    SandboxApp,
    SandboxServer,
    format_time,
    generate_sessions,
)
from kore_sessions.sandbox.app import SandboxApi
from kore_sessions.sandbox.messages import Request
from kore_sessions.sandbox.state import SandboxState

from .sandbox_helpers import (
    ADMIN_APP,
    ADMIN_SECRET,
    BOT_A,
    BOT_APP,
    BOT_B,
    NOW,
    SECRET,
    call_sandbox,
    error_msg,
    hand_made_session,
    mint,
)

BOT_PATH = f"/api/public/bot/{BOT_A}/getSessions"
ADMIN_PATH = "/api/public/getSessions"


def session(number: int, start: datetime, bot_id: str = BOT_A, **overrides: Any) -> GeneratedSession:
    """A hand-made closed session lasting one minute."""
    return hand_made_session(number, start, 1, bot_id=bot_id, **{"messages": 4, "tasks": 1, **overrides})


def call(
    server: SandboxServer,
    body: Any = None,
    path: str = BOT_PATH,
    params: dict[str, str] | None = None,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POST to the sandbox with a fresh bot-app token unless told otherwise."""
    return call_sandbox(server, path, body, token, params=params, headers=headers)


@pytest.fixture(scope="module")
def generated() -> list[GeneratedSession]:
    """Three days of two bots, with open sessions at NOW."""
    return generate_sessions([BOT_A, BOT_B], NOW - timedelta(days=3), NOW, per_day=150, seed=3)


@pytest.fixture
def server(generated: list[GeneratedSession]) -> Iterator[SandboxServer]:
    """A sandbox over the generated sessions with both apps."""
    with SandboxServer(generated, apps=[BOT_APP, ADMIN_APP], now=NOW) as running:
        yield running


# generation and views ------------------------------------------------------


def test_generation_is_deterministic_and_realistic(generated: list[GeneratedSession]) -> None:
    again = generate_sessions([BOT_A, BOT_B], NOW - timedelta(days=3), NOW, per_day=150, seed=3)
    other = generate_sessions([BOT_A, BOT_B], NOW - timedelta(days=3), NOW, per_day=150, seed=4)
    assert again == generated and other != generated
    assert 600 < len(generated) < 1200
    assert len({s.session_id for s in generated}) == len(generated)
    assert all(re.fullmatch(r"[0-9a-f]{24}", s.session_id) for s in generated)
    assert all(s.bot_id in (BOT_A, BOT_B) and s.user_id.startswith("u-") for s in generated)
    assert all(s.visible_from >= s.start and s.start.microsecond % 1000 == 0 for s in generated)
    assert Counter(s.channel for s in generated).most_common(1)[0][0] == "rtm"
    non_interactive = [s for s in generated if s.session_type == "non-interactive"]
    assert 0.08 < len(non_interactive) / len(generated) < 0.25
    assert all(s.containment == "selfService" and s.tasks == 0 for s in non_interactive)
    assert {s.containment for s in generated} == {"selfService", "dropOff", "agent"}
    assert any(s.end > NOW for s in generated)


def test_generation_active_share_zero_closes_everything() -> None:
    sessions = generate_sessions([BOT_A], NOW - timedelta(days=1), NOW, 200, active_share=0.0)
    assert sessions and all(s.end <= NOW for s in sessions)


def test_voice_sessions_have_call_tags_and_alt_text(generated: list[GeneratedSession]) -> None:
    voice = next(s for s in generated if s.channel in ("korevg", "ivrVoice") and s.end < NOW)
    view = voice.view(NOW)
    assert view is not None and view["tags"]["altText"] == []
    names = {tag["name"] for tag in view["tags"]["sessionTags"]}
    assert {"callId", "callerNumber"} <= names
    agent = next(s for s in generated if s.channel == "korevg" and s.containment == "agent")
    assert ("voiceAgentTransferStart", "1") in agent.session_tags


def test_view_shape_matches_the_9x_samples() -> None:
    start = datetime(2025, 3, 18, 11, 0, 0, 123456, tzinfo=UTC)
    view = session(1, start, extra={"newField": 1}).view(NOW)
    assert view is not None
    assert list(view) == [
        "sessionId",
        "botId",
        "channel",
        "userId",
        "start_time",
        "end_time",
        "session_lang",
        "sessionType",
        "containmentType",
        "isDeveloper",
        "sessionStatus",
        "tags",
        "noOfMessagesExchanged",
        "noOfTasksExecuted",
        "newField",
    ]
    assert view["start_time"] == "2025-03-18T11:00:00.123Z"
    assert view["end_time"] == "2025-03-18T11:01:00.123Z"
    assert view["tags"] == {"userTags": [], "sessionTags": []}
    assert view["sessionStatus"] == "closed" and view["isDeveloper"] is False


def test_view_moves_from_active_to_closed() -> None:
    live = session(
        2,
        NOW - timedelta(minutes=10),
        end=NOW + timedelta(minutes=10),
        containment="dropOff",
        messages=10,
        tasks=4,
        visible_at=NOW - timedelta(minutes=5),
    )
    assert live.view(NOW - timedelta(minutes=6)) is None
    active = live.view(NOW)
    assert active is not None
    assert active["sessionStatus"] == "active" and active["containmentType"] == "selfService"
    assert active["end_time"] == format_time(NOW)
    assert (active["noOfMessagesExchanged"], active["noOfTasksExecuted"]) == (5, 2)
    closed = live.view(NOW + timedelta(minutes=10))
    assert closed is not None and closed["sessionStatus"] == "closed"
    assert closed["containmentType"] == "dropOff"
    assert closed["end_time"] == format_time(NOW + timedelta(minutes=10))
    assert (closed["noOfMessagesExchanged"], closed["noOfTasksExecuted"]) == (10, 4)


def test_server_clock_closes_an_active_session() -> None:
    live = session(3, NOW - timedelta(minutes=1), end=NOW + timedelta(hours=2), containment="agent")
    with SandboxServer([live], apps=[BOT_APP], now=NOW) as server:
        first = call(server).json()["sessions"][0]
        assert first["sessionStatus"] == "active" and first["containmentType"] == "selfService"
        assert call(server, params={"containmentType": "agent"}).json()["total"] == 0
        server.advance(timedelta(hours=3))
        later = call(server, {"dateTo": format_time(server.now)}).json()["sessions"][0]
        assert later["sessionStatus"] == "closed" and later["containmentType"] == "agent"
        assert later["end_time"] == format_time(NOW + timedelta(hours=2))
        server.set_now(NOW)
        assert server.now == NOW


def test_late_arrival_is_invisible_until_visible_at() -> None:
    late = session(4, NOW - timedelta(minutes=10), visible_at=NOW + timedelta(minutes=5))
    with SandboxServer([late], apps=[BOT_APP], now=NOW) as server:
        assert call(server).json()["total"] == 0 and server.visible_sessions() == []
        server.advance(timedelta(minutes=5))
        assert call(server, {"dateTo": format_time(server.now)}).json()["total"] == 1


# paging, ordering and windows -----------------------------------------------


def test_paging_is_newest_first_and_complete(server: SandboxServer) -> None:
    body = {"dateFrom": format_time(NOW - timedelta(days=2)), "dateTo": format_time(NOW)}
    seen: list[dict[str, Any]] = []
    while True:
        page = call(server, {**body, "skip": len(seen), "limit": 40}).json()
        seen.extend(page["sessions"])
        if not page["moreAvailable"]:
            break
    expected = [
        v
        for v in server.visible_sessions(BOT_A)
        if format_time(NOW - timedelta(days=2)) <= v["start_time"] <= format_time(NOW)
    ]
    assert page["total"] == len(seen) == len(expected) > 100
    assert [s["sessionId"] for s in seen] == [s["sessionId"] for s in expected]
    keys = [(s["start_time"], s["sessionId"]) for s in seen]
    assert keys == sorted(keys, reverse=True)
    assert {s["botId"] for s in seen} == {BOT_A}


def test_page_cap_limits_pages_but_keeps_more_available(generated: list[Any]) -> None:
    with SandboxServer(generated, apps=[BOT_APP], now=NOW, page_cap=10) as server:
        page = call(server, {"limit": 100, "offset": 5}).json()
        assert len(page["sessions"]) == 10 and page["moreAvailable"] is True
        assert page["total"] > 15
        last = call(server, {"skip": page["total"] - 3}).json()
        assert len(last["sessions"]) == 3 and last["moreAvailable"] is False


def test_ties_are_ordered_by_session_id_descending() -> None:
    same = NOW - timedelta(hours=1)
    sessions = [session(n, same) for n in (7, 9, 8)]
    with SandboxServer(sessions, apps=[BOT_APP], now=NOW) as server:
        ids = [s["sessionId"] for s in call(server).json()["sessions"]]
    assert ids == [f"{n:024x}" for n in (9, 8, 7)]


def test_seven_day_rule_and_bad_dates(server: SandboxServer) -> None:
    week = call(server, {"dateFrom": "2025-03-10", "dateTo": "2025-03-17"})
    assert week.status_code == 400 and "7 days" in error_msg(week)
    almost = {"dateFrom": "2025-03-10T00:00:00.000Z", "dateTo": "2025-03-16T23:59:59.999Z"}
    assert call(server, almost).status_code == 200
    assert call(server, {"dateFrom": "2025-03-12", "dateTo": "2025-03-11"}).status_code == 400
    assert call(server, {"dateFrom": "12/03/2025"}).status_code == 400
    assert call(server, {"limit": 0}).status_code == 400
    assert call(server, {"skip": -1}).status_code == 400
    assert call(server, {"sessionType": "bogus"}).status_code == 400
    assert call(server, params={"containmentType": "contained"}).status_code == 400
    bad_json = httpx.post(server.url + BOT_PATH, content=b"{not json", headers={"auth": mint()}, timeout=5)
    assert bad_json.status_code == 400


def test_window_is_inclusive_at_both_ends() -> None:
    low, high = NOW - timedelta(days=1), NOW - timedelta(hours=1)
    sessions = [
        session(1, low - timedelta(milliseconds=1)),
        session(2, low),
        session(3, high),
        session(4, high + timedelta(milliseconds=1)),
    ]
    with SandboxServer(sessions, apps=[BOT_APP], now=NOW) as server:
        page = call(server, {"dateFrom": format_time(low), "dateTo": format_time(high)}).json()
        assert [s["sessionId"] for s in page["sessions"]] == [f"{3:024x}", f"{2:024x}"]
        day = call(server, {"dateFrom": "2025-03-17", "dateTo": "2025-03-17T12:00:00+00:00"})
        assert day.json()["total"] == 2  # 11:59:59.999 and 12:00:00.000
        assert call(server).json()["total"] == 4  # no dates: the 7 days up to now


def test_default_and_one_sided_windows() -> None:
    sessions = [
        session(1, NOW - timedelta(days=8)),
        session(2, NOW - timedelta(days=6)),
        session(3, NOW - timedelta(days=1)),
    ]
    with SandboxServer(sessions, apps=[BOT_APP], now=NOW) as server:
        assert call(server).json()["total"] == 2
        from_only = call(server, {"dateFrom": format_time(NOW - timedelta(days=9))}).json()
        assert from_only["total"] == 2  # dateTo = dateFrom + 7 days
        to_only = call(server, {"dateTo": format_time(NOW - timedelta(days=2))}).json()
        assert to_only["total"] == 2  # dateFrom = dateTo - 7 days


def test_filters(generated: list[GeneratedSession], server: SandboxServer) -> None:
    old_spelling = call(server, params={"containmentType": "Selfservice"}).json()
    assert old_spelling["total"] > 0
    assert {s["containmentType"] for s in old_spelling["sessions"]} == {"selfService"}
    agent = call(server, params={"containmentType": "agent"}).json()
    assert {s["containmentType"] for s in agent["sessions"]} == {"agent"}
    closed_a = [s for s in generated if s.bot_id == BOT_A and s.end <= NOW]
    user = closed_a[0].user_id
    by_user = call(server, {"userId": user}).json()["sessions"]
    assert by_user and {s["userId"] for s in by_user} == {user}
    quiet = call(server, {"sessionType": "non-interactive"}).json()["sessions"]
    assert quiet and {s["sessionType"] for s in quiet} == {"non-interactive"}
    voice = next(s for s in closed_a if s.call_id is not None)
    by_call = call(server, params={"callId": str(voice.call_id)}).json()
    assert [s["sessionId"] for s in by_call["sessions"]] == [voice.session_id]


# sessionId lookups -----------------------------------------------------------


def test_session_id_lookup() -> None:
    recent = session(1, NOW - timedelta(days=2), session_tags=(("csatScore", 5),))
    old = session(2, NOW - timedelta(days=20), session_tags=(("csatScore", 3),))
    other_bot = session(3, NOW - timedelta(days=1), bot_id=BOT_B)
    with SandboxServer([recent, old, other_bot], apps=[BOT_APP], now=NOW) as server:
        ids = [old.session_id, recent.session_id, recent.session_id, "6465cf6e47Q9ed4e822b82a1"]
        body = {"sessionId": [*ids, other_bot.session_id], "dateFrom": "2020-01-01", "limit": 1}
        answer = call(server, body).json()
        assert answer["total"] == 2 and answer["moreAvailable"] is False
        assert [s["sessionId"] for s in answer["sessions"]] == [recent.session_id, old.session_id]
        assert answer["invalidSessions"] == ["6465cf6e47Q9ed4e822b82a1", other_bot.session_id]
        tags = [s["tags"]["sessionTags"] for s in answer["sessions"]]
        assert tags == [[{"name": "csatScore", "value": 5}], []]  # 14-day quirk
        too_many = call(server, {"sessionId": [recent.session_id] * 51})
        assert too_many.status_code == 400 and "50" in error_msg(too_many)
        assert call(server, {"sessionId": [recent.session_id] * 50}).json()["total"] == 1


# auth ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        pytest.param({}, 401, id="no-header"),
        pytest.param({"Authorization": f"Bearer {mint()}"}, 401, id="authorization-header"),
        pytest.param({"auth": mint(key="wrong-secret-" + "z" * 64)}, 401, id="bad-secret"),
        pytest.param({"auth": mint(app_id="cs-unknown")}, 401, id="unknown-app"),
        pytest.param({"auth": "not-a-jwt"}, 401, id="malformed"),
        pytest.param({"auth": mint(sub=None)}, 401, id="no-sub"),
        pytest.param({"auth": mint(alg="HS512")}, 200, id="hs512"),
        pytest.param({"auth": mint("cs-admin", ADMIN_SECRET)}, 403, id="admin-app-on-bot-route"),
    ],
)
def test_auth_on_bot_route(server: SandboxServer, headers: dict[str, str], status: int) -> None:
    response = call(server, headers=headers)
    assert response.status_code == status
    if status != 200:
        assert isinstance(error_msg(response), str)
        assert "code" in response.json()["errors"][0]


def test_admin_route_needs_an_admin_app(server: SandboxServer) -> None:
    bot_app = call(server, path=ADMIN_PATH)
    assert bot_app.status_code == 403
    admin = call(server, path=ADMIN_PATH, token=mint("cs-admin", ADMIN_SECRET)).json()
    assert {s["botId"] for s in admin["sessions"]} == {BOT_A, BOT_B}


def test_unknown_bot_unknown_path_and_foreign_bot(generated: list[GeneratedSession]) -> None:
    only_b = SandboxApp("cs-b", client_secret=SECRET, bot_ids=(BOT_B,))
    with SandboxServer(generated, apps=[only_b], now=NOW) as server:
        token = mint("cs-b")
        unknown = "/api/public/bot/st-nope/getSessions"
        assert call(server, path=unknown, token=token).status_code == 404
        assert call(server, path="/api/public/bot/x/other", token=token).status_code == 404
        assert call(server, token=token).status_code == 403
        assert call(server, path=f"/api/public/bot/{BOT_B}/getSessions", token=token).is_success


def test_rs256_app() -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    app = SandboxApp("cs-rsa", public_key_pem=pem.decode())
    with SandboxServer([], apps=[app], now=NOW, bot_ids=[BOT_A]) as server:
        assert call(server, token=mint("cs-rsa", private, "RS256")).status_code == 200
        assert call(server, token=mint("cs-rsa", SECRET, "HS256")).status_code == 401


def test_jti_enforcement_and_unpublished_scope() -> None:
    strict = SandboxApp("cs-jti", client_secret=SECRET, enforce_jti=True)
    hidden = SandboxApp("cs-hidden", client_secret=SECRET, scope_published=False)
    with SandboxServer([], apps=[strict, hidden], now=NOW, bot_ids=[BOT_A]) as server:
        assert call(server, token=mint("cs-jti", jti=None)).status_code == 401
        token = mint("cs-jti", jti="once")
        assert call(server, token=token).status_code == 200
        assert call(server, token=token).status_code == 401
        unpublished = call(server, token=mint("cs-hidden"))
        assert unpublished.status_code == 403 and "scope" in error_msg(unpublished)


# legacy shape ------------------------------------------------------------------


def test_legacy_shape(generated: list[GeneratedSession]) -> None:
    with SandboxServer(generated, apps=[BOT_APP], now=NOW, legacy=True) as server:
        sessions = call(server, params={"containmentType": "dropOff"}).json()["sessions"]
        assert sessions and {s["sessionType"] for s in sessions} == {"dropOff"}
        assert all("containmentType" not in s and "sessionStatus" not in s for s in sessions)
        everything = call(server).json()["sessions"]
        assert {s["sessionType"] for s in everything} <= {"selfService", "dropOff", "agent"}


# faults, latency, rate limits ---------------------------------------------------


def test_clear_faults_drops_queued_faults_and_random_rates(server: SandboxServer) -> None:
    server.inject("500", count=3)
    server.set_fault_rates({"503": 1.0})
    server.clear_faults()
    assert [call(server).status_code for _ in range(3)] == [200, 200, 200]
    assert [r.fault for r in server.requests] == [None, None, None]


def test_each_fault_kind_is_seen_by_a_client(server: SandboxServer) -> None:
    server.fault_latency = 0.3
    server.inject("429")
    limited = call(server)
    assert limited.status_code == 429 and error_msg(limited) == RATE_LIMIT_MESSAGE
    assert "retry-after" not in limited.headers
    server.inject("500")
    assert call(server).status_code == 500
    server.inject("502")
    assert call(server).status_code == 502
    server.inject("503")
    unavailable = call(server)
    assert unavailable.status_code == 503 and "text/html" in unavailable.headers["content-type"]
    server.inject("drop")
    with pytest.raises(httpx.RemoteProtocolError):
        call(server)
    server.inject("truncate")
    cut = call(server)
    assert cut.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut.content)
    server.inject("truncate_length")
    with pytest.raises(httpx.RemoteProtocolError):
        call(server)
    server.inject("latency")
    started = time.monotonic()
    assert call(server).status_code == 200
    assert time.monotonic() - started >= 0.3
    assert call(server).status_code == 200
    faults = [r.fault for r in server.requests]
    assert faults == [
        "429",
        "500",
        "502",
        "503",
        "drop",
        "truncate",
        "truncate_length",
        "latency",
        None,
    ]
    assert [r.status for r in server.requests][4] is None


def test_fault_rates_are_deterministic(server: SandboxServer) -> None:
    def run() -> list[str | None]:
        server.clear_requests()
        server.set_fault_rates({"500": 0.3, "503": 0.2}, seed=11)
        for _ in range(12):
            call(server)
        return [r.fault for r in server.requests]

    first = run()
    assert first == run() and {"500", "503", None} <= set(first)
    server.set_fault_rates({})
    assert call(server).status_code == 200


def test_latency_and_keep_alive(server: SandboxServer) -> None:
    server.set_latency(0.2)
    host, port = server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    started = time.monotonic()
    try:
        for _ in range(2):  # two answers on one connection
            connection.request("POST", BOT_PATH, body=b"{}", headers={"auth": mint()})
            answer = connection.getresponse()
            assert answer.status == 200 and json.loads(answer.read())["total"] > 0
    finally:
        connection.close()
    assert time.monotonic() - started >= 0.4


def test_rate_limits_per_bot_and_account(generated: list[GeneratedSession]) -> None:
    limit = RateLimit(per_minute=3, per_hour=5, seconds_per_minute=1.0)
    apps = [BOT_APP, ADMIN_APP]
    with SandboxServer(generated, apps=apps, now=NOW, rate_limit=limit, retry_after=7) as server:
        assert [call(server).status_code for _ in range(4)] == [200, 200, 200, 429]
        limited = call(server)
        assert error_msg(limited) == RATE_LIMIT_MESSAGE and limited.headers["retry-after"] == "7"
        other = f"/api/public/bot/{BOT_B}/getSessions"
        assert call(server, path=other).status_code == 200
        admin = mint("cs-admin", ADMIN_SECRET)
        assert call(server, path=ADMIN_PATH, token=admin).status_code == 200
        time.sleep(1.05)
        assert [call(server).status_code for _ in range(3)] == [200, 200, 429]  # hour: 5


def test_unauthenticated_requests_do_not_count(generated: list[GeneratedSession]) -> None:
    with SandboxServer(generated, apps=[BOT_APP], now=NOW, rate_limit=(2, 100)) as server:
        assert call(server, headers={}).status_code == 401
        assert [call(server).status_code for _ in range(3)] == [200, 200, 429]


# request log -------------------------------------------------------------------------


def test_request_log(server: SandboxServer) -> None:
    call(server, {"limit": 5}, params={"containmentType": "agent"}, token=mint(sub="alice"))
    call(server, headers={})
    call(server, path="/nowhere")
    first, second, third = server.requests
    assert (first.method, first.path, first.status, first.fault) == ("POST", BOT_PATH, 200, None)
    assert first.query == {"containmentType": "agent"} and first.body == {"limit": 5}
    assert first.bot_id == BOT_A and first.claims is not None
    assert first.claims["sub"] == "alice" and first.sandbox_now == NOW
    assert first.at.tzinfo is not None
    assert (second.status, second.claims, second.body) == (401, None, None)
    assert (third.status, third.bot_id) == (404, None)
    server.clear_requests()
    assert server.requests == []


# the application without HTTP ----------------------------------------------------------


def test_the_application_answers_without_a_transport(generated: list[GeneratedSession]) -> None:
    state = SandboxState(generated, now=NOW, page_cap=2)
    api = SandboxApi(state, apps=[BOT_APP])
    listed = api.handle(Request("POST", BOT_PATH, {}, b'{"limit": 5}', mint(), NOW))
    assert listed.status == 200 and len(listed.payload["sessions"]) == 2
    assert listed.payload["sessions"] == state.visible_sessions(BOT_A)[:2]
    wrong_method = api.handle(Request("GET", BOT_PATH, {}, b"", mint(), NOW))
    assert (wrong_method.status, wrong_method.headers) == (405, {"Allow": "POST"})
    state.inject("drop")
    assert api.handle(Request("POST", BOT_PATH, {}, b"", mint(), NOW)).dropped
    assert api.handle(Request("POST", "/nowhere", {}, b"", None, NOW)).status == 404
    assert [(r.status, r.fault, r.bot_id) for r in state.requests] == [
        (200, None, BOT_A),
        (405, None, BOT_A),
        (None, "drop", BOT_A),
        (404, None, None),
    ]


def test_a_sandbox_bug_is_answered_with_a_500(generated: list[GeneratedSession]) -> None:
    state = SandboxState(generated, now=NOW)
    api = SandboxApi(state, apps=[BOT_APP])
    state.store = None  # type: ignore[assignment]
    broken = api.handle(Request("POST", BOT_PATH, {}, b"", mint(), NOW))
    assert broken.status == 500 and broken.payload["errors"][0]["msg"].startswith("Sandbox error:")


# pages cut short and sessions the API passes over --------------------------------------


def test_a_short_page_leaves_its_last_third_out_but_keeps_total_and_more_available(
    server: SandboxServer,
) -> None:
    body = {"dateFrom": format_time(NOW - timedelta(days=2)), "dateTo": format_time(NOW), "limit": 30}
    whole = call(server, body).json()
    server.inject("short")
    cut = call(server, body).json()
    assert len(whole["sessions"]) == 30 and len(cut["sessions"]) == 20
    assert cut["sessions"] == whole["sessions"][:20]
    assert (cut["total"], cut["moreAvailable"]) == (whole["total"], whole["moreAvailable"])
    assert server.requests[-1].fault == "short"


def test_hidden_sessions_are_passed_over_in_silence(server: SandboxServer) -> None:
    window = {"dateFrom": format_time(NOW - timedelta(days=2)), "dateTo": format_time(NOW), "limit": 1000}
    listed = call(server, window).json()
    first, second = listed["sessions"][0]["sessionId"], listed["sessions"][1]["sessionId"]
    server.hide_sessions(from_lookup=[first])
    looked_up = call(server, {"sessionId": [first, second, "nope"]}).json()
    assert [s["sessionId"] for s in looked_up["sessions"]] == [second]
    assert looked_up["invalidSessions"] == ["nope"], "neither returned nor called invalid"
    assert call(server, window).json()["total"] == listed["total"], "still listed"
    server.hide_sessions(from_listing=[first])
    unlisted = call(server, window).json()
    assert unlisted["total"] == listed["total"] - 1
    assert first not in {s["sessionId"] for s in unlisted["sessions"]}
    server.hide_sessions(from_listing=[first], in_totals=True)
    counted = call(server, window).json()
    assert counted["total"] == listed["total"], "the total still counts it"
    assert first not in {s["sessionId"] for s in counted["sessions"]}
    server.hide_sessions()
    assert call(server, window).json() == listed
