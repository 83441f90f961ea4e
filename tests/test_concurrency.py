"""Concurrent fetching: fewest requests with a learned page cap, limits kept, state exact."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from math import ceil
from pathlib import Path

import pytest
from kore_sessions.sandbox import GeneratedSession, SandboxServer
from kore_sessions.sandbox.server import RateLimit
from kore_sessions.source.api.answers import Page
from kore_sessions.source.api.paging import MAX_WINDOW_ATTEMPTS
from kore_sessions.source.api.run import SourceRun
from kore_sessions.source.api.timestamps import format_api_timestamp
from kore_sessions.source.config import build_run_config
from kore_sessions.source.options import KoreSessionsOptions
from kore_sessions.source.sessions.extract import BotExtractor

from .conftest import BOTS, NOW, PAGE_CAP, Loader, api_time, assert_matches_sandbox, make_apps

# The sandbox clock of these tests: a day after the history's busy end, nothing still open.
LATER = NOW + timedelta(days=1)


def requests_per_window(server: SandboxServer) -> dict[tuple[str, str, str], int]:
    """getSessions calls per (bot path, dateFrom, dateTo)."""
    counts: dict[tuple[str, str, str], int] = defaultdict(int)
    for record in server.requests:
        if record.body and "dateFrom" in record.body:
            counts[(record.path, record.body["dateFrom"], record.body["dateTo"])] += 1
    return counts


def sessions_in(server: SandboxServer, bot: str, date_from: str, date_to: str) -> int:
    """Sessions of a bot that started in [date_from, date_to], as the API counts them."""
    low, high = api_time(date_from), api_time(date_to)
    return sum(1 for s in server.visible_sessions(bot) if low <= api_time(s["start_time"]) <= high)


@pytest.mark.parametrize("max_in_flight", [1, 4])
def test_backfill_makes_exactly_the_minimum_requests(
    history: list[GeneratedSession], tmp_path: Path, max_in_flight: int
) -> None:
    """Asking 1,000 a page from a server capped at 40: the cap is learned and every window
    takes exactly the pages its sessions need, planned in parallel from the first page's total."""
    with SandboxServer(history, apps=make_apps(), now=LATER, page_cap=PAGE_CAP) as server:
        loader = Loader(server, tmp_path)
        loader.run(window_hours=48, max_in_flight=max_in_flight, page_size=1000)
        assert_matches_sandbox(loader, server)
        per_window = requests_per_window(server)
        assert len(per_window) >= 2 * 10, "ten windows a bot"
        minimum = 0
        for (path, date_from, date_to), made in per_window.items():
            bot = next(b for b in BOTS if b in path)
            needed = max(1, ceil(sessions_in(server, bot, date_from, date_to) / PAGE_CAP))
            assert made == needed, f"{bot} {date_from}..{date_to}: {made} requests for {needed} pages"
            minimum += needed
        assert sum(per_window.values()) == minimum
        limits = {r.body.get("limit") for r in server.requests if r.body and "limit" in r.body}
        assert limits == {1000, PAGE_CAP}, "asks the page size until the cap is known, then the cap"


def test_windows_of_a_bot_overlap_in_flight(history: list[GeneratedSession], tmp_path: Path) -> None:
    """With answers taking 0.3 s, a bot's windows are asked for before earlier ones answered,
    never more than max_in_flight at once; the data is still exactly the server's."""
    with SandboxServer(history, apps=make_apps(), now=LATER, page_cap=500) as server:
        server.set_latency(0.3)
        loader = Loader(server, tmp_path)
        loader.run(window_hours=48, max_in_flight=3)
        assert_matches_sandbox(loader, server)
        for bot in BOTS:
            arrivals = sorted(r.at for r in server.requests if bot in r.path)
            assert len(arrivals) >= 10
            # a request arriving less than the latency after another one means both were in flight
            overlapping = max(
                sum(1 for other in arrivals if 0 <= (other - first).total_seconds() < 0.25)
                for first in arrivals
            )
            assert 2 <= overlapping <= 3, f"{bot}: {overlapping} requests in flight at once"


def test_concurrent_requests_keep_the_rate_limit(history: list[GeneratedSession], tmp_path: Path) -> None:
    """Client and server both at 8 requests a bot, four in flight: over 2.1 s on the client
    (a scaled minute of 2 s and its 5% margin) and 1.5 s on the server, so no 429 unless a
    request's way to the server is delayed by 0.6 s more than another's; a client whose
    concurrent requests overspent its budget would meet the server's limit. Nothing is lost."""
    limit = RateLimit(per_minute=8, per_hour=1000, seconds_per_minute=1.5)
    with SandboxServer(history, apps=make_apps(), now=LATER, page_cap=100, rate_limit=limit) as server:
        loader = Loader(server, tmp_path)
        limits = {"requests_per_minute": 8, "requests_per_hour": 1000, "seconds_per_minute": 2.0}
        summary = loader.run(window_hours=48, max_in_flight=4, **limits)
        assert_matches_sandbox(loader, server)
        assert summary.rate_limited == 0
        assert [r for r in server.requests if r.status == 429] == []
        for bot in BOTS:
            made = sum(1 for r in server.requests if r.bot_id == bot)
            assert made > limit.per_minute, f"{bot}: too few requests ({made}) to reach the limit"


def test_a_failing_window_leaves_the_state_where_it_was(
    history: list[GeneratedSession], tmp_path: Path
) -> None:
    """A window that keeps failing fails the run with nothing committed; the next run completes."""
    with SandboxServer(history, apps=make_apps(), now=LATER, page_cap=100) as server:
        loader = Loader(server, tmp_path)
        server.set_fault_rates({"500": 1.0})
        with pytest.raises(Exception, match="gave up"):
            loader.run(window_hours=48, max_in_flight=4, max_attempts=2)
        assert server.requests and all(r.fault == "500" for r in server.requests), "every answer failed"
        assert loader.state() == {}
        server.set_fault_rates({})
        loader.run(window_hours=48, max_in_flight=4)
        assert_matches_sandbox(loader, server)


def test_a_long_backfill_is_loaded_in_several_packages(
    history: list[GeneratedSession], tmp_path: Path
) -> None:
    """Eleven windows a bot, two a package: six packages, each committed with its state, and
    in the end exactly the sandbox; the next run needs one package again."""
    with SandboxServer(history, apps=make_apps(), now=LATER, page_cap=PAGE_CAP) as server:
        loader = Loader(server, tmp_path)
        summary = loader.run(window_hours=48, windows_per_package=2, appended_windows_per_package=2)
        assert summary.packages == 6
        assert_matches_sandbox(loader, server)
        loads = loader.query("SELECT COUNT(*) FROM _dlt_loads WHERE status = 0")
        assert loads == [(6,)]
        again = loader.run(window_hours=48, windows_per_package=2, appended_windows_per_package=2)
        assert again.packages == 1


def _page(ids: list[str], more: bool, total: int) -> Page:
    """A getSessions answer with sessions of these ids in the middle of the window."""
    start = format_api_timestamp(NOW - timedelta(hours=2))
    sessions = [{"sessionId": i, "start_time": start, "sessionStatus": "closed"} for i in ids]
    return Page(records=sessions, more_available=more, total=total, invalid_ids=[])


def one_window_extractor(page_size: int) -> BotExtractor:
    """A bot's extractor for one window of the last three hours (answers are fed by hand)."""
    options = KoreSessionsOptions(
        host="http://127.0.0.1:9",
        bot_ids=[BOTS[0]],
        start_date=NOW - timedelta(hours=3),
        page_size=page_size,
        window_hours=24,
    )
    config = build_run_config(options, clock=lambda: NOW)
    return BotExtractor(None, BOTS[0], {}, config, SourceRun())  # type: ignore[arg-type]


def test_a_window_that_moved_while_paged_is_read_again() -> None:
    """Pages that reached the window's total yet held fewer distinct sessions (a session
    shifted into the next page) make the window be read again; a short total does not."""
    extractor = one_window_extractor(page_size=2)
    (first,) = extractor.plan()
    rows, follow = extractor.handle(first, _page(["a", "b"], more=True, total=3))
    assert [r["session_id"] for r in rows] == ["a", "b"] and [f.skip for f in follow] == [2]
    rows, again = extractor.handle(follow[0], _page(["b"], more=False, total=3))
    assert rows == [] and [(r.skip, r.window_index) for r in again] == [(0, 0)], "read again"
    rows, follow = extractor.handle(again[0], _page(["c", "a"], more=True, total=3))
    assert [r["session_id"] for r in rows] == ["c"]
    rows, done = extractor.handle(follow[0], _page(["b"], more=False, total=3))
    assert rows == [] and done == [] and extractor.state.state["cursor"]


def test_a_total_the_paging_never_reaches_stops_the_bot_there_naming_the_window() -> None:
    """A server whose pages never reach the window's `total`: the gap is asked for, the window
    is read again, and after the last reading the run records the shortfall (the bot, the window
    and the counts, what the run fails on); the cursor has not moved past the window, and the
    bot takes no further package in this run."""
    extractor = one_window_extractor(page_size=5)
    (request,) = extractor.plan()
    for reading in range(1, MAX_WINDOW_ATTEMPTS + 1):
        rows, follow = extractor.handle(request, _page(["a", "b"], more=False, total=50))
        assert len(rows) == (2 if reading == 1 else 0)
        assert [f.skip for f in follow] == [2], "the gap after the short page is asked for"
        rows, again = extractor.handle(follow[0], _page([], more=False, total=50))
        if reading == MAX_WINDOW_ATTEMPTS:
            assert again == []
            break
        assert rows == [] and [(r.skip, r.window_index) for r in again] == [(0, 0)], "read again"
        request = again[0]
    (message,) = extractor.run.short_windows
    assert BOTS[0] in message and "2 of the 50 sessions" in message and "3 readings" in message
    assert str(extractor.windows[0]) in message
    assert "cursor" not in extractor.state.state, "the cursor never moved past the window"
    assert not extractor.state.bot.more_to_fetch


def test_a_page_cut_short_in_the_middle_is_filled_without_reading_the_window_again() -> None:
    """Once the cap (2) is known, the window's pages are planned from its total (6); a planned
    page that comes back with one session instead of two is followed at once by a request for
    the session it left out, and the window completes with every session in one reading."""
    extractor = one_window_extractor(page_size=2)
    extractor.cap.learned = 2
    (first,) = extractor.plan()
    rows, planned = extractor.handle(first, _page(["a", "b"], more=True, total=6))
    assert [r.skip for r in planned] == [2, 4]
    rows, gap = extractor.handle(planned[0], _page(["c"], more=True, total=6))
    assert [r["session_id"] for r in rows] == ["c"] and [r.skip for r in gap] == [3]
    rows, none_yet = extractor.handle(planned[1], _page(["e", "f"], more=False, total=6))
    assert none_yet == []
    rows, done = extractor.handle(gap[0], _page(["d", "e"], more=True, total=6))
    assert [r["session_id"] for r in rows] == ["d"] and done == []
    assert extractor.state.state["cursor"], "complete in one reading: the cursor moved"


def test_the_readings_of_a_window_count_together() -> None:
    """Sessions that shifted across page edges differ between readings; what every reading
    gave counts towards the total, so a window read twice is complete once both together
    hold every session."""
    extractor = one_window_extractor(page_size=2)
    (first,) = extractor.plan()
    _, follow = extractor.handle(first, _page(["a", "b"], more=True, total=4))
    _, again = extractor.handle(follow[0], _page(["b", "c"], more=False, total=4))
    assert [(r.skip, r.window_index) for r in again] == [(0, 0)], "d was missed: read again"
    _, follow = extractor.handle(again[0], _page(["d", "a"], more=True, total=4))
    _, done = extractor.handle(follow[0], _page(["a", "b"], more=False, total=4))
    assert done == [] and extractor.state.state["cursor"], "a, b, c, d over two readings: complete"
