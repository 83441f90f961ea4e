"""The three parts of the benchmark; each prints as it goes and returns its figures."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from bench.harness import (
    NOW,
    ChildRun,
    DataSet,
    api_requests,
    make_data,
    minimum_requests,
    owned_windows,
    run_child,
    sandbox_app,
)
from bench.jobs import PIPELINE, REFERENCE, Job
from sandbox import RateLimit, RequestRecord, SandboxServer

# (part, figure, value) rows of the closing table.
Figure = tuple[str, str, str]
ISSUE_RSS_LIMIT_MB = 500
# Kore's limits (60 a minute, 1800 an hour per bot) with a minute of 2 s.
SCALED_LIMITS = RateLimit(per_minute=60, per_hour=1800, seconds_per_minute=2.0)


@dataclass(frozen=True)
class Sizes:
    """Sizes of the three parts."""

    a_sessions: int = 500_000
    a_bots: int = 5
    a_days: int = 120
    a_page_cap: int = 1000
    b_bots: int = 2
    b_sessions_per_bot: int = 15_000
    b_days: int = 30
    b_page_cap: int = 100
    b_latency: float = 0.2
    c_bots: int = 2
    c_sessions_per_bot: int = 12_000
    c_days: int = 30
    c_page_cap: int = 10
    c_rate: RateLimit = SCALED_LIMITS


FULL = Sizes()
QUICK = Sizes(a_sessions=20_000, a_bots=2, a_days=30, b_sessions_per_bot=2_000, c_sessions_per_bot=1_500)


def say(text: str) -> None:
    """Print a progress line at once."""
    print(text, flush=True)


def check_rows(label: str, run: ChildRun, data: DataSet) -> str:
    """``ok`` when the load holds every visible session once, else a description of the gap."""
    rows, distinct = run.result["rows"], run.result["distinct_ids"]
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


# part a ----------------------------------------------------------------------


def part_a(sizes: Sizes, tmp: Path) -> list[Figure]:
    """Full backfill without limits: throughput, requests vs minimum, peak RSS, vs the reference."""
    say(f"\n== (a) backfill of {sizes.a_sessions} sessions, {sizes.a_bots} bots, no rate limits")
    data = make_data(sizes.a_sessions, sizes.a_bots, sizes.a_days, seed=7)
    describe_data(data)
    cap = sizes.a_page_cap
    with SandboxServer(data.sessions, apps=[sandbox_app()], now=NOW, page_cap=cap) as server:
        job = base_job(server, data, tmp / "a-pipeline", page_size=cap)
        pipeline = run_child(job)
        pipeline_log = server.requests
        server.clear_requests()
        reference_job = replace(job, kind=REFERENCE, workdir=str(tmp / "a-reference"))
        reference = run_child(replace(reference_job, windows=owned_windows(pipeline_log)))
        reference_log = server.requests
    figures = _a_run_figures("pipeline", pipeline, pipeline_log, data, cap)
    figures += _a_run_figures("reference", reference, reference_log, data, cap)
    figures += _a_ratios(pipeline, reference)
    return [("a", "sessions generated (visible)", f"{len(data.sessions)} ({data.visible})"), *figures]


def _a_run_figures(
    label: str, run: ChildRun, log: Sequence[RequestRecord], data: DataSet, cap: int
) -> list[Figure]:
    """Figures of one load of part a, printed as well."""
    made = len(api_requests(log))
    minimum, windows = minimum_requests(log, data, cap)
    rate = run.result["rows"] / run.seconds
    sandbox_busy = run.sandbox_cpu_seconds / run.wall_seconds
    say(
        f"   {label}: {run.seconds:.1f} s, {rate:,.0f} sessions/s, {made} requests "
        f"(minimum {minimum} for {windows} windows), peak RSS {run.peak_rss_mb:.0f} MB, "
        f"sandbox CPU {sandbox_busy:.0%} of the child's {run.wall_seconds:.1f} s"
    )
    if "steps" in run.result:
        steps = ", ".join(
            f"{step} {run.step_seconds(step):.1f} s (RSS up to {run.step_peak_rss_mb(step):.0f} MB)"
            for step in run.result["steps"]
        )
        packages = run.result.get("packages", 1)
        say(f"   {label} steps of its last load package (of {packages}): {steps}")
    verdict = check_rows(label, run, data)
    return [
        ("a", f"{label} time", f"{run.seconds:.1f} s"),
        ("a", f"{label} sessions/s", f"{rate:,.0f}"),
        ("a", f"{label} requests / minimum", f"{made} / {minimum}"),
        ("a", f"{label} peak RSS", f"{run.peak_rss_mb:.0f} MB"),
        ("a", f"{label} sandbox CPU busy", f"{sandbox_busy:.0%}"),
        ("a", f"{label} rows check", verdict),
    ]


def _a_ratios(pipeline: ChildRun, reference: ChildRun) -> list[Figure]:
    """Pipeline over reference, time and peak RSS, and the issue's memory bound."""
    time_ratio = pipeline.seconds / reference.seconds
    rss_ratio = pipeline.peak_rss_mb / reference.peak_rss_mb
    within = "yes" if pipeline.peak_rss_mb < ISSUE_RSS_LIMIT_MB else "NO"
    say(f"   pipeline/reference: time x{time_ratio:.2f}, peak RSS x{rss_ratio:.2f}")
    say(
        f"   PEAK RSS of the pipeline process: {pipeline.peak_rss_mb:.0f} MB "
        f"(< {ISSUE_RSS_LIMIT_MB} MB: {within})"
    )
    return [
        ("a", "time pipeline/reference", f"x{time_ratio:.2f}"),
        ("a", "peak RSS pipeline/reference", f"x{rss_ratio:.2f}"),
        ("a", f"pipeline peak RSS < {ISSUE_RSS_LIMIT_MB} MB", within),
    ]


# part b ----------------------------------------------------------------------


def part_b(sizes: Sizes, tmp: Path) -> list[Figure]:
    """Latency per request: concurrent (max_in_flight=4) against sequential (1) fetching."""
    say(
        f"\n== (b) {sizes.b_latency * 1000:.0f} ms latency, {sizes.b_bots} bots x "
        f"{sizes.b_sessions_per_bot} sessions, page cap {sizes.b_page_cap}"
    )
    data = make_data(sizes.b_sessions_per_bot * sizes.b_bots, sizes.b_bots, sizes.b_days, seed=8)
    describe_data(data)
    runs: dict[int, ChildRun] = {}
    verdicts: list[str] = []
    with SandboxServer(data.sessions, apps=[sandbox_app()], now=NOW, page_cap=sizes.b_page_cap) as server:
        server.set_latency(sizes.b_latency)
        for in_flight in (1, 4):
            runs[in_flight], verdict = _b_run(server, data, in_flight, tmp, sizes.b_page_cap)
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
        f"{limit.per_hour}/{60 * limit.seconds_per_minute:g} s per bot, {sizes.c_bots} bots x "
        f"{sizes.c_sessions_per_bot} sessions, page cap {sizes.c_page_cap}"
    )
    data = make_data(sizes.c_sessions_per_bot * sizes.c_bots, sizes.c_bots, sizes.c_days, seed=9)
    describe_data(data)
    server = SandboxServer(
        data.sessions, apps=[sandbox_app()], now=NOW, page_cap=sizes.c_page_cap, rate_limit=limit
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
