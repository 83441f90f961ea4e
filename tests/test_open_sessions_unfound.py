"""No open session is abandoned silently: a lookup miss is read in its window, and one found in
neither place stays in refresh for a bounded time, named in every summary, then is given up."""

from __future__ import annotations

from datetime import timedelta

from kore_sessions.sandbox import SandboxServer
from kore_sessions.source.sessions.spec import UNRESOLVED_MIN_MISSES, UNRESOLVED_OPEN_PATIENCE

from .conftest import NOW, Loader, api_time, assert_matches_sandbox

# The lookback of these runs: sessions open before it are refreshed by id, not by the window.
LOOKBACK_MINUTES = 30


def open_outside_the_lookback(loader: Loader, server: SandboxServer) -> list[str]:
    """Sessions the state keeps open that started over an hour before the sandbox's now."""
    state = loader.state()
    open_ids = {s for bot in state["bots"].values() for s in bot["open_sessions"]}
    views = {v["sessionId"]: v for v in server.visible_sessions()}
    return sorted(i for i in open_ids if api_time(views[i]["start_time"]) < NOW - timedelta(hours=1))


def point_windows(server: SandboxServer) -> int:
    """Requests for a two-second window: sessions read where they started."""
    return sum(
        1
        for record in server.requests
        if record.body
        and "dateFrom" in record.body
        and api_time(record.body["dateTo"]) - api_time(record.body["dateFrom"]) <= timedelta(seconds=2)
    )


def test_open_sessions_the_lookup_passes_over_are_read_in_their_window(
    loader: Loader, server: SandboxServer
) -> None:
    """The lookup neither returns nor calls invalid some open sessions (an index that lags): the
    run reads each where it started instead, and the warehouse ends up to date."""
    loader.run()
    passed_over = open_outside_the_lookback(loader, server)[:3]
    assert passed_over
    server.hide_sessions(from_lookup=passed_over)
    server.advance(timedelta(hours=3))
    server.clear_requests()
    summary = loader.run(lookback_minutes=LOOKBACK_MINUTES)
    assert point_windows(server) >= len(passed_over)
    assert_matches_sandbox(loader, server)
    assert not summary.sessions.unresolved and not summary.sessions.given_up


def test_an_open_session_found_nowhere_is_kept_named_then_given_up(
    loader: Loader, server: SandboxServer
) -> None:
    """An open session that neither the lookup nor its window shows any more: every run names it
    in the summary and keeps it in refresh; once it has been missed for the patience and at
    least the minimum number of runs, it is given up (named once more), and left as loaded."""
    loader.run()
    lost = open_outside_the_lookback(loader, server)[0]
    server.hide_sessions(from_lookup=[lost], from_listing=[lost])
    step = UNRESOLVED_OPEN_PATIENCE / (UNRESOLVED_MIN_MISSES - 1)
    for run in range(1, UNRESOLVED_MIN_MISSES + 1):
        server.advance(step)
        summary = loader.run(lookback_minutes=LOOKBACK_MINUTES)
        lines = "\n".join(summary.lines())
        kept = any(lost in bot["open_sessions"] for bot in loader.state()["bots"].values())
        if run < UNRESOLVED_MIN_MISSES:
            assert any(lost in ids for ids in summary.sessions.unresolved.values()), f"run {run}"
            assert "found neither by id nor in their window" in lines and lost in lines
            assert kept, f"run {run}: still refreshed"
        else:
            assert any(lost in ids for ids in summary.sessions.given_up.values())
            assert "no longer refreshed" in lines and lost in lines
            assert not kept
    active = loader.query(f"SELECT session_status FROM sessions WHERE session_id = '{lost}'")
    assert active == [("active",)], "left as loaded: only invalidSessions deletes"


def test_an_unresolved_session_that_shows_up_again_is_refreshed_and_no_longer_named(
    loader: Loader, server: SandboxServer
) -> None:
    """Missed once, then the API shows it again: the next run refreshes it, and the mark goes."""
    loader.run()
    lost = open_outside_the_lookback(loader, server)[0]
    server.hide_sessions(from_lookup=[lost], from_listing=[lost])
    server.advance(timedelta(hours=1))
    assert loader.run(lookback_minutes=LOOKBACK_MINUTES).sessions.unresolved
    server.hide_sessions()
    server.advance(timedelta(hours=3))
    summary = loader.run(lookback_minutes=LOOKBACK_MINUTES)
    assert not summary.sessions.unresolved
    assert all(lost not in bot.get("unresolved", {}) for bot in loader.state()["bots"].values())
    assert_matches_sandbox(loader, server)
