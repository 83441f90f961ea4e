"""Part l: `kore-sessions load` run as its users run it, models built after the load, against
the bench's server with Kore's rate limits lifted (`--requests-per-minute`,
`--requests-per-hour`): the whole command's time at part a's sessions over two floors of the
same windows, and the command's peak RSS there and at part r's larger size. An independent check
times and measures the command this way, against a floor of 4 workers parsing with the standard
library's json (the bound); part a's floor (the pipeline's 8 workers, orjson) is faster.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

from bench import harness
from bench.backfill import FLOOR_RATIO_TARGET, RSS_SHARES, RSS_TARGET_MB, Backfill
from bench.jobs import CLIENT_ID, CLIENT_SECRET, UNLIMITED, Job
from bench.parts import Figure, check_rows, say

# The independent check's floor: 4 request threads in all, pages parsed by the standard library.
CHECK_FLOOR_WORKERS = 4
CHECK_FLOOR_PARSER = "json"


@dataclass(frozen=True)
class CommandRun:
    """One `kore-sessions load`: its whole time (start-up, load, models), peak RSS and rows."""

    seconds: float
    peak_rss_mb: float
    rows: int
    distinct_ids: int


def load_command(job: Job) -> list[str]:
    """The command line of a first backfill of the job's bots into its DuckDB file."""
    bots = [argument for bot in job.bots for argument in ("--bot", bot)]
    return [
        sys.executable, "-m", "kore_sessions.cli", "load", "--host", job.host, *bots,
        "--start", job.start, "--duckdb-file", str(job.duckdb_path), "--dataset", job.dataset,
        "--pipelines-dir", str(Path(job.workdir) / "pipelines"), "--page-size", str(job.page_size),
        "--requests-per-minute", str(UNLIMITED), "--requests-per-hour", str(UNLIMITED), "--quiet",
    ]  # fmt: skip


def run_command(job: Job) -> CommandRun:
    """Run the command in a child of `bench.command_peak` (its own peak RSS); raises if it fails."""
    workdir = Path(job.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    result = workdir / "command.json"
    env = {
        **os.environ,
        "RUNTIME__DLTHUB_TELEMETRY": "false",
        "SOURCES__KORE_SESSIONS__CREDENTIALS__CLIENT_ID": CLIENT_ID,
        "SOURCES__KORE_SESSIONS__CREDENTIALS__CLIENT_SECRET": CLIENT_SECRET,
    }
    command = [sys.executable, "-m", "bench.command_peak", str(result), *load_command(job)]
    with (workdir / "command.log").open("wb") as log:
        subprocess.run(
            command, cwd=harness.REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, check=True
        )
    figures = json.loads(result.read_text())
    if figures["returncode"] != 0:
        tail = (workdir / "command.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"kore-sessions load failed (exit {figures['returncode']}):\n{tail}")
    rows, distinct = harness.loaded_rows(job)
    return CommandRun(figures["seconds"], figures["peak_rss_kb"] / 1024, rows, distinct)


def described(label: str, run: CommandRun, data: harness.DataSet) -> list[Figure]:
    """The figures of one command run (its rows check among them), printed as well."""
    verdict = "ok" if run.rows == run.distinct_ids == data.visible else "MISMATCH"
    say(
        f"   {label}: {run.seconds:.1f} s, peak RSS {run.peak_rss_mb:.0f} MB; {run.rows} rows, "
        f"{run.distinct_ids} distinct ids, {data.visible} visible in the sandbox: {verdict}"
    )
    if verdict != "ok":
        verdict = f"MISMATCH {run.rows}/{run.distinct_ids} vs {data.visible}"
    return [
        ("l", f"{label} time", f"{run.seconds:.1f} s"),
        ("l", f"{label} peak RSS", f"{run.peak_rss_mb:.0f} MB"),
        ("l", f"{label} rows check", verdict),
    ]


def part_l(backfill: Backfill) -> list[Figure]:
    """The command at part a's sessions (over the floor of the same data) and at part r's larger
    size (its peak RSS against the bound)."""
    large = round(backfill.sizes.a.sessions * RSS_SHARES[1])
    sessions = backfill.sizes.a.sessions
    say(f"\n== (l) kore-sessions load with its models, {sessions:,} and {large:,} sessions, DuckDB")
    floor_job, floor, _ = backfill.floor_run()
    check_job = replace(floor_job, workdir=str(backfill.tmp / "check-floor"), workers=CHECK_FLOOR_WORKERS)
    check_floor, _ = backfill.run(replace(check_job, parser=CHECK_FLOOR_PARSER))
    check_verdict = check_rows("check's floor", check_floor, backfill.data)
    run = run_command(backfill.job("command"))
    figures = described(f"command {sessions:,}", run, backfill.data)
    check_ratio, ratio = run.seconds / check_floor.seconds, run.seconds / floor.seconds
    within = "yes" if check_ratio <= FLOOR_RATIO_TARGET else "NO"
    say(
        f"   command/floor: time x{check_ratio:.2f} over the check's floor ({run.seconds:.1f} s against "
        f"{check_floor.seconds:.1f} s), x{ratio:.2f} over part a's ({floor.seconds:.1f} s)"
    )
    figures += [
        ("l", "check's floor time (4 workers, json)", f"{check_floor.seconds:.1f} s"),
        ("l", "check's floor rows check", check_verdict),
        ("l", "time command/check's floor", f"x{check_ratio:.2f} (<= x{FLOOR_RATIO_TARGET}: {within})"),
        ("l", "time command/part a's floor", f"x{ratio:.2f}"),
    ]
    sizes = replace(backfill.sizes, a=replace(backfill.sizes.a, sessions=large))
    with ExitStack() as stack:
        sized = Backfill(sizes, backfill.tmp / f"command-{large}", stack)
        large_run = run_command(sized.job("command"))
        large_figures = described(f"command {large:,}", large_run, sized.data)
    within = "yes" if large_run.peak_rss_mb <= RSS_TARGET_MB else "NO"
    return [*figures, *large_figures, ("l", f"peak RSS at {large:,} <= {RSS_TARGET_MB} MB", within)]
