"""The server's answers, not the loader's clock, decide what is loaded.

The sandbox and the loader each have a clock of their own here: the server lags the loader by
hours or leads it by minutes, both move on between runs (at different paces), and sessions
appear as the server's clock moves. The warehouse is compared with the server session by
session after every run.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kore_sessions.sandbox import GeneratedSession, SandboxServer, generate_sessions
from kore_sessions.source.api.rules import CLOCK_SKEW_ALLOWANCE
from kore_sessions.source.api.timestamps import format_api_timestamp
from kore_sessions.source.api.windows import plan_windows
from kore_sessions.source.sessions import extract

from .conftest import BOTS, NOW, PAGE_CAP, Loader, api_time, assert_matches_sandbox, make_apps, tag_text

# The sandbox holds ten days before NOW and twelve hours after it, which appear as it moves.
HISTORY_FROM = NOW - timedelta(days=10)
# Two-day windows, two a package, whether it appends or merges.
TWO_A_PACKAGE = {"window_hours": 48, "windows_per_package": 2, "appended_windows_per_package": 2}
# A bot of the account that has never had a session.
SILENT_BOT = "st-cccccccc-0000-4000-8000-000000000003"


class ManualClock:
    """The loader's clock: it stands still until told to move."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture(scope="module")
def arriving() -> list[GeneratedSession]:
    """Sessions of two bots up to NOW, and more arriving over the next twelve hours."""
    return generate_sessions(BOTS, HISTORY_FROM, NOW + timedelta(hours=12), per_day=150, seed=31)


def newest_start(server: SandboxServer, bot: str, until: datetime | None = None) -> datetime:
    """The newest start_time the server shows for a bot (that started by `until`, if given)."""
    starts = (api_time(view["start_time"]) for view in server.visible_sessions(bot))
    return max(start for start in starts if until is None or start <= until)


@pytest.mark.parametrize(
    ("loader_ahead", "server_step", "loader_step"),
    [
        (timedelta(hours=7), timedelta(minutes=100), timedelta(minutes=95)),  # server lags by hours
        (timedelta(minutes=-10), timedelta(minutes=100), timedelta(minutes=97)),  # leads, 10 to 22 min
        (timedelta(hours=-3), timedelta(minutes=100), timedelta(minutes=100)),  # leads by hours
    ],
    ids=["server-lags-7h", "server-leads-minutes", "server-leads-3h"],
)
def test_runs_lose_nothing_whichever_clock_is_ahead(
    arriving: list[GeneratedSession],
    tmp_path: Path,
    loader_ahead: timedelta,
    server_step: timedelta,
    loader_step: timedelta,
) -> None:
    with SandboxServer(arriving, apps=make_apps(), now=NOW, page_cap=PAGE_CAP) as server:
        loader = Loader(server, tmp_path)
        clock = ManualClock(NOW + loader_ahead)
        loader.clock = clock
        loaded_counts = []
        for _ in range(5):
            loader.run(start_date=HISTORY_FROM.isoformat())
            if server.now <= clock() + CLOCK_SKEW_ALLOWANCE:
                assert_matches_sandbox(loader, server)
            else:  # what started beyond the loader's reach is not lost, only not yet due
                assert_matches_sandbox(loader, server, until=clock() + CLOCK_SKEW_ALLOWANCE)
            for bot in BOTS:
                cursor = api_time(loader.state()["bots"][bot]["cursor"])
                reach = clock() + CLOCK_SKEW_ALLOWANCE
                assert cursor == newest_start(server, bot, reach), "the cursor stands where the data is"
            loaded_counts.append(len(loader.sessions()))
            server.advance(server_step)
            clock.advance(loader_step)
        assert loaded_counts == sorted(loaded_counts) and loaded_counts[-1] > loaded_counts[0]


def assert_loaded_within_reach(loader: Loader, server: SandboxServer, clock: ManualClock) -> None:
    """The warehouse holds what the server shows within the loader's reach (its clock and the
    skew allowed), and each bot's cursor stands at the newest start the server shows there."""
    reach = clock() + CLOCK_SKEW_ALLOWANCE
    assert_matches_sandbox(loader, server, until=min(server.now, reach))
    for bot in BOTS:
        cursor = api_time(loader.state()["bots"][bot]["cursor"])
        assert cursor == newest_start(server, bot, reach), "the cursor stands where the data is"


@pytest.mark.parametrize(
    "loader_ahead", [timedelta(hours=7), timedelta(hours=-3)], ids=["server-lags-7h", "server-leads-3h"]
)
def test_merged_runs_cut_to_their_sessions_lose_nothing_whichever_clock_is_ahead(
    arriving: list[GeneratedSession],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    loader_ahead: timedelta,
) -> None:
    """Every run after the first backfill merges, and its packages are cut after each bot's
    first window to about SESSIONS_PER_MERGED_PACKAGE (here 4: a window a bot), with hour-long
    windows after the first backfill: runs go on in several packages, from where the last
    one's windows ended, while the server's clock lags or leads the loader's and sessions keep
    arriving."""
    monkeypatch.setattr(extract, "SESSIONS_PER_MERGED_PACKAGE", 4)
    windows = {"start_date": HISTORY_FROM.isoformat(), "window_hours": 1, "windows_per_package": 3}
    with SandboxServer(arriving, apps=make_apps(), now=NOW, page_cap=PAGE_CAP) as server:
        loader = Loader(server, tmp_path)
        clock = ManualClock(NOW + loader_ahead)
        loader.clock = clock
        loader.run(start_date=HISTORY_FROM.isoformat())  # the first backfill, in 6-day windows
        packages = []
        for _ in range(3):
            server.advance(timedelta(minutes=100))
            clock.advance(timedelta(minutes=100))
            packages.append(loader.run(**windows).packages)
            assert loader.run_record.appending == {"sessions": False}
            assert_loaded_within_reach(loader, server, clock)
        assert max(packages) > 1, f"no merged run was cut into packages: {packages}"


@pytest.mark.parametrize(
    "loader_ahead", [timedelta(hours=7), timedelta(hours=-3)], ids=["server-lags-7h", "server-leads-3h"]
)
def test_a_first_backfill_cut_to_its_sessions_loses_nothing_whichever_clock_is_ahead(
    arriving: list[GeneratedSession],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    loader_ahead: timedelta,
) -> None:
    """A first backfill appends, in packages of up to `appended_windows_per_package` windows cut
    after each bot's first window to about SESSIONS_PER_APPENDED_PACKAGE (here 600: two days'
    windows a bot), while the server's clock lags or leads the loader's; then sessions arrive and
    a run merges them. Each time the warehouse holds what the server shows within the loader's
    reach, and each cursor stands at the newest start the server shows there."""
    monkeypatch.setattr(extract, "SESSIONS_PER_APPENDED_PACKAGE", 600)
    days = {"start_date": HISTORY_FROM.isoformat(), "window_hours": 24, "windows_per_package": 1}
    with SandboxServer(arriving, apps=make_apps(), now=NOW, page_cap=PAGE_CAP) as server:
        loader = Loader(server, tmp_path)
        clock = ManualClock(NOW + loader_ahead)
        loader.clock = clock
        for appending in (True, False):
            summary = loader.run(**days)
            assert loader.run_record.appending == {"sessions": appending}
            assert_loaded_within_reach(loader, server, clock)
            if appending:
                assert 4 <= summary.packages <= 8, "the first backfill was cut to about two windows a bot"
            server.advance(timedelta(minutes=200))
            clock.advance(timedelta(minutes=200))


@pytest.mark.parametrize(
    "loader_ahead", [timedelta(hours=7), timedelta(hours=-3)], ids=["server-lags-7h", "server-leads-3h"]
)
def test_a_short_tail_of_windows_goes_in_the_last_package_whichever_clock_is_ahead(
    arriving: list[GeneratedSession], tmp_path: Path, loader_ahead: timedelta
) -> None:
    """From eight days and six hours back, in two-day windows two a package: four whole windows
    and a tail to the loader's reach (14 h with the server 7 h behind, 4 h with it 3 h ahead),
    under a quarter of a package's four days, so it goes in the second package rather than a
    third. Then sessions arrive and a run merges them. Each time the warehouse holds what the
    server shows within the loader's reach, and each cursor stands at the newest start there."""
    start_date = NOW - timedelta(days=8, hours=6)
    with SandboxServer(arriving, apps=make_apps(), now=NOW, page_cap=PAGE_CAP) as server:
        loader = Loader(server, tmp_path)
        clock = ManualClock(NOW + loader_ahead)
        loader.clock = clock
        first = loader.run(start_date=start_date.isoformat(), **TWO_A_PACKAGE)
        assert loader.run_record.appending == {"sessions": True}
        assert first.packages == 2
        assert first.run.totals.windows == 5 * len(BOTS)
        assert_ids_from_start_within_reach(loader, server, clock, start_date)
        server.advance(timedelta(minutes=100))
        clock.advance(timedelta(minutes=100))
        loader.run(start_date=start_date.isoformat(), **TWO_A_PACKAGE)
        assert loader.run_record.appending == {"sessions": False}
        assert_ids_from_start_within_reach(loader, server, clock, start_date)


def assert_ids_from_start_within_reach(
    loader: Loader, server: SandboxServer, clock: ManualClock, start_date: datetime
) -> None:
    """The warehouse holds each session the server shows from `start_date` to the loader's reach
    once, and nothing else; each bot's cursor stands at the newest start the server shows there."""
    reach = clock() + CLOCK_SKEW_ALLOWANCE
    shown = [v for v in server.visible_sessions() if start_date <= api_time(v["start_time"]) <= reach]
    assert sorted(loader.sessions()) == sorted(view["sessionId"] for view in shown)
    assert loader.query("SELECT COUNT(*) FROM sessions") == [(len(shown),)]
    for bot in BOTS:
        cursor = api_time(loader.state()["bots"][bot]["cursor"])
        assert cursor == newest_start(server, bot, reach), "the cursor stands where the data is"


def test_a_bot_quiet_for_weeks_costs_only_the_empty_windows_since_its_newest_session(
    arriving: list[GeneratedSession], tmp_path: Path
) -> None:
    quiet_until = NOW - timedelta(days=8)
    sessions = [s for s in arriving if s.bot_id == BOTS[0] or s.start < quiet_until]
    with SandboxServer(sessions, apps=make_apps(), now=NOW, page_cap=PAGE_CAP) as server:
        loader = Loader(server, tmp_path)
        loader.clock = ManualClock(NOW + timedelta(hours=2))
        loader.run(start_date=HISTORY_FROM.isoformat(), window_hours=48, windows_per_package=10)
        cursor = api_time(loader.state()["bots"][BOTS[1]]["cursor"])
        assert cursor == newest_start(server, BOTS[1]) < quiet_until
        server.clear_requests()
        loader.run(start_date=HISTORY_FROM.isoformat(), window_hours=48, windows_per_package=10)
        asked = [r.body for r in server.requests if r.bot_id == BOTS[1]]
        expected = plan_windows(
            cursor - timedelta(minutes=60), loader.clock() + CLOCK_SKEW_ALLOWANCE, timedelta(hours=48)
        )
        assert len(asked) == len(expected) == 5, "one request per empty window since its newest session"
        assert sorted(api_time(body["dateFrom"]) for body in asked) == [w.start for w in expected]
        assert_matches_sandbox(loader, server)


def test_pre_9_sessions_without_status_stay_refreshed_while_the_server_shows_them_open(
    arriving: list[GeneratedSession], tmp_path: Path
) -> None:
    """Their quiet period is measured on the server's clock: with the loader nine hours ahead,
    its own clock would have called every open session quiet at once, and left it stale."""
    with SandboxServer(arriving, apps=make_apps(), now=NOW, page_cap=PAGE_CAP, legacy=True) as server:
        loader = Loader(server, tmp_path)
        loader.clock = ManualClock(NOW + timedelta(hours=9))
        loader.run(start_date=(NOW - timedelta(days=2)).isoformat(), lookback_minutes=10)
        ongoing = {v["sessionId"] for v in server.visible_sessions() if api_time(v["end_time"]) == server.now}
        assert ongoing, "sessions still going on at the server's now"
        assert ongoing <= set().union(*(bot["open_sessions"] for bot in loader.state()["bots"].values()))
        server.advance(timedelta(hours=4))
        loader.run(start_date=(NOW - timedelta(days=2)).isoformat(), lookback_minutes=10)
        rows = loader.sessions()
        for view in server.visible_sessions():
            if api_time(view["start_time"]) >= NOW - timedelta(days=2):
                row = rows[view["sessionId"]]
                assert (row[5].astimezone(UTC), row[10]) == (
                    api_time(view["end_time"]),
                    view["noOfMessagesExchanged"],
                ), view["sessionId"]


@pytest.mark.parametrize(
    ("loader_ahead", "age_on_server"),
    [(timedelta(hours=-20), timedelta(days=14, hours=5)), (timedelta(days=2), timedelta(days=12, hours=12))],
    ids=["server-leads-20h", "server-lags-2d"],
)
def test_an_open_session_near_the_lookups_14_days_keeps_its_session_tags(
    arriving: list[GeneratedSession], tmp_path: Path, loader_ahead: timedelta, age_on_server: timedelta
) -> None:
    """The id lookup blanks session tags of sessions older than 14 days on the server's clock.
    Whichever clock is ahead (by up to a day), a long open session near that age is refreshed
    the way that keeps them."""
    voice = next(s for s in arriving if s.session_tags and NOW - s.start > timedelta(days=9))
    started = NOW - age_on_server
    long_open = replace(voice, start=started, visible_at=started, end=NOW + timedelta(days=2))
    sessions = [s for s in arriving if s.session_id != voice.session_id] + [long_open]
    start_date = (NOW - timedelta(days=15)).isoformat()
    with SandboxServer(sessions, apps=make_apps(), now=NOW - timedelta(hours=2), page_cap=PAGE_CAP) as server:
        loader = Loader(server, tmp_path)
        clock = ManualClock(server.now + loader_ahead)
        loader.clock = clock
        loader.run(start_date=start_date)
        assert voice.session_id in loader.state()["bots"][voice.bot_id]["open_sessions"]
        server.advance(timedelta(hours=2))
        clock.advance(timedelta(hours=2))
        loader.run(start_date=start_date)
        view = next(v for v in server.visible_sessions() if v["sessionId"] == voice.session_id)
        wanted = {(tag["name"], tag_text(tag["value"])) for tag in view["tags"]["sessionTags"]}
        assert wanted and loader.tags("sessions__session_tags")[voice.session_id] == wanted
        assert loader.sessions()[voice.session_id][10] == view["noOfMessagesExchanged"]


def test_a_bot_that_never_had_a_session_is_not_walked_from_start_date_again(
    arriving: list[GeneratedSession], tmp_path: Path
) -> None:
    """Its cursor goes where the server's answers (for the other bots) show its clock."""
    apps = make_apps()
    with SandboxServer(arriving, apps=apps, now=NOW, page_cap=PAGE_CAP, bot_ids=[SILENT_BOT]) as server:
        loader = Loader(server, tmp_path)
        loader.clock = ManualClock(NOW + timedelta(hours=5))
        bots = [*BOTS, SILENT_BOT]
        loader.run(bot_ids=bots, start_date=HISTORY_FROM.isoformat(), windows_per_package=10)
        state = loader.state()["bots"]
        newest = max(api_time(state[bot]["cursor"]) for bot in BOTS)
        assert api_time(state[SILENT_BOT]["cursor"]) == api_time(state[SILENT_BOT]["server_seen"]) >= newest
        server.clear_requests()
        loader.run(bot_ids=bots, start_date=HISTORY_FROM.isoformat(), windows_per_package=10)
        assert len([r for r in server.requests if r.bot_id == SILENT_BOT]) == 1, "one window, not ten days"
        assert_matches_sandbox(loader, server)


def test_a_source_run_again_is_a_new_run(arriving: list[GeneratedSession], tmp_path: Path) -> None:
    """The same source object loaded twice (a long-lived worker) reads again the second time."""
    from kore_sessions.runtime.pipeline import load_sessions

    with SandboxServer(arriving, apps=make_apps(), now=NOW, page_cap=PAGE_CAP) as server:
        loader = Loader(server, tmp_path)
        source = loader.source(start_date=HISTORY_FROM.isoformat(), **TWO_A_PACKAGE)
        load_sessions(loader.pipeline, source, loader.run_record)
        server.advance(timedelta(hours=3))
        again = load_sessions(loader.pipeline, source, loader.run_record)
        assert again.sessions_new and again.sessions_new > 0
        assert again.packages == 1
        assert_matches_sandbox(loader, server)


def test_a_cursor_from_before_it_followed_the_data_is_read_again_one_window_behind() -> None:
    """State of the first version kept the loader's clock as the cursor (maybe ahead of the
    server); its first run now reads one window behind it, and the cursor follows the data."""
    from kore_sessions.source.api.run import SourceRun
    from kore_sessions.source.config import build_run_config
    from kore_sessions.source.options import KoreSessionsOptions
    from kore_sessions.source.sessions.extract import BotExtractor

    options = KoreSessionsOptions(
        host="http://127.0.0.1:9", bot_ids=[BOTS[0]], start_date=HISTORY_FROM, page_size=100, window_hours=48
    )
    config = build_run_config(options, clock=lambda: NOW)
    old_cursor = NOW - timedelta(hours=1)
    state = {"cursor": format_api_timestamp(old_cursor)}
    old = BotExtractor(None, BOTS[0], state, config, SourceRun())  # type: ignore[arg-type]
    assert old.windows[0].start == old_cursor - timedelta(hours=48) - timedelta(minutes=60)
    state = {"cursor": format_api_timestamp(old_cursor), "version": 2}
    new = BotExtractor(None, BOTS[0], state, config, SourceRun())  # type: ignore[arg-type]
    assert new.windows[0].start == old_cursor - timedelta(minutes=60)


@pytest.mark.parametrize(
    "loader_ahead", [timedelta(hours=7), timedelta(hours=-3)], ids=["server-lags", "leads"]
)
def test_an_earlier_start_is_loaded_by_its_bounded_backfill_whichever_clock_is_ahead(
    arriving: list[GeneratedSession], tmp_path: Path, loader_ahead: timedelta
) -> None:
    """A start_date moved back on a pipeline with state: the incremental run names the range
    and leaves its cursor where the server's data put it; the bounded backfill of that range
    loads it and moves `loaded_from` back; later runs, with sessions still arriving, lose
    nothing and say nothing more."""
    later_start = HISTORY_FROM + timedelta(days=5)
    with SandboxServer(arriving, apps=make_apps(), now=NOW, page_cap=PAGE_CAP) as server:
        loader = Loader(server, tmp_path)
        clock = ManualClock(NOW + loader_ahead)
        loader.clock = clock
        assert not loader.run(start_date=later_start.isoformat()).run.earlier_start
        server.advance(timedelta(minutes=100))
        clock.advance(timedelta(minutes=95))
        noticed = loader.run(start_date=HISTORY_FROM.isoformat())
        assert set(noticed.run.earlier_start) == set(BOTS)
        assert any(
            line.startswith(f"start {format_api_timestamp(HISTORY_FROM)} is before")
            for line in noticed.lines()
        )
        [(oldest,)] = loader.query("SELECT MIN(start_time) FROM sessions")
        assert oldest >= later_start, "no run went back"
        cursors = {bot: loader.state()["bots"][bot]["cursor"] for bot in BOTS}
        assert all(
            loader.state()["bots"][bot]["loaded_from"] == format_api_timestamp(later_start) for bot in BOTS
        )
        loader.run(start_date=HISTORY_FROM.isoformat(), end_date=later_start.isoformat())
        bots = loader.state()["bots"]
        assert {bot: bots[bot]["cursor"] for bot in BOTS} == cursors, "a bounded backfill leaves the cursor"
        assert all(bots[bot]["loaded_from"] == format_api_timestamp(HISTORY_FROM) for bot in BOTS)
        server.advance(timedelta(minutes=100))
        clock.advance(timedelta(minutes=97))
        after = loader.run(start_date=HISTORY_FROM.isoformat())
        assert not after.run.earlier_start
        assert_matches_sandbox(loader, server, until=clock() + CLOCK_SKEW_ALLOWANCE)
