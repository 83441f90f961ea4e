"""Fault injection: mixed API faults under rolling limits, and SIGKILL at random moments."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from sandbox import GeneratedSession, SandboxServer
from sandbox.server import RateLimit

from .conftest import NOW, Loader, assert_matches_sandbox, make_apps
from .test_cli import cli_env, expected, loaded, normalized

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


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_mixed_faults_under_rolling_limits_lose_nothing(
    history: list[GeneratedSession], tmp_path: Path, seed: int
) -> None:
    """Backfill, then an incremental run after the clock moves, both through mixed faults and
    the server's rolling limits, four requests a bot in flight: the tables equal the sandbox."""
    limit = RateLimit(per_minute=30, per_hour=5000, seconds_per_minute=1.0)
    with SandboxServer(
        history, apps=make_apps(), now=NOW, page_cap=60, rate_limit=limit, retry_after=None, fault_latency=0.3
    ) as server:
        server.set_fault_rates(MIXED_FAULTS, seed=seed)
        loader = Loader(server, tmp_path)
        settings = {"max_in_flight": 4, "max_attempts": 15, "seconds_per_minute": 1.0, "window_hours": 48}
        first = loader.run(**settings)
        assert first.retries > 0, "faults were met"
        server.advance(timedelta(hours=4))
        loader.run(**settings)
        server.set_fault_rates({})
        assert_matches_sandbox(loader, server)


def test_killed_at_random_moments_then_rerun_gives_exactly_the_sandbox(
    live_server: SandboxServer, tmp_path: Path
) -> None:
    """A backfill SIGKILLed five times at random moments (extract, normalize or load), then run
    to the end: exactly the sandbox's sessions, none twice."""
    live_server.set_latency(0.02)
    env = {**cli_env(live_server, tmp_path), "SOURCES__KORE_SESSIONS__MAX_IN_FLIGHT": "2"}
    moments = random.Random(7)
    for _ in range(5):
        process = subprocess.Popen(
            [sys.executable, "-m", "pipelines.cli", "load", "--quiet", "--no-models"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(moments.uniform(0.5, 3.0))
        process.send_signal(signal.SIGKILL)
        process.wait()
    live_server.set_latency(0)
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "load"], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert normalized(loaded(tmp_path)) == expected(live_server)
