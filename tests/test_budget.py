"""The rate budget: rolling limits per bot, shared by the threads and processes of a machine."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path
from subprocess import PIPE

import pytest

from sandbox import RateLimit, SandboxServer, generate_sessions
from sources.kore_sessions.budget import RateBudget, shared_budget
from sources.kore_sessions.client import budget_limits

from .cli_helpers import cli_env, kore
from .conftest import BOTS, REAL_NOW, make_apps


class FakeTime:
    """A clock that only moves when the budget sleeps."""

    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.slept = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


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
        from sources.kore_sessions.budget import RateBudget
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
    about 20; a second process, started right after, needs about 20 more: it paces itself
    until the first run's requests leave the hour, and the server never answers 429."""
    now = REAL_NOW
    sessions = generate_sessions([BOTS[0]], now - timedelta(days=2), now, per_day=240, seed=51)
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
