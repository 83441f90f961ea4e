"""Sizes and shared helpers of the parts, and parts b (latency) and c (rate limits); the backfill
parts a and p are in `bench.backfill`. Each part prints as it goes and returns its figures."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from kore_sessions.sandbox import RateLimit, RequestRecord, SandboxServer

from bench.fast_server import FastSandboxServer
from bench.harness import (
    NOW,
    ChildRun,
    DataSet,
    api_requests,
    make_data,
    minimum_requests,
    run_child,
    sandbox_app,
)
from bench.jobs import PIPELINE, Job

# (part, figure, value) rows of the closing table.
Figure = tuple[str, str, str]
# Kore's limits (60 a minute, 1800 an hour per bot) with a minute of 2 s.
SCALED_LIMITS = RateLimit(per_minute=60, per_hour=1800, seconds_per_minute=2.0)


@dataclass(frozen=True)
class Data:
    """The generated history of one part: sessions in all, over bots and days, and the page cap."""

    sessions: int
    bots: int
    days: int
    page_cap: int


@dataclass(frozen=True)
class Sizes:
    """Sizes of the parts (a and p share the backfill's), b's latency, c's rate limits and how
    many times part l runs the command and its floor in turn (the median pair's ratio is its
    figure: on these machines one run of either can take twice another's time)."""

    a: Data = Data(sessions=500_000, bots=5, days=120, page_cap=1000)
    b: Data = Data(sessions=30_000, bots=2, days=30, page_cap=100)
    c: Data = Data(sessions=24_000, bots=2, days=30, page_cap=10)
    b_latency: float = 0.2
    c_rate: RateLimit = SCALED_LIMITS
    l_pairs: int = 3


FULL = Sizes()
QUICK = Sizes(a=Data(20_000, 2, 30, 1000), b=Data(4_000, 2, 30, 100), c=Data(3_000, 2, 30, 10), l_pairs=2)


def say(text: str) -> None:
    """Print a progress line at once."""
    print(text, flush=True)


def check_rows(label: str, run: ChildRun, data: DataSet) -> str:
    """``ok`` when the child's load holds every visible session once, else the gap."""
    return rows_verdict(label, run.result["rows"], run.result["distinct_ids"], data)


def rows_verdict(label: str, rows: int, distinct: int, data: DataSet) -> str:
    """``ok`` when a load of ``rows`` rows and ``distinct`` session ids holds every visible session
    once, else a description of the gap (printed as well)."""
    verdict = "ok" if rows == distinct == data.visible else "MISMATCH"
    say(f"   {label}: {rows} rows, {distinct} distinct ids, {data.visible} visible in the sandbox: {verdict}")
    return verdict if verdict == "ok" else f"MISMATCH {rows}/{distinct} vs {data.visible}"


def base_job(server: SandboxServer, data: DataSet, workdir: Path, page_size: int) -> Job:
    """A pipeline job over every bot of the data set, without limits."""
    return Job(
        kind=PIPELINE,
        host=server.url,
        bots=data.bots,
        start=data.start.isoformat(),
        now=NOW.isoformat(),
        workdir=str(workdir),
        page_size=page_size,
    )


def describe_data(data: DataSet) -> None:
    """One line on the generated data set."""
    say(
        f"   generated {len(data.sessions)} sessions ({data.visible} visible) of {len(data.bots)} bots "
        f"in {data.seconds:.1f} s"
    )


# part b ----------------------------------------------------------------------


def part_b(sizes: Sizes, tmp: Path) -> list[Figure]:
    """Latency per request: concurrent (max_in_flight=4) against sequential (1) fetching."""
    say(
        f"\n== (b) {sizes.b_latency * 1000:.0f} ms latency, {sizes.b.bots} bots x "
        f"{sizes.b.sessions // sizes.b.bots} sessions, page cap {sizes.b.page_cap}"
    )
    data = make_data(sizes.b.sessions, sizes.b.bots, sizes.b.days, seed=8)
    describe_data(data)
    runs: dict[int, ChildRun] = {}
    verdicts: list[str] = []
    with FastSandboxServer(data.sessions, apps=[sandbox_app()], now=NOW, page_cap=sizes.b.page_cap) as server:
        server.set_latency(sizes.b_latency)
        for in_flight in (1, 4):
            runs[in_flight], verdict = _b_run(server, data, in_flight, tmp, sizes.b.page_cap)
            verdicts.append(verdict)
    speedup = runs[1].seconds / runs[4].seconds
    extract = {in_flight: run.step_seconds("extract") for in_flight, run in runs.items()}
    extract_speedup = extract[1] / extract[4]
    say(f"   speed-up of 4 in flight over sequential: x{speedup:.2f} (extract step: x{extract_speedup:.2f})")
    return [
        ("b", "sequential (max_in_flight=1)", f"{runs[1].seconds:.1f} s (extract {extract[1]:.1f} s)"),
        ("b", "concurrent (max_in_flight=4)", f"{runs[4].seconds:.1f} s (extract {extract[4]:.1f} s)"),
        ("b", "speed-up concurrent/sequential", f"x{speedup:.2f} (extract x{extract_speedup:.2f})"),
        ("b", "rows check", "ok" if verdicts == ["ok", "ok"] else "; ".join(verdicts)),
    ]


def _b_run(server: SandboxServer, data: DataSet, in_flight: int, tmp: Path, cap: int) -> tuple[ChildRun, str]:
    """One load of part b with ``in_flight`` requests a bot; returns it and its row check."""
    job = replace(base_job(server, data, tmp / f"b-{in_flight}", 1000), max_in_flight=in_flight)
    run = run_child(job)
    log = server.requests
    server.clear_requests()
    minimum, _ = minimum_requests(log, data, cap)
    say(
        f"   max_in_flight={in_flight}: {run.seconds:.1f} s (extract {run.step_seconds('extract'):.1f} s), "
        f"{len(api_requests(log))} requests (minimum {minimum})"
    )
    return run, check_rows(f"max_in_flight={in_flight}", run, data)


# part c ----------------------------------------------------------------------


def part_c(sizes: Sizes, tmp: Path) -> list[Figure]:
    """Scaled-down rate limits: achieved share of the allowed rate per bot and 429 answers."""
    limit = sizes.c_rate
    say(
        f"\n== (c) rate limits {limit.per_minute}/{limit.seconds_per_minute:g} s and "
        f"{limit.per_hour}/{60 * limit.seconds_per_minute:g} s per bot, {sizes.c.bots} bots x "
        f"{sizes.c.sessions // sizes.c.bots} sessions, page cap {sizes.c.page_cap}"
    )
    data = make_data(sizes.c.sessions, sizes.c.bots, sizes.c.days, seed=9)
    describe_data(data)
    server = FastSandboxServer(
        data.sessions, apps=[sandbox_app()], now=NOW, page_cap=sizes.c.page_cap, rate_limit=limit
    )
    with server:
        job = replace(
            base_job(server, data, tmp / "c-pipeline", 1000),
            requests_per_minute=limit.per_minute,
            requests_per_hour=limit.per_hour,
            seconds_per_minute=limit.seconds_per_minute,
        )
        run = run_child(job)
        log = api_requests(server.requests)
    say(f"   pipeline: {run.seconds:.1f} s, {len(log)} requests")
    verdict = check_rows("pipeline", run, data)
    shares = [_bot_rate(bot, records, limit) for bot, records in _by_bot(log).items()]
    rejected = sum(1 for record in log if record.status == 429)
    say(f"   429 answers: {rejected}")
    return [
        ("c", "share of allowed rate per bot", ", ".join(f"{share:.0%}" for share in shares)),
        ("c", "429 answers", str(rejected)),
        ("c", "time", f"{run.seconds:.1f} s"),
        ("c", "rows check", verdict),
    ]


def _by_bot(log: Sequence[RequestRecord]) -> dict[str, list[RequestRecord]]:
    grouped: dict[str, list[RequestRecord]] = defaultdict(list)
    for record in log:
        grouped[str(record.bot_id)].append(record)
    return grouped


def allowed_in_span(span: float, limit: RateLimit) -> int:
    """Most requests a rolling limit admits between a first and a last one ``span`` seconds apart."""
    minute = limit.seconds_per_minute
    by_minute = limit.per_minute * (math.floor(span / minute) + 1)
    by_hour = limit.per_hour * (math.floor(span / (60 * minute)) + 1)
    return min(by_minute, by_hour)


def _bot_rate(bot: str, records: Sequence[RequestRecord], limit: RateLimit) -> float:
    """Print one bot's achieved rate and return its share of what the limits allow."""
    admitted = sorted(record.at for record in records if record.status == 200)
    span = (admitted[-1] - admitted[0]).total_seconds() if admitted else 0.0
    share = len(admitted) / allowed_in_span(span, limit)
    rate = (len(admitted) - 1) / span if span else 0.0
    allowed_rate = limit.per_minute / limit.seconds_per_minute
    say(
        f"   bot {bot[:12]}..: {len(admitted)} admitted in {span:.1f} s = {rate:.1f} req/s "
        f"(limit {allowed_rate:g} req/s; {share:.0%} of the {allowed_in_span(span, limit)} the limits allow)"
    )
    return share


def cpu_figure(run: ChildRun) -> str:
    """A child's CPU seconds over its timed span (every thread), and the cores that kept busy."""
    cpu = run.result["cpu_seconds"]
    return f"{cpu:.1f} s ({cpu / run.seconds:.2f} cores)"
