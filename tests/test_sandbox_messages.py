"""Tests of the sandbox's Conversation History API (getMessages, getMessagesV2)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from kore_sessions.sandbox import (
    GeneratedSession,
    SandboxApp,
    SandboxServer,
    format_time,
    generate_sessions,
)
from kore_sessions.sandbox.chat_texts import AGENT_HANDOFF_TEXTS, DROP_OFF_PROMPTS
from kore_sessions.sandbox.conversations import conversation
from kore_sessions.sandbox.errors import RATE_LIMIT_MESSAGE
from kore_sessions.sandbox.faults import RateLimit
from kore_sessions.sandbox.messages_api import MAX_MESSAGE_SESSION_IDS, VERSION_LIMITS
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

V1 = f"/api/public/bot/{BOT_A}/getMessages"
V2 = f"/api/public/bot/{BOT_A}/getMessagesV2"
ADMIN = "/api/public/getMessages"
SESSIONS = f"/api/public/bot/{BOT_A}/getSessions"
# A window of the last two days, well under the 7-day rule.
TWO_DAYS = {"dateFrom": format_time(NOW - timedelta(days=2)), "dateTo": format_time(NOW)}
PHONE = re.compile(r"\+1 \d{3} 555 \d{4}")
EMAIL = re.compile(r"[a-z]+\.[a-z]+@example\.(?:org|com)")


def call(
    server: SandboxServer,
    body: Any = None,
    path: str = V2,
    token: str | None = None,
    method: str = "POST",
    params: dict[str, str] | None = None,
) -> httpx.Response:
    """Call the sandbox with a fresh bot-app token unless told otherwise."""
    return call_sandbox(server, path, body, token, method, params)


def session(number: int, start: datetime, **overrides: Any) -> GeneratedSession:
    """A hand-made closed rtm session of BOT_A lasting ten minutes, with ten messages."""
    return hand_made_session(number, start, 10, **{"messages": 10, **overrides})


def read_all(server: SandboxServer, body: dict[str, Any], path: str = V2) -> tuple[list[dict[str, Any]], int]:
    """Every page of a request, skip advanced by the rows received; the messages and last total."""
    seen: list[dict[str, Any]] = []
    while True:
        page = call(server, {**body, "skip": len(seen)}, path).json()
        seen.extend(page["messages"])
        if not page["moreAvailable"] or not page["messages"]:
            return seen, page["total"]


@pytest.fixture(scope="module")
def generated() -> list[GeneratedSession]:
    """Three days of two bots, with open sessions at NOW."""
    return generate_sessions([BOT_A, BOT_B], NOW - timedelta(days=3), NOW, per_day=150, seed=3)


@pytest.fixture
def server(generated: list[GeneratedSession]) -> Iterator[SandboxServer]:
    """A sandbox over the generated sessions with both apps, message pages capped at 300."""
    with SandboxServer(generated, apps=[BOT_APP, ADMIN_APP], now=NOW, message_page_cap=300) as running:
        yield running


# generation ----------------------------------------------------------------------------


@pytest.mark.unit
def test_conversations_are_deterministic(generated: list[GeneratedSession]) -> None:
    again = generate_sessions([BOT_A, BOT_B], NOW - timedelta(days=3), NOW, per_day=150, seed=3)
    first = [conversation(s) for s in generated[:50]]
    assert first == [conversation(s) for s in again[:50]]
    assert [m.view() for m in first[0]] == [m.view() for m in conversation(again[0])]
    assert conversation(generated[0]) != conversation(generated[1])
    ids = [m.message_id for c in first for m in c]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"ms-[0-9a-f-]{36}", i) for i in ids)


@pytest.mark.unit
def test_messages_agree_with_their_sessions(generated: list[GeneratedSession]) -> None:
    state = SandboxState(generated, now=NOW)
    sessions = {v["sessionId"]: v for v in state.visible_sessions()}
    messages = state.visible_messages()
    assert {m["sessionId"] for m in messages} <= set(sessions)
    by_session: dict[str, list[dict[str, Any]]] = {}
    for message in reversed(messages):  # oldest first
        by_session.setdefault(message["sessionId"], []).append(message)
    for session_id, listed in by_session.items():
        view, types = sessions[session_id], {m["type"] for m in listed}
        assert {m["isD"] for m in listed} == {int(view["isDeveloper"])}
        assert {m["createdBy"] for m in listed} == {view["userId"]}
        assert view["start_time"] <= listed[0]["createdOn"] and listed[-1]["createdOn"] <= view["end_time"]
        if view["sessionType"] == "non-interactive":
            assert "incoming" not in types
        elif view["noOfMessagesExchanged"] >= 2 and len(listed) == view["noOfMessagesExchanged"]:
            assert {"incoming", "outgoing"} <= types
    final = {s.session_id: s for s in generated}
    closed = [final[i] for i in by_session if final[i].end <= NOW]
    drop_offs = [conversation(s)[-1] for s in closed if s.containment == "dropOff"]
    agents = [conversation(s)[-1] for s in closed if s.containment == "agent"]
    assert drop_offs and all(m.type == "outgoing" and m.text in DROP_OFF_PROMPTS for m in drop_offs)
    assert agents and all(m.type == "outgoing" and m.text in AGENT_HANDOFF_TEXTS for m in agents)
    said = [m["components"][0]["data"]["text"] for m in messages if m["type"] == "incoming"]
    assert any(PHONE.search(t) for t in said) and any(EMAIL.search(t) for t in said)


@pytest.mark.unit
def test_counts_match_the_sessions_at_any_time(generated: list[GeneratedSession]) -> None:
    state = SandboxState(generated, now=NOW)
    for moment in (NOW - timedelta(hours=30), NOW - timedelta(minutes=7), NOW):
        state.set_now(moment)
        for view in state.visible_sessions():
            made = [m for m in conversation(state.store.by_id[view["sessionId"]]) if m.created <= moment]
            assert len(made) == view["noOfMessagesExchanged"], view["sessionId"]
    v1, v2 = state.visible_messages(), state.visible_messages(version=2)
    assert {m["ms"] for m in v1} == {0, 1, 2, 3} and {m["ms"] for m in v2} == {1, 3}
    assert len(v1) - len(v2) == sum(1 for m in v1 if m["ms"] in (0, 2))
    assert Counter(m["isD"] for m in v1)[1] > 0 and any(m["type"] == "ctrlmsg" for m in v1)
    assert any("resourceid" in m for m in v1) and any("resourceid" not in m for m in v1)


# request rules ---------------------------------------------------------------------------


def test_seven_day_rule_also_with_session_ids(server: SandboxServer) -> None:
    week = {"dateFrom": "2025-03-10", "dateTo": "2025-03-17"}
    refused = call(server, week)
    assert refused.status_code == 400 and "7 days" in error_msg(refused)
    some_id = server.visible_sessions(BOT_A)[0]["sessionId"]
    assert call(server, {**week, "sessionId": [some_id]}).status_code == 400
    almost = {"dateFrom": "2025-03-10T00:00:00.000Z", "dateTo": "2025-03-16T23:59:59.999Z"}
    assert call(server, almost).status_code == 200
    assert call(server, {"msgId": "ms-1"}).status_code == 400
    assert call(server, {"forward": "maybe"}).status_code == 400


def test_rtm_only_by_default_and_one_channel_per_call(server: SandboxServer) -> None:
    default = read_all(server, TWO_DAYS)[0]
    rtm = read_all(server, {**TWO_DAYS, "channelType": "rtm"})[0]
    assert default == rtm and {m["chnl"] for m in default} == {"rtm"}
    voice = read_all(server, {**TWO_DAYS, "channelType": "korevg"})[0]
    assert voice and {m["chnl"] for m in voice} == {"korevg"}
    window = [m for m in server.visible_messages(BOT_A, 2) if TWO_DAYS["dateFrom"] <= m["createdOn"]]
    assert len(default) + len(voice) < len(window)
    assert call(server, {"channelType": ["rtm", "korevg"]}).status_code == 400


def test_session_id_list_and_its_maximum(server: SandboxServer) -> None:
    ids = [v["sessionId"] for v in server.visible_sessions(BOT_A) if v["channel"] == "rtm"][:2]
    answer = call(server, {**TWO_DAYS, "sessionId": ids}).json()
    assert answer["total"] > 0 and {m["sessionId"] for m in answer["messages"]} == set(ids)
    assert call(server, {"sessionId": ["0" * 24]}).json()["total"] == 0
    too_many = call(server, {"sessionId": ids[:1] * (MAX_MESSAGE_SESSION_IDS + 1)})
    assert too_many.status_code == 400 and str(MAX_MESSAGE_SESSION_IDS) in error_msg(too_many)
    assert call(server, {"sessionId": ids[:1] * MAX_MESSAGE_SESSION_IDS}).status_code == 200
    assert call(server, {"sessionId": ids[0]}).status_code == 400


def test_paging_is_newest_first_complete_and_capped(server: SandboxServer) -> None:
    body = {**TWO_DAYS, "limit": 1000}
    first = call(server, body).json()
    assert len(first["messages"]) == 300 and first["moreAvailable"] is True
    seen, total = read_all(server, body)
    expected = [
        m
        for m in server.visible_messages(BOT_A, 2)
        if m["chnl"] == "rtm" and TWO_DAYS["dateFrom"] <= m["createdOn"] <= TWO_DAYS["dateTo"]
    ]
    assert total == len(seen) == len(expected) > 300
    assert [m["_id"] for m in seen] == [m["_id"] for m in expected]
    keys = [(m["createdOn"], m["_id"]) for m in seen]
    assert keys == sorted(keys, reverse=True)
    forward = read_all(server, {**body, "forward": "true"})[0]
    assert [m["_id"] for m in forward] == [m["_id"] for m in reversed(seen)]
    assert set(first) == {"total", "moreAvailable", "icon", "messages"}


def test_ties_are_ordered_by_id() -> None:
    same = NOW - timedelta(hours=1)
    quick = session(1, same, end=same, messages=4)
    with SandboxServer([quick], apps=[BOT_APP], now=NOW) as server:
        newest = [m["_id"] for m in call(server).json()["messages"]]
        oldest = [m["_id"] for m in call(server, {"forward": True}).json()["messages"]]
    assert newest == sorted(newest, reverse=True) and oldest == sorted(newest) and len(newest) == 4


def test_v1_and_v2_limits_and_task_messages(server: SandboxServer) -> None:
    v1 = call(server, {**TWO_DAYS, "limit": 5000}, V1)
    assert v1.status_code == 200 and len(v1.json()["messages"]) == VERSION_LIMITS[1]
    v2 = call(server, {**TWO_DAYS, "limit": 250}).json()
    assert len(v2["messages"]) == 250
    everything = {**TWO_DAYS, "channelType": "korevg"}
    v1_all, v2_all = read_all(server, everything, V1)[0], read_all(server, everything)[0]
    tasks = [m for m in v1_all if m["ms"] in (0, 2)]
    assert tasks and len(v1_all) - len(v2_all) == len(tasks)
    assert not [m for m in v2_all if m["ms"] in (0, 2)]


def test_get_needs_a_user_and_the_admin_route(server: SandboxServer) -> None:
    assert call(server, method="GET").status_code == 400
    user = next(m["createdBy"] for m in server.visible_messages(BOT_A) if m["chnl"] == "rtm")
    got = call(server, method="GET", params={"userId": user, "limit": "1000", **TWO_DAYS}).json()
    assert got["messages"] and {m["createdBy"] for m in got["messages"]} == {user}
    assert call(server, path=V1, method="GET", params={"userId": user}).status_code == 200
    admin_token = mint("cs-admin", ADMIN_SECRET)
    assert call(server, path=ADMIN, token=admin_token, method="GET").status_code == 405
    assert call(server, path=ADMIN).status_code == 403
    assert call(server, token=admin_token).status_code == 403
    admin = admin_page(server, admin_token)
    assert {m["botId"] for m in admin} == {BOT_A, BOT_B}
    page = call(server, {**TWO_DAYS, "limit": 1000}, ADMIN, admin_token).json()
    assert len(page["messages"]) == VERSION_LIMITS[1] and page["moreAvailable"] is True
    assert call(server, path="/api/public/bot/st-nope/getMessagesV2").status_code == 404


def admin_page(server: SandboxServer, token: str) -> list[dict[str, Any]]:
    """The first admin-route page of the last two days."""
    return call(server, {**TWO_DAYS, "limit": 100}, ADMIN, token).json()["messages"]


def test_an_app_without_chat_history_is_refused_naming_the_scope(generated: list[GeneratedSession]) -> None:
    sessions_only = SandboxApp("cs-s", client_secret=SECRET, scopes=frozenset({"Bot Sessions"}))
    chat_only = SandboxApp("cs-c", client_secret=SECRET, scopes=frozenset({"Chat History"}))
    admin = SandboxApp("cs-a", client_secret=SECRET, kind="admin", scopes=frozenset({"Bot Sessions"}))
    with SandboxServer(generated, apps=[sessions_only, chat_only, admin], now=NOW) as server:
        refused = call(server, token=mint("cs-s"))
        assert refused.status_code == 403 and "Chat History" in error_msg(refused)
        assert "code" in refused.json()["errors"][0]
        assert call(server, path=SESSIONS, token=mint("cs-s")).status_code == 200
        assert call(server, token=mint("cs-c")).status_code == 200
        no_sessions = call(server, path=SESSIONS, token=mint("cs-c"))
        assert no_sessions.status_code == 403 and "Bot Sessions" in error_msg(no_sessions)
        admin_refused = call(server, path=ADMIN, token=mint("cs-a"))
        assert "Bot Analytics > Chat History" in error_msg(admin_refused)
    assert BOT_APP.scopes == frozenset({"Bot Sessions", "Chat History"})


# the clock, late arrivals, rate limits and faults --------------------------------------------


def test_open_session_messages_grow_as_the_clock_moves() -> None:
    live = session(4, NOW - timedelta(minutes=10), end=NOW + timedelta(minutes=10))
    assert all(m.visible_at == m.created for m in conversation(live)), "none of them late"
    with SandboxServer([live], apps=[BOT_APP], now=NOW) as server:
        counts = []
        for _ in range(3):
            window = {"dateTo": format_time(server.now), "sessionId": [live.session_id]}
            counts.append(call(server, window, V1).json()["total"])
            assert counts[-1] == server.visible_sessions()[0]["noOfMessagesExchanged"]
            server.advance(timedelta(minutes=10))
    assert counts == [5, 10, 10]


def test_late_messages_appear_after_the_clock_moves(generated: list[GeneratedSession]) -> None:
    late = next(
        m
        for s in generated
        if s.bot_id == BOT_A and s.channel == "rtm" and s.end < NOW - timedelta(hours=1)
        for m in conversation(s)
        if m.visible_at > m.created + timedelta(seconds=1) and m.session.visible_from <= m.created
    )
    hidden_session = session(3, NOW - timedelta(minutes=30), visible_at=NOW + timedelta(minutes=5))
    with SandboxServer([*generated, hidden_session], apps=[BOT_APP], now=late.created) as server:
        body = {"dateTo": format_time(late.visible_at), "sessionId": [late.session_id]}
        assert late.message_id not in {m["_id"] for m in call(server, body, V1).json()["messages"]}
        server.set_now(late.visible_at)
        assert late.message_id in {m["_id"] for m in call(server, body, V1).json()["messages"]}
        server.set_now(NOW)
        assert call(server, {"sessionId": [hidden_session.session_id]}, V1).json()["total"] == 0
        server.advance(timedelta(minutes=5))
        body = {"dateTo": format_time(server.now), "sessionId": [hidden_session.session_id]}
        assert call(server, body, V1).json()["total"] == 10


def test_rate_limit_is_shared_with_sessions(generated: list[GeneratedSession]) -> None:
    limit = RateLimit(per_minute=3, per_hour=100, seconds_per_minute=60.0)
    with SandboxServer(generated, apps=[BOT_APP, ADMIN_APP], now=NOW, rate_limit=limit) as server:
        statuses = [call(server, path=p).status_code for p in (SESSIONS, V1, V2, SESSIONS, V2)]
        assert statuses == [200, 200, 200, 429, 429]
        assert error_msg(call(server)) == RATE_LIMIT_MESSAGE
        assert call(server, path=f"/api/public/bot/{BOT_B}/getMessagesV2").status_code == 200
        admin = mint("cs-admin", ADMIN_SECRET)
        admin_paths = ("/api/public/getSessions", ADMIN, ADMIN, ADMIN)
        assert [call(server, path=p, token=admin).status_code for p in admin_paths] == [200, 200, 200, 429]


def test_faults_apply_to_the_messages_routes(server: SandboxServer) -> None:
    server.inject("500")
    assert call(server).status_code == 500
    server.inject("bad_shape")
    assert isinstance(call(server).json()["messages"], dict)
    whole = call(server, {**TWO_DAYS, "limit": 30}).json()
    server.inject("short")
    cut = call(server, {**TWO_DAYS, "limit": 30}).json()
    assert cut["messages"] == whole["messages"][:20] and cut["total"] == whole["total"]
    assert [r.fault for r in server.requests] == ["500", "bad_shape", None, "short"]


@pytest.mark.unit
def test_removed_sessions_take_their_messages_along(generated: list[GeneratedSession]) -> None:
    state = SandboxState(generated, now=NOW)
    gone = state.visible_sessions(BOT_A)[0]["sessionId"]
    assert gone in {m["sessionId"] for m in state.visible_messages(BOT_A)}
    state.remove_sessions([gone])
    assert gone not in {m["sessionId"] for m in state.visible_messages()}


def test_an_interactive_session_without_messages_has_an_empty_conversation() -> None:
    session = hand_made_session(900, NOW - timedelta(hours=2), 10, messages=0)
    assert conversation(session) == ()
    with SandboxServer([session], apps=[BOT_APP], now=NOW) as server:
        assert server.visible_messages() == []
