"""The rate budget: rolling limits per bot, shared by the threads and processes of a machine."""

from __future__ import annotations

import importlib.util
import json
import sqlite3
import subprocess
import sys
import textwrap
import time
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from subprocess import PIPE
from types import ModuleType

import pytest
from kore_sessions.sandbox import RateLimit, SandboxServer, generate_sessions
from kore_sessions.source.api import budget as budget_module
from kore_sessions.source.api.budget import RateBudget, shared_budget
from kore_sessions.source.api.client import budget_limits

from .cli_helpers import cli_env, kore
from .conftest import BOTS, REAL_NOW, make_apps


class Stalled(AssertionError):
    """The budget waited far longer than any window of its limits."""


class FakeTime:
    """A clock that only moves when the budget sleeps; a wait of hours fails the test."""

    def __init__(self, start: float = 1_000_000.0, patience: float = 2 * 3600.0) -> None:
        self.now = start
        self.slept = 0.0
        self.patience = patience

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds
        if self.slept > self.patience:
            raise Stalled(f"waited {self.slept:.0f} s")


class SteppingWall:
    """The machine's wall clock (`time.time`), which a test steps as NTP or an admin would."""

    def __init__(self) -> None:
        self.real = time.time
        self.step = 0.0

    def __call__(self) -> float:
        return self.real() + self.step


@pytest.fixture
def wall(monkeypatch: pytest.MonkeyPatch) -> SteppingWall:
    stepping = SteppingWall()
    monkeypatch.setattr(time, "time", stepping)
    return stepping


def budget_of_a_new_process() -> ModuleType:
    """The budget module loaded afresh, as a process started now loads it: its defaults are
    bound to the (stepping) clocks of the time module as they are now."""
    spec = importlib.util.spec_from_file_location(
        "kore_sessions.source.api.budget_afresh", budget_module.__file__
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class RealSleep:
    """Real sleeps; waiting more than `patience` seconds in all fails the test."""

    def __init__(self, patience: float) -> None:
        self.patience = patience
        self.slept = 0.0

    def __call__(self, seconds: float) -> None:
        self.slept += seconds
        if self.slept > self.patience:
            raise Stalled(f"waited {self.slept:.0f} s")
        time.sleep(seconds)


def test_requests_beyond_a_limit_wait_until_the_oldest_leaves_its_window(tmp_path: Path) -> None:
    fake = FakeTime()
    budget = RateBudget(tmp_path / "b.sqlite", clock=fake.clock, sleep=fake.sleep)
    limits = [(3, 10.0)]
    for _ in range(3):
        assert budget.acquire("bot", limits) == 0.0
    fake.now += 4.0
    assert budget.acquire("bot", limits) == pytest.approx(6.0), "the first leaves the window 10 s after it"
    assert budget.spent("bot", 10.0) == 1, "the first three left together"


def test_both_limits_hold_and_keys_are_counted_apart(tmp_path: Path) -> None:
    fake = FakeTime()
    budget = RateBudget(tmp_path / "b.sqlite", clock=fake.clock, sleep=fake.sleep)
    limits = [(5, 1.0), (8, 60.0)]  # 5 a second, 8 a minute
    sent = []
    for _ in range(9):
        budget.acquire("a", limits)
        sent.append(fake.now)
    assert sent[8] - sent[0] >= 60.0, "the ninth waits for the minute"
    for index, moment in enumerate(sent):
        assert sum(1 for other in sent if moment <= other < moment + 1.0) <= 5, index
    assert budget.acquire("b", limits) == 0.0, "another bot has its own budget"


def test_a_second_budget_on_the_same_file_sees_what_the_first_spent(tmp_path: Path) -> None:
    """What one run spent is known to the next one (a new process opens the same file)."""
    fake = FakeTime()
    path = tmp_path / "b.sqlite"
    first = RateBudget(path, clock=fake.clock, sleep=fake.sleep)
    for _ in range(4):
        first.acquire("bot", [(4, 100.0)])
    first.close()
    second = RateBudget(path, clock=fake.clock, sleep=fake.sleep)
    assert second.acquire("bot", [(4, 100.0)]) == pytest.approx(100.0)


def test_processes_sharing_a_file_never_overspend_together(tmp_path: Path) -> None:
    """Three processes released together, 20 requests each, limit 10 per 0.5 s: all three ask
    at once (budgets of their own would let 30 through in the first 0.5 s), and no 0.5 s holds
    more than 10."""
    path = tmp_path / "b.sqlite"
    script = textwrap.dedent(
        f"""
        import json, sys, time
        from kore_sessions.source.api.budget import RateBudget
        budget = RateBudget({str(path)!r})
        print("ready", flush=True)
        sys.stdin.readline()
        taken = [time.time()]
        for _ in range(20):
            budget.acquire("bot", [(10, 0.5)])
            taken.append(time.time())
        print(json.dumps(taken), flush=True)
        """
    )
    workers = [
        subprocess.Popen([sys.executable, "-c", script], stdin=PIPE, stdout=PIPE, text=True) for _ in range(3)
    ]
    for worker in workers:  # every process has imported and opened the budget
        assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    spans = [json.loads(worker.communicate(timeout=60)[0]) for worker in workers]
    asked = [span[0] for span in spans]
    assert max(asked) - min(asked) < 0.25, "all three asked at once"
    with sqlite3.connect(path) as db:
        sent = sorted(row[0] for row in db.execute("SELECT sent FROM requests WHERE key = 'bot'"))
    assert len(sent) == 60
    busiest = max(sum(1 for other in sent if moment <= other < moment + 0.5) for moment in sent)
    assert busiest == 10
    assert sent[-1] - sent[0] >= 5 * 0.5, "60 requests at 10 per 0.5 s need more than five windows"


def test_limits_of_a_bot_scale_with_the_minute_and_keep_a_margin() -> None:
    assert budget_limits(60, 1800, 60.0) == [(60, 63.0), (1800, 3780.0)]
    assert budget_limits(8, 1000, 2.0) == [(8, 2.1), (1000, 126.0)]


def test_threads_of_a_process_share_one_budget_per_file(tmp_path: Path) -> None:
    assert shared_budget(tmp_path / "x.sqlite") is shared_budget(str(tmp_path / "x.sqlite"))
    assert shared_budget(None) is shared_budget(None)
    assert shared_budget(None) is not shared_budget(tmp_path / "x.sqlite")


def test_back_to_back_runs_share_the_hourly_budget_and_meet_no_429(tmp_path: Path) -> None:
    """Server and client allow 30 requests a (scaled, 15 s) hour per bot. A backfill spends
    18-22 (the sessions generated over two days up to now vary with the time of day: 439-541 at
    300 a day; at 240 a day, 365-431, a run could spend 15 and two fit in one hour); a second
    process, started right after, needs as many more: it paces itself until the first run's
    requests leave the hour, and the server never answers 429."""
    now = REAL_NOW
    sessions = generate_sessions([BOTS[0]], now - timedelta(days=2), now, per_day=300, seed=51)
    limit = RateLimit(per_minute=1000, per_hour=30, seconds_per_minute=0.25)
    with SandboxServer(sessions, apps=make_apps(), now=now, page_cap=25, rate_limit=limit) as server:
        env = cli_env(
            server,
            tmp_path,
            SOURCES__KORE_SESSIONS__BOT_IDS=BOTS[0],
            SOURCES__KORE_SESSIONS__START_DATE=(now - timedelta(days=2)).isoformat(),
            SOURCES__KORE_SESSIONS__REQUESTS_PER_MINUTE="1000",
            SOURCES__KORE_SESSIONS__REQUESTS_PER_HOUR="30",
            SOURCES__KORE_SESSIONS__SECONDS_PER_MINUTE="0.25",
        )
        first = kore(["load", "--no-models"], env, tmp_path)
        assert first.returncode == 0, first.stderr
        spent = len(server.requests)
        start, end = (now - timedelta(days=2)).isoformat(), now.isoformat()
        bounded = ["load", "--no-models", "--start", start, "--end", end]
        second = kore(bounded, env, tmp_path)
        assert second.returncode == 0, second.stderr
        arrivals = [r.at.timestamp() for r in server.requests]
        assert spent >= 15 and len(arrivals) > 30, "together more than the hourly limit"
        assert [r for r in server.requests if r.status == 429] == []
        hour = 60 * 0.25
        busiest = max(sum(1 for other in arrivals if moment - hour < other <= moment) for moment in arrivals)
        assert busiest <= 30
        assert "rate limited: 0" in first.stdout and "rate limited: 0" in second.stdout


def old_format_file(path: Path, rows: list[tuple[str, float]]) -> None:
    """A budget file as the versions before made it: wall-clock times, no boot, no `keep`."""
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE requests (key TEXT NOT NULL, sent REAL NOT NULL)")
        db.execute("CREATE INDEX requests_by_key ON requests (key, sent)")
        db.execute("CREATE INDEX requests_by_time ON requests (sent)")
        db.executemany("INSERT INTO requests (key, sent) VALUES (?, ?)", rows)


def test_the_wall_clock_stepping_back_an_hour_makes_no_request_wait(
    tmp_path: Path, wall: SteppingWall
) -> None:
    """An NTP correction or a new date set back the wall clock an hour while a run sends: the
    next request waits for its window as it would have, not for the hour."""
    budget = budget_of_a_new_process().RateBudget(tmp_path / "b.sqlite", sleep=RealSleep(patience=5.0))
    limits = [(3, 0.5)]
    for _ in range(3):
        budget.acquire("bot", limits)
    wall.step = -3600.0
    assert budget.acquire("bot", limits) <= 0.5, "the first of the three leaves the window 0.5 s after it"


def test_the_wall_clock_stepping_forward_forgets_no_request_of_the_window(
    tmp_path: Path, wall: SteppingWall
) -> None:
    """The wall clock jumps an hour ahead (a VM resumed, a date set): the requests just sent
    still count, and the fourth of a 3-per-0.5 s limit still waits for the first to leave."""
    budget = budget_of_a_new_process().RateBudget(tmp_path / "b.sqlite", sleep=RealSleep(patience=5.0))
    limits = [(3, 0.5)]
    first = time.monotonic()
    for _ in range(3):
        budget.acquire("bot", limits)
    wall.step = 3600.0
    budget.acquire("bot", limits)
    assert time.monotonic() - first >= 0.5, "the fourth went within the first's window"


def test_the_hourly_limit_holds_when_the_hour_is_longer_than_two(tmp_path: Path) -> None:
    """At 200 s a "minute" the hourly window is 3.5 h: requests sent 2.5 h ago still count,
    though another bot's takes clean the history in between; a day later they are gone."""
    fake = FakeTime()
    path = tmp_path / "b.sqlite"
    budget = RateBudget(path, clock=fake.clock, sleep=fake.sleep)
    limits = budget_limits(1000, 5, 200.0)
    assert limits[1] == (5, 12_600.0)
    for _ in range(5):
        assert budget.acquire("bot", limits) == 0.0
    fake.now += 2.5 * 3600
    assert budget.acquire("other bot", [(10, 1.0)]) == 0.0
    assert budget.acquire("bot", limits) == pytest.approx(3600.0), "the first leaves the hour at 3.5 h"
    fake.now += 25 * 3600
    budget.acquire("other bot", [(10, 1.0)])
    with closing(sqlite3.connect(path)) as db:
        kept = db.execute("SELECT COUNT(*) FROM requests WHERE key = 'bot'").fetchone()[0]
    assert kept == 0, "requests past their window and a day are forgotten, whoever's take it is"


def test_requests_of_an_earlier_boot_count_as_sent_when_this_boot_began(tmp_path: Path) -> None:
    """The machine restarts: the boot clock begins again at 0, so the times of the last boot
    look hours in the future. They count as sent at boot: as recent as they can be (none is
    forgotten), and no one waits longer than the window."""
    path = tmp_path / "b.sqlite"
    before = FakeTime(start=1_000_000.0)
    first = RateBudget(path, clock=before.clock, sleep=before.sleep, boot_id=lambda: "boot-1")
    for _ in range(3):
        first.acquire("bot", [(3, 10.0)])
    first.close()
    after = FakeTime(start=4.0)  # 4 s into the new boot
    second = RateBudget(path, clock=after.clock, sleep=after.sleep, boot_id=lambda: "boot-2")
    assert second.spent("bot", 10.0) == 3, "none forgotten"
    assert second.acquire("bot", [(3, 10.0)]) == pytest.approx(6.0), "counted as sent at 0"


def test_a_time_that_still_looks_in_the_future_delays_by_one_window_at_most(tmp_path: Path) -> None:
    """A clock source's oddity within one boot (here the clock read an hour back): what looks
    sent in the future counts as sent now, so the limit holds and the wait is one window."""
    fake = FakeTime()
    budget = RateBudget(tmp_path / "b.sqlite", clock=fake.clock, sleep=fake.sleep)
    for _ in range(3):
        budget.acquire("bot", [(3, 10.0)])
    fake.now -= 3600.0
    assert budget.acquire("bot", [(3, 10.0)]) == pytest.approx(10.0)


def test_a_budget_file_of_an_earlier_version_is_upgraded_and_keeps_its_requests(tmp_path: Path) -> None:
    """A file the versions before wrote (wall-clock times) is opened with the boot clock: its
    requests are re-timed by their age, so they still count and make no one wait for hours."""
    path = tmp_path / "old.sqlite"
    now = time.time()
    old_format_file(path, [("bot", now - 20.0)] * 3 + [("bot", now - 3 * 3600.0)])
    fake = FakeTime()
    budget = RateBudget(path, clock=fake.clock, sleep=fake.sleep)
    assert budget.acquire("bot", [(3, 60.0)]) == pytest.approx(40.0, abs=2.0), "sent 20 s ago"
    assert budget.spent("bot", 3600.0) == 4, "the three and this one; not the one of 3 h ago"


def test_processes_opening_an_old_file_at_once_upgrade_it_and_never_stall(tmp_path: Path) -> None:
    """An old file holds ten requests stamped an hour ahead (its wall clock was set back an
    hour since). Three processes open it at once, then ask together, five requests each at
    10 per 0.5 s: one upgrades it, none fails or waits for the hour, and the limit holds."""
    path = tmp_path / "b.sqlite"
    old_format_file(path, [("bot", time.time() + 3600.0)] * 10)
    script = textwrap.dedent(
        f"""
        import sys, time
        from kore_sessions.source.api.budget import RateBudget
        budget = RateBudget({str(path)!r})
        print("ready", flush=True)
        sys.stdin.readline()
        for _ in range(5):
            budget.acquire("bot", [(10, 0.5)])
        print("done", flush=True)
        """
    )
    workers = [
        subprocess.Popen([sys.executable, "-c", script], stdin=PIPE, stdout=PIPE, text=True) for _ in range(3)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        assert [worker.communicate(timeout=20)[0].strip() for worker in workers] == ["done"] * 3
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()
    with closing(sqlite3.connect(path)) as db:
        sent = sorted(row[0] for row in db.execute("SELECT sent FROM requests WHERE key = 'bot'"))
    assert len(sent) == 25, "the ten of the old file are kept"
    assert max(sum(1 for other in sent if moment <= other < moment + 0.5) for moment in sent) <= 10
