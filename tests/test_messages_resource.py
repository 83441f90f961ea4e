"""The `messages` resource against the sandbox's Conversation History API: every message, one by
one, after a backfill and after incremental runs whose clocks disagree with the server's, with
late messages and sessions still open; what users typed kept out by default; the channels asked
for; the admin route; the Chat History scope; the option's checks."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from kore_sessions.sandbox import GeneratedSession, RateLimit, SandboxApp, SandboxServer, generate_sessions
from kore_sessions.sandbox.conversations import conversation
from kore_sessions.source import ConfigError, KoreCredentials, KoreSessionsOptions, resolve_options
from kore_sessions.source.api.answers import Page
from kore_sessions.source.api.paging import PageCap, PageRequest
from kore_sessions.source.api.rules import CLOCK_SKEW_ALLOWANCE
from kore_sessions.source.api.run import SourceRun
from kore_sessions.source.api.timestamps import format_api_timestamp
from kore_sessions.source.api.walk import Rows
from kore_sessions.source.api.windows import Window
from kore_sessions.source.config import build_run_config
from kore_sessions.source.messages.channel_plan import (
    ChannelStarts,
    SessionsSeen,
    channel_plan,
    walked_channels,
)
from kore_sessions.source.messages.channel_walk import MessagesExtractor
from kore_sessions.source.messages.history_api import get_messages_page
from kore_sessions.source.sessions.endpoint import get_sessions_page

from .cli_helpers import DATABASE, PACKAGE_A_DAY, cli_env, kill_when, kore, load_started
from .conftest import (
    ADMIN_ID,
    ADMIN_SECRET,
    BOTS,
    CLIENT_ID,
    CLIENT_SECRET,
    NOW,
    PAGE_CAP,
    REAL_NOW,
    Loader,
    api_time,
    assert_matches_sandbox,
    make_apps,
    sessions_up_to_now,
    tag_text,
)

BOTH = ["sessions", "messages"]
# Limits that do not bind here (the rate budget has its own tests): each load pays no wait.
UNBOUND = {"requests_per_minute": 100_000, "requests_per_hour": 1_000_000}
# A message served this long after its createdOn arrived late (sessions themselves arrive whole).
LATE = timedelta(seconds=60)
HISTORY_FROM = NOW - timedelta(days=8)
MESSAGE_COLUMNS = (
    "message_id, session_id, bot_id, message_type, created_on, channel, component_kinds, text_length, text"
)


@pytest.fixture(scope="module")
def arriving() -> list[GeneratedSession]:
    """Eight days of two bots before NOW, more arriving over the next ten hours, some open."""
    return generate_sessions(
        BOTS, HISTORY_FROM, NOW + timedelta(hours=10), per_day=60, seed=41, active_share=0.3
    )


def text_of(view: dict[str, Any]) -> str | None:
    """The words of a message's components, joined as the source joins them."""
    texts = [
        c["data"]["text"]
        for c in view.get("components", [])
        if isinstance(c.get("data", {}).get("text"), str)
    ]
    return "\n".join(texts) if texts else None


def assert_messages_match(
    loader: Loader,
    server: SandboxServer,
    until: datetime | None = None,
    version: int = 2,
    keep_user_text: bool = False,
) -> None:
    """The warehouse holds exactly the server's visible messages (created by `until`), field by field."""
    truth = {
        view["_id"]: view
        for view in server.visible_messages(version=version)
        if until is None or api_time(view["createdOn"]) <= until
    }
    rows = {row[0]: row for row in loader.query(f"SELECT {MESSAGE_COLUMNS} FROM messages")}
    assert sorted(rows) == sorted(truth), (
        f"{len(set(truth) - set(rows))} missing, {len(set(rows) - set(truth))} extra"
    )
    for message_id, view in truth.items():
        text = text_of(view)
        kept = keep_user_text or view["type"] == "outgoing"
        wanted = (
            message_id,
            view["sessionId"],
            view["botId"],
            view["type"],
            api_time(view["createdOn"]),
            view["chnl"],
            ",".join(c["cT"] for c in view["components"]) or None,
            len(text) if text is not None else None,
            text if kept else None,
        )
        got = tuple(v.astimezone(UTC) if isinstance(v, datetime) else v for v in rows[message_id])
        assert got == wanted, f"message {message_id} differs"


def test_a_backfill_loads_every_message_with_its_components_and_tags(arriving: list, tmp_path: Path) -> None:
    with SandboxServer(arriving, apps=make_apps(), now=NOW, page_cap=PAGE_CAP) as server:
        loader = Loader(server, tmp_path)
        summary = loader.run(resources=BOTH, **UNBOUND, start_date=HISTORY_FROM.isoformat())
        assert_messages_match(loader, server)
        truth = server.visible_messages(version=2)
        assert f"messages: {len(truth)} fetched" in summary.lines()
        tags = {
            (row[0], row[1], row[2], row[3])
            for row in loader.query("SELECT message_id, scope, name, value FROM messages__tags")
        }
        wanted = {
            (view["_id"], scope, tag["name"], tag_text(tag["value"]))
            for view in truth
            for key, scope in (("messageTags", "message"), ("userTags", "user"), ("sessionTags", "session"))
            for tag in view["tags"][key]
        }
        assert tags == wanted
        kinds = loader.query("SELECT COUNT(*), COUNT(DISTINCT message_id) FROM messages__components")
        assert kinds == [(sum(len(v["components"]) for v in truth), len(truth))]
        sessions = {row[0] for row in loader.query("SELECT session_id FROM sessions")}
        assert {view["sessionId"] for view in truth} <= sessions, "every message joins its session"


def test_what_users_typed_is_in_no_table_unless_asked_for(arriving: list, tmp_path: Path) -> None:
    with SandboxServer(arriving, apps=make_apps(), now=NOW, page_cap=PAGE_CAP) as server:
        typed = {text_of(v) for v in server.visible_messages(version=2) if v["type"] == "incoming"} - {None}
        typed = {text for text in typed if len(text) >= 8}
        assert typed, "the sandbox's users typed something"
        for keep, folder in ((False, "default"), (True, "kept")):
            loader = Loader(server, tmp_path / folder)
            loader.run(resources=BOTH, **UNBOUND, start_date=HISTORY_FROM.isoformat(), store_user_text=keep)
            found = set()
            for (table,) in loader.query(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'kore_sessions'"
            ):
                columns = [
                    name
                    for name, kind in loader.query(
                        "SELECT column_name, data_type FROM information_schema.columns "
                        f"WHERE table_schema = 'kore_sessions' AND table_name = '{table}'"
                    )
                    if kind == "VARCHAR"
                ]
                for column in columns:
                    values = {row[0] for row in loader.query(f'SELECT DISTINCT "{column}" FROM {table}')}
                    found |= typed & values
                    found |= {text for text in typed for value in values if value and text in value}
            if keep:
                assert found, "store_user_text keeps what users typed"
                assert_messages_match(loader, server, keep_user_text=True)
            else:
                assert not found, f"{len(found)} texts users typed reached the warehouse"


@pytest.mark.parametrize(
    ("loader_ahead", "server_step", "loader_step"),
    [
        (timedelta(hours=5), timedelta(minutes=100), timedelta(minutes=95)),  # server lags by hours
        (timedelta(minutes=-10), timedelta(minutes=100), timedelta(minutes=97)),  # leads by minutes
        (timedelta(hours=-3), timedelta(minutes=100), timedelta(minutes=100)),  # leads by hours
    ],
    ids=["server-lags-5h", "server-leads-minutes", "server-leads-3h"],
)
def test_incremental_runs_lose_no_message_whichever_clock_is_ahead(
    arriving: list, tmp_path: Path, loader_ahead: timedelta, server_step: timedelta, loader_step: timedelta
) -> None:
    with SandboxServer(arriving, apps=make_apps(), now=NOW, page_cap=PAGE_CAP) as server:
        loader = Loader(server, tmp_path)
        loader_now = NOW + loader_ahead
        loader.clock = lambda: loader_now
        counts = []
        for _ in range(4):
            loader.run(resources=BOTH, **UNBOUND, start_date=HISTORY_FROM.isoformat())
            reach = loader_now + CLOCK_SKEW_ALLOWANCE
            assert_messages_match(loader, server, until=None if server.now <= reach else reach)
            counts.append(loader.query("SELECT COUNT(*) FROM messages")[0][0])
            server.advance(server_step)
            loader_now += loader_step
        assert counts == sorted(counts) and counts[-1] > counts[0]
        late = {m.message_id for s in arriving for m in conversation(s) if m.visible_at > m.created + LATE}
        assert late & {row[0] for row in loader.query("SELECT message_id FROM messages")}, "late ones loaded"


def test_a_channel_first_seen_late_is_walked_from_its_first_session(arriving: list, tmp_path: Path) -> None:
    """A session on a channel no session showed before arrives hours late: the next run walks
    that channel back to it, far behind the messages' cursor."""
    early = NOW - timedelta(days=2)
    template = next(s for s in arriving if s.start > early and s.end and s.end < NOW - timedelta(days=1))
    newcomer = replace(template, session_id="f" * 24, channel="telegram", visible_at=NOW + timedelta(hours=1))
    sessions = [s for s in arriving if s.start <= NOW] + [newcomer]
    with SandboxServer(sessions, apps=make_apps(), now=NOW, page_cap=PAGE_CAP) as server:
        loader = Loader(server, tmp_path)
        loader.run(resources=BOTH, **UNBOUND, start_date=HISTORY_FROM.isoformat())
        assert "telegram" not in {row[0] for row in loader.query("SELECT DISTINCT channel FROM messages")}
        server.advance(timedelta(hours=2))
        # the sessions' bounded backfill finds the late session; the messages' next run its channel
        loader.run(resources=["sessions"], **UNBOUND, start_date=early.isoformat(), end_date=NOW.isoformat())
        loader.run(resources=BOTH, **UNBOUND, start_date=HISTORY_FROM.isoformat())
        assert_messages_match(loader, server)
        assert "telegram" in {row[0] for row in loader.query("SELECT DISTINCT channel FROM messages")}


def test_a_long_bounded_backfill_goes_in_packages_its_messages_after_its_sessions(
    arriving: list, tmp_path: Path
) -> None:
    """A bounded backfill of eight days, a day a window and two windows a package: its sessions
    load in packages (bounded memory, also for dlt's merge), its messages only once every
    package of sessions is walked (a channel's first session may come in the range's last
    package), every session and message once, and no cursor written."""
    late = NOW - timedelta(hours=12)
    template = next(s for s in arriving if s.start > late and s.end and s.end < NOW)
    newcomer = replace(template, session_id="e" * 24, channel="telegram")
    sessions = [s for s in arriving if s.start <= NOW] + [newcomer]
    with SandboxServer(sessions, apps=make_apps(), now=NOW, page_cap=PAGE_CAP) as server:
        loader = Loader(server, tmp_path)
        bounded = {"start_date": HISTORY_FROM.isoformat(), "end_date": NOW.isoformat()}
        summary = loader.run(resources=BOTH, **UNBOUND, **bounded, window_hours=24, windows_per_package=2)
        assert summary.packages >= 2 * 4, "four packages of sessions, then the messages'"
        assert_matches_sandbox(loader, server, until=NOW)
        assert_messages_match(loader, server)
        assert "telegram" in {row[0] for row in loader.query("SELECT DISTINCT channel FROM messages")}
        paths = [r.path for r in server.requests if r.path.endswith(("getSessions", "getMessagesV2"))]
        last_sessions = max(i for i, path in enumerate(paths) if path.endswith("getSessions"))
        first_messages = min(i for i, path in enumerate(paths) if path.endswith("getMessagesV2"))
        assert last_sessions < first_messages, "a message was asked before the range's sessions were walked"
        assert all("cursor" not in state for state in loader.state()["bots"].values())


def test_the_channel_plan_reaches_back_for_new_channels_and_open_sessions() -> None:
    first = datetime(2025, 3, 1, tzinfo=UTC)
    seen = SessionsSeen({"rtm": first, "msteams": first + timedelta(days=3)}, None, first)
    walked = {"channels": {"rtm": "2025-03-01T00:00:00.000Z"}}
    assert channel_plan(seen, walked).channels == ("msteams", "rtm")
    assert channel_plan(seen, walked).reach_back == first + timedelta(days=3)
    both = {"channels": {"rtm": None, "msteams": None}}
    assert channel_plan(seen, both).reach_back is None
    opened = replace(seen, oldest_open=first + timedelta(days=5))
    assert channel_plan(opened, both).reach_back == first + timedelta(days=5)
    assert channel_plan(SessionsSeen(), {}).channels == ("rtm",), "no session yet: the documented default"
    late = SessionsSeen({"rtm": first - timedelta(days=1)})
    assert channel_plan(late, walked).reach_back == first - timedelta(days=1), "a session before the walk"


def test_a_channel_asked_only_from_a_later_package_is_walked_back_by_the_next_run() -> None:
    """A channel that joined in the run's second package is remembered from that package's
    start, not the run's: its first session lies before, so the next run reaches back to it."""
    first = datetime(2025, 3, 1, tzinfo=UTC)
    starts = ChannelStarts()
    starts.asked("st-a", ("rtm",), first)
    starts.asked("st-a", ("msteams", "rtm"), first + timedelta(days=6))
    starts.asked("st-b", ("slack",), first)
    state: dict[str, Any] = {}
    walked_channels(state, "st-a", starts)
    assert state["channels"] == {"rtm": "2025-03-01T00:00:00.000Z", "msteams": "2025-03-07T00:00:00.000Z"}
    seen = SessionsSeen({"rtm": first, "msteams": first + timedelta(days=2)})
    assert channel_plan(seen, state).reach_back == first + timedelta(days=2)
    again = ChannelStarts()
    again.asked("st-a", ("msteams", "rtm"), first + timedelta(days=2))
    walked_channels(state, "st-a", again)
    assert channel_plan(seen, state).reach_back is None, "walked from its first session: done"


def test_a_window_is_asked_once_per_channel_its_sessions_came_on(arriving: list, tmp_path: Path) -> None:
    with SandboxServer(arriving, apps=make_apps(), now=NOW, page_cap=PAGE_CAP, message_page_cap=7) as server:
        loader = Loader(server, tmp_path)
        loader.run(resources=BOTH, **UNBOUND, start_date=HISTORY_FROM.isoformat(), windows_per_package=10)
        asked = [r.body for r in server.requests if r.path.endswith("getMessagesV2")]
        channels = {s.channel for s in arriving if s.start <= NOW}
        assert {body["channelType"] for body in asked} == channels
        assert all(body["limit"] <= 10_000 for body in asked)
        assert_messages_match(loader, server)  # pages cut to 7: skip advanced by what came back


def test_the_admin_route_loads_every_bot_s_messages_in_v1(arriving: list, tmp_path: Path) -> None:
    with SandboxServer(arriving, apps=make_apps(), now=NOW, page_cap=PAGE_CAP) as server:
        loader = Loader(server, tmp_path)
        credentials = KoreCredentials(client_id=ADMIN_ID, client_secret=ADMIN_SECRET)
        loader.run(
            resources=BOTH,
            **UNBOUND,
            bot_ids=None,
            all_bots=True,
            credentials=credentials,
            start_date=HISTORY_FROM.isoformat(),
        )
        assert_messages_match(loader, server, version=1)
        admin = [r.body for r in server.requests if r.path == "/api/public/getMessages"]
        assert admin and all(body["limit"] == 100 for body in admin), "v1's documented page, no more"


def test_without_the_chat_history_scope_the_load_says_so_in_one_line(tmp_path: Path) -> None:
    history = sessions_up_to_now(days=2, per_day=20, seed=5)
    apps = [SandboxApp(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, scopes=frozenset({"Bot Sessions"}))]
    with SandboxServer(history, apps=apps, now=REAL_NOW) as server:
        env = cli_env(server, tmp_path, SOURCES__KORE_SESSIONS__RESOURCES="sessions,messages")
        result = kore(["load"], env, tmp_path)
        assert result.returncode != 0
        errors = [line for line in result.stderr.splitlines() if "Chat History" in line]
        assert len(errors) == 1 and "403" in errors[0], result.stderr
        assert CLIENT_SECRET not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("sessions,mesages", "'mesages' unknown"),
        ("messages", "messages need sessions"),
        ('["sessions", ', "resources is not a valid JSON list"),
    ],
)
def test_a_wrong_resources_setting_is_one_line(value: str, message: str, tmp_path: Path) -> None:
    with SandboxServer([], apps=make_apps(), now=REAL_NOW) as server:
        loader = Loader(server, tmp_path)
        with pytest.raises(ConfigError, match=message):
            loader.source(resources=value)


def test_a_load_of_both_resources_stays_within_the_server_s_limit(arriving: list, tmp_path: Path) -> None:
    """The server counts both APIs of a bot against one limit (6 a scaled minute of 0.5 s); the
    client's (4 a minute) keeps a load of both resources free of 429, though each bot asks
    several times the server's minute limit."""
    limit = RateLimit(per_minute=6, per_hour=600, seconds_per_minute=0.5)
    recent = [s for s in arriving if NOW - timedelta(days=3) <= s.start <= NOW]
    with SandboxServer(recent, apps=make_apps(), now=NOW, page_cap=PAGE_CAP, rate_limit=limit) as server:
        loader = Loader(server, tmp_path)
        summary = loader.run(
            resources=BOTH,
            start_date=(NOW - timedelta(days=3)).isoformat(),
            window_hours=24,
            requests_per_minute=4,
            requests_per_hour=400,
            seconds_per_minute=0.5,
        )
        assert_messages_match(loader, server)
        assert summary.rate_limited == 0 and all(r.status != 429 for r in server.requests)
        for bot in BOTS:
            made = [r.path for r in server.requests if r.bot_id == bot]
            assert sum(p.endswith("getMessagesV2") for p in made) >= 3 * limit.per_minute
            assert sum(p.endswith("getSessions") for p in made) >= 1


def test_one_budget_per_bot_counts_both_apis(arriving: list, tmp_path: Path) -> None:
    """Two getSessions requests spend a budget of two a (scaled, 1 s) minute: the bot's next
    request, a getMessagesV2, waits for the minute to pass. A budget per API would send it at once."""
    recent = [s for s in arriving if NOW - timedelta(days=1) <= s.start <= NOW]
    with SandboxServer(recent, apps=make_apps(), now=NOW) as server:
        options = resolve_options(
            host=server.url,
            bot_ids=BOTS[:1],
            requests_per_minute=2,
            requests_per_hour=100,
            seconds_per_minute=1.0,
            credentials=KoreCredentials(client_id=CLIENT_ID, client_secret=CLIENT_SECRET),
        )
        window = Window(NOW - timedelta(hours=6), NOW)
        with options.open_client(str(tmp_path)) as client:
            for skip in (0, 1):
                get_sessions_page(client, BOTS[0], window, PageRequest(0, None, skip, 1))
            began = time.monotonic()
            get_messages_page(client, BOTS[0], window, PageRequest(0, "rtm", 0, 1))
            waited = time.monotonic() - began
        assert waited >= 0.8, f"the messages request went out after {waited:.2f} s, within the spent minute"


def message_page(ids: list[str], more: bool, total: int) -> Page:
    """A getMessagesV2 answer with bot messages of these ids in the middle of the window."""
    created = format_api_timestamp(NOW - timedelta(hours=2))
    records = [{"_id": i, "sessionId": "s" * 24, "createdOn": created, "type": "outgoing"} for i in ids]
    return Page(records=records, more_available=more, total=total, invalid_ids=[])


def message_ids(rows: Rows) -> list[str]:
    """The ids of an answer's new messages, built column by column or row by row."""
    if isinstance(rows, list):
        return [row["message_id"] for row in rows]
    return rows.column("message_id").to_pylist()


def test_a_channel_s_window_whose_messages_shifted_while_paged_is_read_again() -> None:
    """Newest first, paged by `skip`: a message arriving while a window is paged pushes one across
    the page edge (`b` again, `c` never seen): the window, in its channel, is read again until
    its distinct messages reach the total; the other channel's window is complete on its own,
    and the cursor moves only once both are."""
    options = KoreSessionsOptions(
        host="http://127.0.0.1:9",
        bot_ids=[BOTS[0]],
        start_date=NOW - timedelta(hours=3),
        messages_page_size=2,
        window_hours=24,
    )
    config = build_run_config(options, clock=lambda: NOW)
    seen = SessionsSeen({"rtm": NOW - timedelta(hours=3), "msteams": NOW - timedelta(hours=3)})
    state: dict[str, Any] = {}
    extractor = MessagesExtractor(None, BOTS[0], state, config, SourceRun(), PageCap(2), seen)  # type: ignore[arg-type]
    first = {request.variant: request for request in extractor.plan()}
    assert sorted(first) == ["msteams", "rtm"], "the first window in each channel"
    _, done = extractor.handle(first["msteams"], message_page(["x"], more=False, total=1))
    assert done == [] and "cursor" not in state, "rtm is not complete yet"
    rows, follow = extractor.handle(first["rtm"], message_page(["a", "b"], more=True, total=4))
    assert message_ids(rows) == ["a", "b"] and [f.skip for f in follow] == [2]
    _, again = extractor.handle(follow[0], message_page(["b", "d"], more=False, total=4))
    assert [(r.skip, r.variant) for r in again] == [(0, "rtm")], "c was pushed past: read again"
    rows, follow = extractor.handle(again[0], message_page(["n", "a"], more=True, total=4))
    rows2, done = extractor.handle(follow[0], message_page(["b", "c"], more=False, total=4))
    assert sorted(message_ids(rows) + message_ids(rows2)) == ["c", "n"] and done == []
    assert state["cursor"], "both channels complete: the cursor moved"


def messages_asked(server: SandboxServer, count: int) -> Callable[[], bool]:
    """Event: `count` more getMessagesV2 requests reached the sandbox than it had logged so far."""

    def asked() -> list[Any]:
        return [r for r in server.requests if r.path.endswith("getMessagesV2")]

    target = len(asked()) + count
    return lambda: len(asked()) >= target


def test_a_load_killed_while_it_fetches_or_loads_messages_loses_and_doubles_none(
    live_server: SandboxServer, tmp_path: Path
) -> None:
    """SIGKILL mid-way through the messages' extract and while a package is being loaded, in a
    backfill of a package a day: the next load ends with every message the server shows, once."""
    live_server.set_latency(0.03)
    env = cli_env(
        live_server,
        tmp_path,
        **PACKAGE_A_DAY,
        SOURCES__KORE_SESSIONS__RESOURCES="sessions,messages",
        SOURCES__KORE_SESSIONS__REQUESTS_PER_MINUTE="100000",
    )
    for point in (lambda: messages_asked(live_server, 12), lambda: load_started(tmp_path)):
        killed = kill_when(["load", "--quiet", "--no-models"], env, tmp_path, live_server, point())
        assert killed.returncode == -signal.SIGKILL and killed.requests_before_kill > 0
    live_server.set_latency(0)
    result = kore(["load", "--no-models"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    with duckdb.connect(str(tmp_path / DATABASE), read_only=True) as con:
        ids = [row[0] for row in con.sql("SELECT message_id FROM kore_sessions.messages").fetchall()]
    assert len(ids) == len(set(ids)), "no message twice"
    assert sorted(ids) == sorted(v["_id"] for v in live_server.visible_messages(version=2))
