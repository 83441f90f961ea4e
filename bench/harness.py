"""Shared machinery: the data set, the sandbox server, child processes and the request log."""

from __future__ import annotations

import gc
import json
import math
import os
import resource
import subprocess
import sys
import time
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
from kore_sessions.sandbox import GeneratedSession, RequestRecord, SandboxApp, generate_sessions, make_bot_ids

from bench import postgres
from bench.jobs import CLIENT_ID, CLIENT_SECRET, POSTGRES, REFERENCE, Job
from bench.reference import count_rows

REPO_ROOT = Path(__file__).resolve().parents[1]
# A Sunday noon (UTC): the sandbox's clock is this one moved on by whole weeks (`sandbox_now`).
CLOCK_ANCHOR = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
# Share of the sessions started in the last two hours before NOW that are still open at NOW.
ACTIVE_SHARE = 0.25
# Set to a folder to profile each child with py-spy (`pip install py-spy`): one file of
# collapsed stacks per child, `bench/profile.py` sums it by function. Peak RSS is the child's own.
PROFILE_ENV = "KORE_BENCH_PROFILE"
# Set (to anything) beside it to sample only the thread holding the GIL (`py-spy --gil`): what
# keeps the others waiting, as the interpreter runs one thread's Python at a time.
PROFILE_GIL_ENV = "KORE_BENCH_PROFILE_GIL"
# How often a child's RSS is sampled, to tell which pipeline step holds the peak.
RSS_SAMPLE_SECONDS = 0.05


def sandbox_now(machine_now: datetime) -> datetime:
    """The sandbox's clock for a bench started at `machine_now`: the last Sunday noon (UTC) up to
    it, whole weeks from CLOCK_ANCHOR.

    Every run sees the same data set, only moved by whole weeks (its volume follows the weekday
    and the hour, which stay), and `kore-sessions load` (part l), which runs on the machine's
    clock, pages at most a week of empty windows past the data: a clock fixed at one date made
    it page more of them every week (25 a month after it).
    """
    return CLOCK_ANCHOR + (machine_now - CLOCK_ANCHOR) // timedelta(weeks=1) * timedelta(weeks=1)


# The sandbox clock of this run: its servers', its checks', and its children's (each job's `now`).
NOW = sandbox_now(datetime.now(UTC))


@dataclass(frozen=True)
class DataSet:
    """Generated sessions and, per bot, the sorted start times of those visible at NOW."""

    bots: list[str]
    start: datetime
    sessions: list[GeneratedSession]
    seconds: float
    starts_by_bot: dict[str, list[datetime]]

    @property
    def visible(self) -> int:
        """Sessions the API shows at NOW: what a full backfill must load."""
        return sum(len(starts) for starts in self.starts_by_bot.values())

    def count(self, bot: str, date_from: datetime, date_to: datetime) -> int:
        """Visible sessions of a bot with ``date_from <= start <= date_to``."""
        starts = self.starts_by_bot.get(bot, [])
        return bisect_right(starts, date_to) - bisect_left(starts, date_from)


def make_data(sessions: int, bots: int, days: int, seed: int) -> DataSet:
    """Generate about ``sessions`` sessions spread over ``bots`` bots and ``days`` days up to NOW."""
    bot_ids = make_bot_ids(bots, seed=seed)
    start = NOW - timedelta(days=days)
    per_day = max(1, round(sessions / (bots * days)))
    began = time.perf_counter()
    generated = generate_sessions(bot_ids, start, NOW, per_day, seed=seed, active_share=ACTIVE_SHARE)
    seconds = time.perf_counter() - began
    freeze_heap()
    starts: dict[str, list[datetime]] = {bot: [] for bot in bot_ids}
    for session in generated:
        if session.is_visible(NOW):
            starts[session.bot_id].append(session.start)
    return DataSet(bot_ids, start, generated, seconds, starts)


def freeze_heap() -> None:
    """Keep the data set out of the garbage collector's full passes.

    The sandbox serves from this process; with hundreds of thousands of sessions on the heap
    every full collection walks them all, which cost the sandbox about 30 % of its time.
    """
    gc.collect()
    gc.freeze()


def sandbox_app() -> SandboxApp:
    """The bot app the children sign their requests with."""
    return SandboxApp(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, kind="bot")


@dataclass(frozen=True)
class ChildRun:
    """What one child process reported, with its peak RSS and the sandbox's CPU meanwhile."""

    result: dict[str, Any]
    peak_rss_mb: float
    wall_seconds: float
    sandbox_cpu_seconds: float
    rss_samples: list[tuple[float, float]]

    @property
    def seconds(self) -> float:
        """Seconds of the load itself (imports and start-up left out)."""
        return float(self.result["seconds"])

    def step_seconds(self, step: str) -> float:
        """Seconds of one pipeline step (extract, normalize, load)."""
        start, end = self.result["steps"][step]
        return float(end - start)

    def step_peak_rss_mb(self, step: str) -> float:
        """Highest RSS sampled while a pipeline step ran (0 if no sample fell in it)."""
        start, end = self.result["steps"][step]
        return max((rss for at, rss in self.rss_samples if start <= at <= end), default=0.0)


def run_child(job: Job) -> ChildRun:
    """Run a job in a fresh interpreter and wait for it; raises if it fails.

    The parent (the sandbox server's threads) does nothing else meanwhile, so its CPU time
    over the child's life is the sandbox's.
    """
    workdir = Path(job.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    job.save(workdir / "job.json")
    result_path = workdir / "result.json"
    env = child_env(workdir)
    command = [sys.executable, "-m", "bench.worker", str(workdir / "job.json"), str(result_path)]
    profile = os.environ.get(PROFILE_ENV)
    if profile:  # sample the child with py-spy: where its time goes, as collapsed stacks
        Path(profile).mkdir(parents=True, exist_ok=True)
        output = Path(profile) / f"{workdir.name}.txt"
        sampled = ["--rate", "50", *(["--gil"] if os.environ.get(PROFILE_GIL_ENV) else [])]
        command = ["py-spy", "record", *sampled, "--format", "raw", "-o", str(output), "--", *command]
    cpu_before, began = _own_cpu(), time.perf_counter()
    with (workdir / "child.log").open("wb") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        status, usage, samples = _wait_sampling_rss(process.pid)
        process.returncode = os.waitstatus_to_exitcode(status)
    wall, cpu = time.perf_counter() - began, _own_cpu() - cpu_before
    if process.returncode != 0:
        tail = (workdir / "child.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{job.kind} child failed (exit {process.returncode}):\n{tail}")
    result = json.loads(result_path.read_text())
    result["rows"], result["distinct_ids"] = loaded_rows(job)
    # The child's own high-water mark: ru_maxrss survives execve and would include the
    # parent's (the sandbox's) memory at fork time.
    return ChildRun(result, result.get("peak_rss_kb", usage.ru_maxrss) / 1024, wall, cpu, samples)


def child_env(workdir: Path) -> dict[str, str]:
    """A child's environment: this one's, without dlt's telemetry, with dlt's folder in `workdir`."""
    return {**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false", "DLT_DATA_DIR": str(workdir / "dlt")}


def loaded_rows(job: Job) -> tuple[int, int]:
    """Rows and distinct session ids the child loaded, counted here after it exited, so the
    check's own memory is not the child's."""
    if job.destination == POSTGRES:
        return postgres.count_rows(str(job.postgres_url), job.dataset)
    table = "sessions" if job.kind == REFERENCE else f"{job.dataset}.sessions"
    with duckdb.connect(str(job.duckdb_path), read_only=True) as connection:
        return count_rows(connection, table)


def _wait_sampling_rss(pid: int) -> tuple[int, resource.struct_rusage, list[tuple[float, float]]]:
    """Wait for a child, sampling its RSS (epoch seconds, MB); returns its status and rusage."""
    samples: list[tuple[float, float]] = []
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            return status, usage, samples
        rss = _rss_mb(pid)
        if rss is not None:
            samples.append((time.time(), rss))
        time.sleep(RSS_SAMPLE_SECONDS)


def _rss_mb(pid: int) -> float | None:
    """The current RSS of a process from /proc, in MB; None if it cannot be read."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return None


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def api_requests(log: Sequence[RequestRecord]) -> list[RequestRecord]:
    """Requests to a per-bot getSessions route."""
    return [record for record in log if record.bot_id is not None]


def parse_api_time(text: str) -> datetime:
    """An API timestamp (``...Z``) as an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def minimum_requests(log: Sequence[RequestRecord], data: DataSet, page_cap: int) -> tuple[int, int]:
    """The fewest requests that could fetch the windows the log shows, and how many windows.

    Each distinct (bot, dateFrom, dateTo) needs ``max(1, ceil(sessions / page_cap))`` pages.
    """
    windows = {
        (record.bot_id, record.body["dateFrom"], record.body["dateTo"])
        for record in api_requests(log)
        if record.body and "dateFrom" in record.body
    }
    pages = 0
    for bot, date_from, date_to in windows:
        sessions = data.count(str(bot), parse_api_time(date_from), parse_api_time(date_to))
        pages += max(1, math.ceil(sessions / page_cap))
    return pages, len(windows)


def owned_windows(log: Sequence[RequestRecord]) -> list[tuple[str, str, str, str | None]]:
    """The windows the log shows, per bot oldest first, each owning what started after its predecessor.

    Returns:
        ``(bot, dateFrom, dateTo, owned_after)``; ``owned_after`` is the previous window's
        ``dateTo`` (None for a bot's first window), so overlapping edges count once.
    """
    by_bot: dict[str, set[tuple[str, str]]] = {}
    for record in api_requests(log):
        if record.body and "dateFrom" in record.body:
            by_bot.setdefault(str(record.bot_id), set()).add((record.body["dateFrom"], record.body["dateTo"]))
    windows: list[tuple[str, str, str, str | None]] = []
    for bot, spans in by_bot.items():
        previous: str | None = None
        for date_from, date_to in sorted(spans, key=lambda span: parse_api_time(span[0])):
            windows.append((bot, date_from, date_to, previous))
            previous = date_to
    return windows
