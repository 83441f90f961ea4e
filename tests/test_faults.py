"""Fault injection: mixed API faults under rolling limits, and SIGKILL at random moments."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from kore_sessions.sandbox import GeneratedSession, SandboxServer
from kore_sessions.sandbox.server import RateLimit

from .cli_helpers import (
    EXTRACTED,
    LOADED,
    Event,
    assert_killed_with_work_left,
    cli_env,
    expected,
    kill_when,
    kore,
    load_started,
    loaded,
    normalized,
    package_reached,
    requests_seen,
)
from .conftest import NOW, Loader, assert_matches_sandbox, make_apps

# Every kind of trouble the API can give, mixed at random (probabilities per request).
MIXED_FAULTS = {
    "500": 0.06,
    "502": 0.04,
    "503": 0.04,
    "drop": 0.05,
    "truncate": 0.04,
    "truncate_length": 0.04,
    "latency": 0.03,
    "429": 0.05,
}
# The kinds of trouble, each of which must have happened in a mixed-fault run.
FAULT_FAMILIES = {
    "server error": {"500", "502", "503"},
    "broken answer": {"drop", "truncate", "truncate_length"},
    "rate limit": {"429"},
}


def assert_faults_fired_and_were_retried(
    server: SandboxServer, retries: int, families: dict[str, set[str]]
) -> None:
    """The sandbox's log shows a fault of each of `families` fired, and the run retried at
    least once per answer it could not use (any injected fault but `latency`, and the 429s of
    the server's own limits)."""
    fired = Counter(record.fault for record in server.requests if record.fault)
    for family, kinds in families.items():
        assert kinds & fired.keys(), f"no {family} fired: {dict(fired)}"
    unusable = sum(n for kind, n in fired.items() if kind != "latency")
    unusable += sum(1 for record in server.requests if record.status == 429 and not record.fault)
    assert retries >= unusable, f"{retries} retries for {unusable} unusable answers ({dict(fired)})"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_mixed_faults_under_rolling_limits_lose_nothing(
    history: list[GeneratedSession], tmp_path: Path, seed: int
) -> None:
    """Backfill, then an incremental run after the clock moves, both through mixed faults and
    the server's rolling limits, four requests a bot in flight: faults of every family fired
    (the sandbox's log says so), each was retried, and the tables equal the sandbox."""
    limit = RateLimit(per_minute=30, per_hour=5000, seconds_per_minute=1.0)
    with SandboxServer(
        history, apps=make_apps(), now=NOW, page_cap=60, rate_limit=limit, retry_after=None, fault_latency=0.3
    ) as server:
        server.set_fault_rates(MIXED_FAULTS, seed=seed)
        loader = Loader(server, tmp_path)
        settings = {"max_in_flight": 4, "max_attempts": 15, "seconds_per_minute": 1.0, "window_hours": 48}
        first = loader.run(**settings)
        assert_faults_fired_and_were_retried(server, first.retries, FAULT_FAMILIES)
        server.advance(timedelta(hours=4))
        server.clear_requests()
        second = loader.run(**settings)
        assert_faults_fired_and_were_retried(server, second.retries, {})
        server.set_fault_rates({})
        assert_matches_sandbox(loader, server)


# Where a run can be when it is killed; each makes the event to kill it on.
KILL_POINTS: dict[str, Callable[[SandboxServer, Path, random.Random], Event]] = {
    "fetching": lambda server, cwd, rng: requests_seen(server, rng.randint(1, 4)),
    "normalizing": lambda server, cwd, rng: package_reached(cwd, EXTRACTED),
    "loading": lambda server, cwd, rng: load_started(cwd),
    "committed, more to come": lambda server, cwd, rng: package_reached(cwd, LOADED),
}
# Half-day windows, one a bot per package: thirteen packages, so five kills never run out of work.
PACKAGE_PER_HALF_DAY = {
    "SOURCES__KORE_SESSIONS__WINDOW_HOURS": "12",
    "SOURCES__KORE_SESSIONS__WINDOWS_PER_PACKAGE": "1",
    "SOURCES__KORE_SESSIONS__APPENDED_WINDOWS_PER_PACKAGE": "1",
    "SOURCES__KORE_SESSIONS__MAX_IN_FLIGHT": "2",
}


def test_killed_at_random_moments_then_rerun_gives_exactly_the_sandbox(
    live_server: SandboxServer, tmp_path: Path
) -> None:
    """A backfill SIGKILLed five times at moments drawn from every stage (fetching,
    normalizing, loading, just after a package was committed): each kill lands mid-run and
    leaves work; run to the end, the warehouse holds exactly the sandbox's sessions, none twice."""
    live_server.set_latency(0.02)
    env = cli_env(live_server, tmp_path, **PACKAGE_PER_HALF_DAY)
    moments = random.Random(7)
    stages = [*moments.sample(list(KILL_POINTS), len(KILL_POINTS)), moments.choice(list(KILL_POINTS))]
    for stage in stages:
        event = KILL_POINTS[stage](live_server, tmp_path, moments)
        killed = kill_when(["load", "--quiet", "--no-models"], env, tmp_path, live_server, event)
        assert_killed_with_work_left(killed, tmp_path, live_server)
    live_server.set_latency(0)
    result = kore(["load", "--no-models"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert normalized(loaded(tmp_path)) == expected(live_server)
