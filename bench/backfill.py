"""The backfill parts: (a) the pipeline into DuckDB against dlt alone and the floor, (p) the
same backfill into PostgreSQL against DuckDB, (r) the pipeline's peak memory at 200k and 1M
sessions. Parts a and p use one data set, one server and one DuckDB run of the pipeline when
they run together, so their ratios are measured in the same run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path

from kore_sessions.sandbox import RequestRecord

from bench import harness, postgres
from bench.fast_server import FastSandboxServer
from bench.jobs import DLT_ONLY, POSTGRES, REFERENCE, Job
from bench.parts import Figure, Sizes, base_job, check_rows, cpu_figure, describe_data, say

# The bounds of issue 20: the pipeline's time over dlt alone's, loading the same tables the
# same way (part a); PostgreSQL over DuckDB (part p); the pipeline's peak RSS of a 1M-session
# backfill, and over that of a 200k one (part r).
DLT_ALONE_RATIO_TARGET = 1.4
POSTGRES_RATIO_TARGET = 1.2
RSS_TARGET_MB = 400
RSS_FLAT_TARGET = 1.10
# The bound an independent check sets on `kore-sessions load` over a floor of 4 workers (part l),
# held against the pipeline over part a's floor too.
FLOOR_RATIO_TARGET = 2.5
# Part r's two backfills, as shares of part a's sessions (500k: 200k and 1M), with the same bots
# and days: five times the sessions a day.
RSS_SHARES = (0.4, 2.0)


@dataclass
class Backfill:
    """The data set, server and DuckDB pipeline run of parts a and p, each made once, on demand.

    Attributes:
        sizes: The sizes of the run.
        tmp: Folder of the children's files.
        stack: Closes the server at the end of the benchmark.
    """

    sizes: Sizes
    tmp: Path
    stack: ExitStack
    _data: harness.DataSet | None = None
    _server: FastSandboxServer | None = None
    _duckdb: tuple[harness.ChildRun, list[RequestRecord]] | None = field(default=None, repr=False)

    @property
    def data(self) -> harness.DataSet:
        """The generated sessions."""
        if self._data is None:
            a = self.sizes.a
            self._data = harness.make_data(a.sessions, a.bots, a.days, seed=7)
            describe_data(self._data)
        return self._data

    @property
    def server(self) -> FastSandboxServer:
        """The server of the data set, started (its pages encoded first, not timed)."""
        if self._server is None:
            began = time.perf_counter()
            server = FastSandboxServer(
                self.data.sessions,
                apps=[harness.sandbox_app()],
                now=harness.NOW,
                page_cap=self.sizes.a.page_cap,
            )
            self._server = self.stack.enter_context(server)
            say(f"   server: {self.data.visible} sessions encoded in {time.perf_counter() - began:.1f} s")
        return self._server

    def job(self, name: str) -> Job:
        """A pipeline job over every bot, in its own folder."""
        return base_job(self.server, self.data, self.tmp / name, page_size=self.sizes.a.page_cap)

    def run(self, job: Job) -> tuple[harness.ChildRun, list[RequestRecord]]:
        """Run a child against the server; its run and the requests it made."""
        self.server.clear_requests()
        run = harness.run_child(job)
        return run, self.server.requests

    def duckdb_run(self) -> tuple[harness.ChildRun, list[RequestRecord]]:
        """The pipeline's backfill into DuckDB (run once, shared by both parts)."""
        if self._duckdb is None:
            self._duckdb = self.run(self.job("pipeline-duckdb"))
        return self._duckdb


def part_a(backfill: Backfill) -> list[Figure]:
    """Backfill into DuckDB without limits: the pipeline against dlt alone and the floor."""
    sizes = backfill.sizes
    say(f"\n== (a) backfill of {sizes.a.sessions} sessions, {sizes.a.bots} bots, no rate limits, DuckDB")
    data, cap = backfill.data, sizes.a.page_cap
    pipeline, log = backfill.duckdb_run()
    floor_job = replace(backfill.job("floor"), kind=REFERENCE, windows=harness.owned_windows(log))
    floor_job = replace(floor_job, workers=pipeline_workers(floor_job))
    floor, floor_log = backfill.run(floor_job)
    figures = run_figures("a", "pipeline", pipeline, log, data, cap)
    figures += run_figures("a", "floor", floor, floor_log, data, cap)
    time_ratio = pipeline.seconds / floor.seconds
    rss_ratio = pipeline.peak_rss_mb / floor.peak_rss_mb
    within_time = "yes" if time_ratio <= FLOOR_RATIO_TARGET else "NO"
    say(f"   pipeline/floor: time x{time_ratio:.2f} (<= x{FLOOR_RATIO_TARGET}), peak RSS x{rss_ratio:.2f}")
    return [
        ("a", "sessions generated (visible)", f"{len(data.sessions)} ({data.visible})"),
        *figures,
        ("a", "time pipeline/floor", f"x{time_ratio:.2f} (<= x{FLOOR_RATIO_TARGET}: {within_time})"),
        ("a", "peak RSS pipeline/floor", f"x{rss_ratio:.2f}"),
        *dlt_only_figures(backfill, floor_job, pipeline, floor),
    ]


def dlt_only_figures(
    backfill: Backfill, floor_job: Job, pipeline: harness.ChildRun, floor: harness.ChildRun
) -> list[Figure]:
    """dlt's own load of the same sessions, handed over ready-made (`bench.dlt_only`): appended,
    as the pipeline's first backfill writes them (the bound), and merged, as later runs do."""
    figures: list[Figure] = []
    for disposition in ("append", "merge"):
        workdir = str(backfill.tmp / f"dlt-only-{disposition}")
        job = replace(floor_job, kind=DLT_ONLY, workdir=workdir, write_disposition=disposition)
        run, _ = backfill.run(job)
        verdict = check_rows(f"dlt alone ({disposition})", run, backfill.data)
        ratio = pipeline.seconds / run.seconds
        say(
            f"   dlt alone ({disposition}): {run.seconds:.1f} s to extract, normalize and {disposition} the "
            f"ready-made tables (prepared untimed in {run.result['prepare_seconds']:.1f} s), "
            f"x{run.seconds / floor.seconds:.2f} the floor; pipeline/dlt alone x{ratio:.2f}"
        )
        figures += [
            ("a", f"dlt alone ({disposition}) time", f"{run.seconds:.1f} s"),
            ("a", f"dlt alone ({disposition}) CPU", cpu_figure(run)),
            ("a", f"dlt alone ({disposition}) rows check", verdict),
        ]
        bound = ""
        if disposition == "append":  # the pipeline's first backfill appends: like for like
            bound = f" (<= x{DLT_ALONE_RATIO_TARGET}: {'yes' if ratio <= DLT_ALONE_RATIO_TARGET else 'NO'})"
            figures += cores_bound(floor, run)
        figures.append(("a", f"time pipeline/dlt alone ({disposition})", f"x{ratio:.2f}{bound}"))
    return figures


def cores_bound(floor: harness.ChildRun, dlt_alone: harness.ChildRun) -> list[Figure]:
    """The least time this machine's cores allow a pipeline that fetches as the floor does and
    loads as dlt alone does, over dlt alone's time: the CPU seconds of the floor's paging and
    parsing (not its insert) and of dlt alone added, with the parent's during the floor (the
    server's threads, which share the cores, and its RSS sampling), spread over every core
    the process may use (`sched_getaffinity`: a container's CPU quota is not seen) without a
    moment idle. Then the same with the pages' columnar build in place of the floor's flat rows
    (both timed on one thread over dlt alone's pages, `bench.build_clocks.BuildClocks`): the work
    the pipeline cannot leave out, since its tables come from its pages."""
    cores = len(os.sched_getaffinity(0))
    cpu = floor.result["fetch_cpu_seconds"] + dlt_alone.result["cpu_seconds"] + floor.sandbox_cpu_seconds
    columnar, flat = dlt_alone.result["build_cpu_seconds"], dlt_alone.result["flat_build_cpu_seconds"]
    least, with_build = cpu / cores, (cpu + columnar - flat) / cores
    ratios = (f"x{least / dlt_alone.seconds:.2f}", f"x{with_build / dlt_alone.seconds:.2f}")
    say(
        f"   on {cores} cores, fetching as the floor does and loading as dlt alone does takes at least "
        f"{least:.1f} s ({cpu:.1f} CPU s): {ratios[0]} dlt alone; with the pages' columnar build "
        f"({columnar:.1f} CPU s; {dlt_alone.result['pages_not_columnar']} pages not columnar) in place "
        f"of the floor's flat rows ({flat:.1f} CPU s): {with_build:.1f} s, {ratios[1]}"
    )
    return [
        ("a", f"least time on {cores} cores / dlt alone (append)", ratios[0]),
        ("a", "least time with the pages' build / dlt alone (append)", ratios[1]),
    ]


def part_r(backfill: Backfill) -> list[Figure]:
    """The pipeline's peak memory at 200k and 1M sessions (by default; same bots and days),
    each a run of its own data set and server."""
    small, large = (round(backfill.sizes.a.sessions * share) for share in RSS_SHARES)
    say(f"\n== (r) peak RSS of the pipeline at {small:,} and {large:,} sessions, DuckDB")
    peaks: list[float] = []
    figures: list[Figure] = []
    for sessions in (small, large):
        sizes = replace(backfill.sizes, a=replace(backfill.sizes.a, sessions=sessions))
        with ExitStack() as stack:
            sized = Backfill(sizes, backfill.tmp / f"rss-{sessions}", stack)
            run, log = sized.duckdb_run()
            figures += run_figures("r", f"pipeline {sessions:,}", run, log, sized.data, sizes.a.page_cap)
        peaks.append(run.peak_rss_mb)
    verdicts = peak_verdicts("r", (small, large), (peaks[0], peaks[1]))
    say(f"   peak RSS {peaks[1]:.0f} MB at {large:,}, x{peaks[1] / peaks[0]:.2f} that at {small:,}")
    return [*figures, *verdicts]


def peak_verdicts(part: str, sizes: tuple[int, int], peaks_mb: tuple[float, float]) -> list[Figure]:
    """The peak RSS bounds of a smaller and a larger backfill (`sizes`, sessions): the larger's
    peak against RSS_TARGET_MB, and over the smaller's against RSS_FLAT_TARGET."""
    (small, large), (small_mb, large_mb) = sizes, peaks_mb
    within = "yes" if large_mb <= RSS_TARGET_MB else "NO"
    flat = large_mb / small_mb
    flat_within = "yes" if flat <= RSS_FLAT_TARGET else "NO"
    return [
        (part, f"peak RSS at {large:,} <= {RSS_TARGET_MB} MB", within),
        (part, f"peak RSS {large:,} / {small:,}", f"x{flat:.2f} (<= x{RSS_FLAT_TARGET}: {flat_within})"),
    ]


def part_p(backfill: Backfill) -> list[Figure]:
    """The same backfill into PostgreSQL, against the pipeline's DuckDB time of this run."""
    sizes = backfill.sizes
    say(f"\n== (p) backfill of {sizes.a.sessions} sessions into PostgreSQL, against DuckDB")
    why_not = postgres.unreachable(postgres.POSTGRES_URL)
    if why_not:
        say(f"   skipped: PostgreSQL does not answer ({why_not})")
        return [("p", "PostgreSQL", f"skipped ({why_not[:60]})")]
    data, cap = backfill.data, sizes.a.page_cap
    duckdb, _ = backfill.duckdb_run()
    job = replace(
        backfill.job("pipeline-postgres"),
        destination=POSTGRES,
        postgres_url=postgres.POSTGRES_URL,
        dataset=f"kore_bench_{os.getpid()}",
    )
    postgres.drop_dataset(postgres.POSTGRES_URL, job.dataset)
    try:
        run, log = backfill.run(job)
    finally:
        postgres.drop_dataset(postgres.POSTGRES_URL, job.dataset)
    figures = run_figures("p", "postgres", run, log, data, cap)
    ratio = run.seconds / duckdb.seconds
    within = "yes" if ratio <= POSTGRES_RATIO_TARGET else "NO"
    say(
        f"   PostgreSQL/DuckDB: time x{ratio:.2f} ({run.seconds:.1f} s vs {duckdb.seconds:.1f} s, "
        f"loader file format {run.result.get('file_format')}; target <= x{POSTGRES_RATIO_TARGET})"
    )
    return [
        *figures,
        ("p", "loader file format", str(run.result.get("file_format"))),
        ("p", "time PostgreSQL/DuckDB", f"x{ratio:.2f} (<= x{POSTGRES_RATIO_TARGET}: {within})"),
    ]


def pipeline_workers(job: Job) -> int:
    """Threads of the pipeline's request pool for a job's bots (as `extract.fetch_concurrently`)."""
    from kore_sessions.source.api.rules import MAX_WORKERS

    return min(MAX_WORKERS, job.max_in_flight * max(1, len(job.bots)))


def run_figures(
    part: str,
    label: str,
    run: harness.ChildRun,
    log: Sequence[RequestRecord],
    data: harness.DataSet,
    cap: int,
) -> list[Figure]:
    """Figures of one backfill, printed as well."""
    made = len(harness.api_requests(log))
    minimum, windows = harness.minimum_requests(log, data, cap)
    rate = run.result["rows"] / run.seconds
    sandbox_busy = run.sandbox_cpu_seconds / run.wall_seconds
    say(
        f"   {label}: {run.seconds:.1f} s, {rate:,.0f} sessions/s, {made} requests "
        f"(minimum {minimum} for {windows} windows), peak RSS {run.peak_rss_mb:.0f} MB, "
        f"server CPU {sandbox_busy:.0%} of the child's {run.wall_seconds:.1f} s"
    )
    if "steps" in run.result:
        steps = ", ".join(
            f"{step} {run.step_seconds(step):.1f} s (RSS up to {run.step_peak_rss_mb(step):.0f} MB)"
            for step in run.result["steps"]
        )
        say(f"   {label} steps of its last load package (of {run.result.get('packages', 1)}): {steps}")
    verdict = check_rows(label, run, data)
    return [
        (part, f"{label} time", f"{run.seconds:.1f} s"),
        (part, f"{label} CPU", cpu_figure(run)),
        (part, f"{label} sessions/s", f"{rate:,.0f}"),
        (part, f"{label} requests / minimum", f"{made} / {minimum}"),
        (part, f"{label} peak RSS", f"{run.peak_rss_mb:.0f} MB"),
        (part, f"{label} server CPU busy", f"{sandbox_busy:.0%}"),
        (part, f"{label} rows check", verdict),
    ]
