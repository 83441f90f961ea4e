"""Benchmark a backfill of sessions and their messages (issue 19, point 6), in one run.

Usage (from the repository root)::

    python -m bench.messages_backfill [--quick] [--sessions N] [--bots N] [--days N]
                                      [--page-cap N] [--small-days N]

The sandbox's sessions (default 142,000 over 2 bots and 60 days: about 1,000,000 messages served
by getMessagesV2, ~7 a session) are served by `bench.fast_server` with every message encoded up
front. The real source (`resources=["sessions", "messages"]`, the CLI's `load_sessions`, rate
limits that never bind) backfills them into DuckDB twice: from ``--small-days`` before the
sandbox's clock (about a fifth of the messages) and from the start; then the floor
(`bench.messages_floor`: plain httpx paging of the same windows and channels + bulk inserts of
flat rows) loads the full backfill. Printed: times, the requests for messages against the
fewest the plan allows (`bench.message_plan`), peak RSS of each child and the ratios
pipeline/floor and full/small (memory flatness). Exit code 1 when a load does not hold exactly
the sandbox's sessions and messages, or asked getMessagesV2 more or fewer times than the minimum.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
from kore_sessions.sandbox import RequestRecord
from kore_sessions.source.api.rules import CLOCK_SKEW_ALLOWANCE, MAX_WORKERS

from bench import harness, message_plan
from bench.fast_server import FastSandboxServer, MessageIndex
from bench.jobs import MESSAGES_FLOOR, MESSAGES_PAGE_SIZE, Job
from bench.parts import Figure, base_job, cpu_figure, describe_data, say
from bench.run_bench import print_table

PART = "m"
# Sessions asked for per request, and the server's page cap of sessions (as part a).
SESSION_PAGE_CAP = 1000
# Peak RSS of the full backfill within this share of the small one's: memory flat.
FLAT_RSS_SHARE = 0.10
SEED = 11


@dataclass(frozen=True)
class Sizes:
    """The data set (sessions over bots and days), the server's messages page cap, and the
    days of the small backfill."""

    sessions: int = 142_000
    bots: int = 2
    days: int = 60
    page_cap: int = MESSAGES_PAGE_SIZE
    small_days: int = 19


FULL = Sizes()
QUICK = Sizes(sessions=3_000, bots=2, days=24, page_cap=500, small_days=6)


@dataclass(frozen=True)
class Bench:
    """The data set, its server (messages encoded) and the folder of the children."""

    data: harness.DataSet
    server: FastSandboxServer
    index: MessageIndex
    tmp: Path
    sizes: Sizes


@dataclass(frozen=True)
class Loaded:
    """One backfill by a child: its run, its requests and what it must have fetched and loaded."""

    label: str
    run: harness.ChildRun
    log: list[RequestRecord]
    planned: list[message_plan.MessageWindow]
    minimum: int
    sessions_expected: int
    messages_expected: int
    messages_loaded: tuple[int, int]

    @property
    def message_requests(self) -> int:
        """Requests the child sent to getMessagesV2."""
        return sum(1 for record in self.log if message_plan.is_messages_request(record.path))

    @property
    def session_log(self) -> list[RequestRecord]:
        """The child's requests to getSessions."""
        return [record for record in self.log if message_plan.is_sessions_request(record.path)]

    @property
    def checks(self) -> tuple[str, str]:
        """``ok`` or ``MISMATCH ...`` for the sessions and for the messages loaded."""
        rows, distinct = self.run.result["rows"], self.run.result["distinct_ids"]
        sessions = "ok" if rows == distinct == self.sessions_expected else "MISMATCH"
        if sessions != "ok":
            sessions = f"MISMATCH {rows}/{distinct} vs {self.sessions_expected}"
        rows, distinct = self.messages_loaded
        messages = "ok" if rows == distinct == self.messages_expected else "MISMATCH"
        if messages != "ok":
            messages = f"MISMATCH {rows}/{distinct} vs {self.messages_expected}"
        return sessions, messages


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.messages_backfill", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke test (seconds)")
    parser.add_argument("--sessions", type=int, help=f"sessions generated (default {FULL.sessions})")
    parser.add_argument("--bots", type=int, help=f"bots (default {FULL.bots})")
    parser.add_argument(
        "--days", type=int, help=f"days of sessions up to the sandbox's clock (default {FULL.days})"
    )
    parser.add_argument("--page-cap", type=int, help=f"server's messages page cap (default {FULL.page_cap})")
    parser.add_argument(
        "--small-days", type=int, help=f"days of the small backfill (default {FULL.small_days})"
    )
    return parser.parse_args(argv)


def sizes_from(args: argparse.Namespace) -> Sizes:
    """The sizes of the mode, with the command line's overrides."""
    given = {
        name: getattr(args, name)
        for name in ("sessions", "bots", "days", "page_cap", "small_days")
        if getattr(args, name) is not None
    }
    return replace(QUICK if args.quick else FULL, **given)


def load(bench: Bench, label: str, start: datetime, floor_of: Loaded | None = None) -> Loaded:
    """Backfill from ``start`` in a child: the pipeline, or (``floor_of`` given) the floor of
    that pipeline's backfill, paging its session windows and the planned message windows."""
    data, now = bench.data, harness.NOW
    channels = message_plan.session_channels(data.sessions, now, start)
    planned = message_plan.planned_windows(channels, start, now)
    job = replace(
        base_job(bench.server, data, bench.tmp / label, page_size=SESSION_PAGE_CAP),
        start=start.isoformat(),
        resources=["sessions", "messages"],
    )
    if floor_of is not None:
        windows = harness.owned_windows(floor_of.session_log)
        workers = min(MAX_WORKERS, job.max_in_flight * len(job.bots))
        job = replace(job, kind=MESSAGES_FLOOR, windows=windows, message_windows=planned, workers=workers)
    bench.server.clear_requests()
    run = harness.run_child(job)
    log = bench.server.requests
    end = now + CLOCK_SKEW_ALLOWANCE
    return Loaded(
        label=label,
        run=run,
        log=log,
        planned=planned,
        minimum=message_plan.minimum_message_requests(planned, bench.index, bench.sizes.page_cap),
        sessions_expected=sum(data.count(bot, start, end) for bot in data.bots),
        messages_expected=message_plan.expected_messages(channels, bench.index, start, now),
        messages_loaded=count_messages(job),
    )


def count_messages(job: Job) -> tuple[int, int]:
    """Rows and distinct message ids of the child's messages table."""
    with duckdb.connect(str(job.duckdb_path), read_only=True) as connection:
        row = connection.execute(
            f"SELECT COUNT(*), COUNT(DISTINCT message_id) FROM {job.dataset}.messages"
        ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def load_figures(loaded: Loaded, data: harness.DataSet) -> list[Figure]:
    """Figures of one backfill, printed as well."""
    run, label = loaded.run, loaded.label
    sessions, messages = run.result["rows"], loaded.messages_loaded[0]
    made = loaded.message_requests
    same = "yes" if made == loaded.minimum else "NO"
    session_minimum, _ = harness.minimum_requests(loaded.session_log, data, SESSION_PAGE_CAP)
    busy = run.sandbox_cpu_seconds / run.wall_seconds
    asked = message_plan.asked_windows(loaded.log)
    planned = {(bot, date_from, date_to, channel) for bot, date_from, date_to, _, channel in loaded.planned}
    say(
        f"   {label}: {run.seconds:.1f} s, {sessions:,} sessions + {messages:,} messages "
        f"({messages / run.seconds:,.0f} messages/s), peak RSS {run.peak_rss_mb:.0f} MB, "
        f"server CPU {busy:.0%} of the child's {run.wall_seconds:.1f} s"
    )
    say(
        f"   {label}: {made} message requests (minimum {loaded.minimum} for {len(planned)} "
        "windows x channels; "
        f"windows asked = planned: {'yes' if asked == planned else 'NO'}), "
        f"{len(loaded.session_log)} session requests (minimum {session_minimum})"
    )
    if asked != planned:
        extra, missing = sorted(asked - planned)[:4], sorted(planned - asked)[:4]
        say(f"   {label}: asked, not planned: {extra}; planned, not asked: {missing}")
    checks = loaded.checks
    say(f"   {label}: sessions {checks[0]}, messages {checks[1]} ({loaded.messages_expected:,} expected)")
    return [
        (PART, f"{label} time", f"{run.seconds:.1f} s"),
        (PART, f"{label} CPU", cpu_figure(run)),
        (PART, f"{label} messages loaded", f"{messages:,}"),
        (PART, f"{label} messages/s", f"{messages / run.seconds:,.0f}"),
        (PART, f"{label} message requests / minimum", f"{made} / {loaded.minimum} (equal: {same})"),
        (PART, f"{label} session requests / minimum", f"{len(loaded.session_log)} / {session_minimum}"),
        (PART, f"{label} peak RSS", f"{run.peak_rss_mb:.0f} MB"),
        (PART, f"{label} server CPU busy", f"{busy:.0%}"),
        (PART, f"{label} sessions check", checks[0]),
        (PART, f"{label} messages check", checks[1]),
    ]


def step_peaks(run: harness.ChildRun) -> str:
    """The highest RSS the parent sampled during each pipeline step, and by package."""
    peaks: dict[str, list[float]] = {}
    for label, start, end in run.result.get("step_spans", []):
        sampled = max((rss for at, rss in run.rss_samples if start <= at <= end), default=0.0)
        peaks.setdefault(label, []).append(sampled)
    return ", ".join(
        f"{label} {max(values):.0f} MB"
        + (f" ({'/'.join(f'{value:.0f}' for value in values)})" if len(values) > 1 else "")
        for label, values in peaks.items()
    )


def split_figures(small: Loaded, pipeline: Loaded, floor: Loaded) -> list[Figure]:
    """Where each load's time went: the pipeline's extract + normalize by resource and its load
    steps; the floor's sessions and messages; and the pipelines' peak RSS by step."""
    spent = pipeline.run.result.get("resource_seconds", {})
    parts = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in spent.items())
    peaks = {loaded.label: step_peaks(loaded.run) for loaded in (small, pipeline)}
    seconds = {
        name: f"{value:.1f} s" for name, value in floor.run.result.items() if name.endswith("_seconds")
    }
    floor_parts = (
        f"sessions {seconds['sessions_seconds']}, messages {seconds['messages_seconds']} "
        f"(fetch {seconds['messages_fetch_seconds']}, insert {seconds['messages_insert_seconds']})"
    )
    say(f"   pipeline time by step (extract + normalize by resource; load of both): {parts}")
    say(f"   floor time: {floor_parts}")
    for label, peak in peaks.items():
        say(f"   {label} peak RSS by step: {peak}")
    return [
        (PART, "pipeline time by step", parts),
        (PART, "floor time by part", floor_parts),
        *[(PART, f"{label} peak RSS by step", peak) for label, peak in peaks.items()],
    ]


def ratio_figures(small: Loaded, full: Loaded, floor: Loaded) -> list[Figure]:
    """Time and memory of the pipeline over the floor, and the full backfill's memory over the small one's."""
    time_ratio = full.run.seconds / floor.run.seconds
    rss_ratio = full.run.peak_rss_mb / floor.run.peak_rss_mb
    growth = full.run.peak_rss_mb / small.run.peak_rss_mb
    flat = "yes" if abs(growth - 1) <= FLAT_RSS_SHARE else "NO"
    small_messages, full_messages = small.messages_loaded[0], full.messages_loaded[0]
    say(f"   pipeline/floor: time x{time_ratio:.2f}, peak RSS x{rss_ratio:.2f}")
    say(
        f"   memory: peak RSS {small.run.peak_rss_mb:.0f} MB at {small_messages:,} messages, "
        f"{full.run.peak_rss_mb:.0f} MB at {full_messages:,}: "
        f"x{growth:.2f} (within {FLAT_RSS_SHARE:.0%}: {flat})"
    )
    return [
        (PART, "time pipeline/floor", f"x{time_ratio:.2f}"),
        (PART, "peak RSS pipeline/floor", f"x{rss_ratio:.2f}"),
        (PART, "peak RSS full/small pipeline", f"x{growth:.2f} (within {FLAT_RSS_SHARE:.0%}: {flat})"),
    ]


def run_bench(sizes: Sizes, tmp: Path) -> list[Figure]:
    """Generate the data set, serve it, run the three backfills; their figures."""
    say(
        f"\n== (m) backfill of sessions and messages: {sizes.sessions:,} sessions, {sizes.bots} bots, "
        f"{sizes.days} days, messages page cap {sizes.page_cap:,}, no rate limits, DuckDB"
    )
    data = harness.make_data(sizes.sessions, sizes.bots, sizes.days, seed=SEED)
    describe_data(data)
    server = FastSandboxServer(
        data.sessions,
        apps=[harness.sandbox_app()],
        now=harness.NOW,
        page_cap=SESSION_PAGE_CAP,
        message_page_cap=sizes.page_cap,
    )
    began = time.perf_counter()
    index = server.encode_messages()
    harness.freeze_heap()
    encoded = time.perf_counter() - began
    say(f"   server: {index.messages:,} messages (v2, visible) derived and encoded in {encoded:.1f} s")
    with server:
        bench = Bench(data, server, index, tmp, sizes)
        small = load(bench, "small pipeline", harness.NOW - timedelta(days=sizes.small_days))
        full = load(bench, "pipeline", data.start)
        floor = load(bench, "floor", data.start, floor_of=full)
    figures = [(PART, "sessions generated (visible)", f"{len(data.sessions):,} ({data.visible:,})")]
    figures.append((PART, "messages served (v2, visible)", f"{index.messages:,}"))
    for loaded in (small, full, floor):
        figures += load_figures(loaded, data)
    return figures + split_figures(small, full, floor) + ratio_figures(small, full, floor)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its figures; 1 if a check failed."""
    sizes = sizes_from(parse_args(argv))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kore-bench-messages-") as folder:
        figures = run_bench(sizes, Path(folder))
    figures.append(("", "benchmark wall time", f"{time.perf_counter() - started:.0f} s"))
    print_table(figures)
    failed = any(
        value.startswith("MISMATCH") or (name.endswith("message requests / minimum") and "equal: NO" in value)
        for _, name, value in figures
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
