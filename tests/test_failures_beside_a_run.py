"""A run that fails beside a healthy one removes nothing the other uses: not the shared DuckDB
file, not a lock another process holds."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import kore_sessions.cli.commands as commands
import pytest
from kore_sessions.cli.parser import main
from kore_sessions.runtime.lock import RunLock, RunLockedError
from kore_sessions.sandbox import GeneratedSession, SandboxServer

from .cli_helpers import DATABASE, cli_env, expected, kore, loaded_from, normalized
from .conftest import BOTS, sandbox_at_real_now, sessions_up_to_now

HEALTHY_BOT, FAILING_BOT = BOTS
# One package a day, so the healthy partition loads a package within a second or two and keeps
# loading while the failing one retries.
PACKAGE_A_DAY = ["--window-hours", "24", "--windows-per-package", "1", "--appended-windows-per-package", "1"]


@pytest.fixture(scope="module")
def two_bots() -> list[GeneratedSession]:
    """Five days of both bots up to the real now."""
    return sessions_up_to_now(days=5, per_day=150, seed=71)


@pytest.fixture
def healthy(two_bots: list[GeneratedSession]) -> Iterator[SandboxServer]:
    """The API as it should be, a little slow."""
    with sandbox_at_real_now(two_bots, latency=0.1) as server:
        yield server


@pytest.fixture
def failing(two_bots: list[GeneratedSession]) -> Iterator[SandboxServer]:
    """An API that answers every request with a 500, after a second."""
    with sandbox_at_real_now(two_bots, latency=1.0) as server:
        server.set_fault_rates({"500": 1.0})
        yield server


def partition(name: str, bot: str, host: str, *flags: str) -> list[str]:
    """`kore-sessions load` of one partition (its own pipeline) into the shared DuckDB file."""
    command = ["load", "--no-models", "--pipeline-name", name, "--bot", bot, "--host", host, *flags]
    return [sys.executable, "-m", "kore_sessions.cli", *command]


def test_a_failing_partition_leaves_the_shared_duckdb_file_to_the_healthy_one(
    healthy: SandboxServer, failing: SandboxServer, tmp_path: Path
) -> None:
    """Two partitions start together on a fresh machine into one DuckDB file; one meets an API
    that answers only 5xx and gives up after its retries, while the other has loaded into the
    file. The file and what the healthy one loaded stay: its next run and the warehouse hold
    every session of its bot, and the failed partition loads its own once its API answers."""
    env = cli_env(healthy, tmp_path)
    database = tmp_path / DATABASE
    good = subprocess.Popen(
        partition("part_good", HEALTHY_BOT, healthy.url, *PACKAGE_A_DAY),
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    bad = subprocess.Popen(
        partition("part_bad", FAILING_BOT, failing.url, "--max-attempts", "3", "--quiet"),
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    loaded_before_the_failure = False
    deadline = time.monotonic() + 120
    while bad.poll() is None:
        loaded_before_the_failure = loaded_before_the_failure or database.exists()
        assert time.monotonic() < deadline, "the failing partition gave up"
        time.sleep(0.01)
    _, bad_err = bad.communicate()
    _, good_err = good.communicate(timeout=300)
    assert bad.returncode == 1 and "gave up" in bad_err.strip().splitlines()[-1], bad_err
    assert good.returncode == 0, good_err
    assert loaded_before_the_failure, "the healthy partition had made the file before the other failed"
    assert database.exists(), "the failing partition removed the shared warehouse"
    wanted = {k: v for k, v in expected(healthy).items() if k in ids_of(healthy, HEALTHY_BOT)}
    assert normalized(loaded_from(database)) == wanted
    again = kore(["load", "--no-models", "--pipeline-name", "part_good", "--bot", HEALTHY_BOT], env, tmp_path)
    assert again.returncode == 0, again.stderr
    assert normalized(loaded_from(database)) == wanted, "the healthy partition's sessions are all there"
    failing.clear_faults()
    failing.set_latency(0)
    retried = kore(
        ["load", "--no-models", "--pipeline-name", "part_bad", "--bot", FAILING_BOT, "--host", failing.url],
        env,
        tmp_path,
    )
    assert retried.returncode == 0, retried.stderr
    assert normalized(loaded_from(database)) == expected(healthy)


def ids_of(server: SandboxServer, bot: str) -> set[str]:
    """The ids of a bot's sessions."""
    return {view["sessionId"] for view in server.visible_sessions(bot)}


def test_a_run_refused_the_lock_leaves_the_lock_file_to_its_holder(
    healthy: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process creates and takes the pipeline's lock file just as this run starts (after
    this run looked at what exists, before it asks for the lock): this run is refused, and
    leaves the file, still held, to its holder; a third run is refused as well."""
    for name, value in cli_env(healthy, tmp_path).items():
        monkeypatch.setenv(name, value)
    lock_file = tmp_path / "dlt_home" / "pipelines" / "kore_sessions.lock"
    holders: list[subprocess.Popen[str]] = []
    real_lock = commands.pipeline_lock

    def lock_taken_meanwhile(*args: object, **kwargs: object) -> RunLock:
        holders.append(hold(lock_file))
        return real_lock(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(commands, "pipeline_lock", lock_taken_meanwhile)
    try:
        assert main(["load", "--no-models", "--quiet"]) == 1
        assert holders and holders[0].poll() is None
        assert lock_file.exists(), "the refused run removed the lock file its holder holds"
        with pytest.raises(RunLockedError):
            RunLock(lock_file, "a third run").acquire()
    finally:
        for holder in holders:
            holder.kill()
            holder.wait()
    assert not healthy.requests, "the refused run sent nothing"


def hold(lock_file: Path) -> subprocess.Popen[str]:
    """Another process that creates the lock file, locks it and keeps it until killed."""
    code = (
        "import fcntl, sys, time\n"
        "handle = open(sys.argv[1], 'a+')\n"
        "fcntl.flock(handle, fcntl.LOCK_EX)\n"
        "print('held', flush=True)\n"
        "time.sleep(120)\n"
    )
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen([sys.executable, "-c", code, str(lock_file)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def test_a_warehouse_file_gone_since_the_last_load_is_loaded_again_in_full(
    live_server: SandboxServer, tmp_path: Path
) -> None:
    """The DuckDB file is deleted (or moved) between two loads: the pipeline's state no longer
    describes what the warehouse holds, so the next load starts again from scratch instead of
    going on from its cursor into an empty file."""
    env = cli_env(live_server, tmp_path)
    assert kore(["load", "--no-models"], env, tmp_path).returncode == 0
    for leftover in tmp_path.glob(f"{DATABASE}*"):
        leftover.unlink()
    again = kore(["load", "--no-models"], env, tmp_path)
    assert again.returncode == 0, again.stderr
    assert normalized(loaded_from(tmp_path / DATABASE)) == expected(live_server)
