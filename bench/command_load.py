"""Part l: `kore-sessions load` run as its users run it, models built after the load, against
the bench's server with Kore's rate limits lifted (`--requests-per-minute`,
`--requests-per-hour`): the whole command's time at part a's sessions over a floor like the
independent check's (4 workers, pages parsed by the standard library's json), and the command's
peak RSS there and at part r's two sizes (its larger over its smaller), with the model builds
it ran again for want of DuckDB memory (each of those raises the peak). The independent check
times and measures the command this way.

The command runs on this machine's clock, the sandbox on `harness.NOW` (the last Sunday noon
before the run): the command also pages the empty windows between the two (none to a week's), so
the floor pages the windows the command asked for.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from kore_sessions.sandbox import RequestRecord
from kore_sessions.warehouse.build_memory import REBUILD_NOTICE

from bench import harness
from bench.backfill import FLOOR_RATIO_TARGET, RSS_SHARES, Backfill, peak_verdicts
from bench.jobs import CLIENT_ID, CLIENT_SECRET, REFERENCE, UNLIMITED, Job
from bench.parts import Figure, check_rows, rows_verdict, say

# The independent check's floor: 4 request threads in all, pages parsed by the standard library.
CHECK_FLOOR_WORKERS = 4
CHECK_FLOOR_PARSER: Literal["json"] = "json"
# A line of the command's output that says a model build was run again (its MB a number).
REBUILT = re.compile(re.escape(REBUILD_NOTICE).replace(re.escape("%s"), r"\d+") + "$", re.MULTILINE)


@dataclass(frozen=True)
class CommandRun:
    """One `kore-sessions load`: its whole time (start-up, load, models), peak RSS, rows and
    model builds run again under more memory."""

    seconds: float
    peak_rss_mb: float
    rows: int
    distinct_ids: int
    rebuilds: int


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
        **harness.child_env(workdir),
        "SOURCES__KORE_SESSIONS__CREDENTIALS__CLIENT_ID": CLIENT_ID,
        "SOURCES__KORE_SESSIONS__CREDENTIALS__CLIENT_SECRET": CLIENT_SECRET,
    }
    command = [sys.executable, "-m", "bench.command_peak", str(result), *load_command(job)]
    with (workdir / "command.log").open("wb") as log:
        subprocess.run(
            command, cwd=harness.REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, check=True
        )
    figures = json.loads(result.read_text())
    output = (workdir / "command.log").read_text(errors="replace")
    if figures["returncode"] != 0:
        raise RuntimeError(f"kore-sessions load failed (exit {figures['returncode']}):\n{output[-3000:]}")
    rows, distinct = harness.loaded_rows(job)
    return CommandRun(
        figures["seconds"], figures["peak_rss_kb"] / 1024, rows, distinct, model_rebuilds(output)
    )


def model_rebuilds(output: str) -> int:
    """How many lines of the command's output say its model build ran out of DuckDB's memory and
    was built again (`build_memory.REBUILD_NOTICE`, a warning: printed under `--quiet` too)."""
    return len(REBUILT.findall(output))


def command_figures(backfill: Backfill, label: str) -> tuple[CommandRun, list[RequestRecord], list[Figure]]:
    """Run the command over the backfill's data and server; its run, its requests and its figures
    (printed as well)."""
    backfill.server.clear_requests()
    run = run_command(backfill.job("command"))
    log = backfill.server.requests
    made = len(harness.api_requests(log))
    minimum, windows = harness.minimum_requests(log, backfill.data, backfill.sizes.a.page_cap)
    say(
        f"   {label}: {run.seconds:.1f} s, peak RSS {run.peak_rss_mb:.0f} MB, "
        f"{made} requests (minimum {minimum})"
    )
    verdict = rows_verdict(label, run.rows, run.distinct_ids, backfill.data)
    return (
        run,
        log,
        [
            ("l", f"{label} time", f"{run.seconds:.1f} s"),
            ("l", f"{label} peak RSS", f"{run.peak_rss_mb:.0f} MB"),
            ("l", f"{label} requests / minimum", f"{made} / {minimum} ({windows} windows)"),
            ("l", f"{label} rows check", verdict),
            ("l", f"{label} model builds run again", str(run.rebuilds)),
        ],
    )


def part_l(backfill: Backfill) -> list[Figure]:
    """The command at part a's sessions (over the check's floor of the same windows) and at part
    r's two sizes (the larger's peak RSS against the bound and over the smaller's)."""
    sessions = backfill.sizes.a.sessions
    small, large = (round(sessions * share) for share in RSS_SHARES)
    say(
        f"\n== (l) kore-sessions load with its models, {small:,}, {sessions:,} and {large:,} sessions, DuckDB"
    )
    run, log, figures = command_figures(backfill, f"command {sessions:,}")
    floor_job = replace(backfill.job("check-floor"), kind=REFERENCE, windows=harness.owned_windows(log))
    floor_job = replace(floor_job, workers=CHECK_FLOOR_WORKERS, parser=CHECK_FLOOR_PARSER)
    floor, _ = backfill.run(floor_job)
    ratio = run.seconds / floor.seconds
    within = "yes" if ratio <= FLOOR_RATIO_TARGET else "NO"
    say(f"   command/floor: time x{ratio:.2f} ({run.seconds:.1f} s against {floor.seconds:.1f} s)")
    figures += [
        ("l", f"check's floor time ({CHECK_FLOOR_WORKERS} workers, json)", f"{floor.seconds:.1f} s"),
        ("l", "check's floor rows check", check_rows("check's floor", floor, backfill.data)),
        ("l", "time command/check's floor", f"x{ratio:.2f} (<= x{FLOOR_RATIO_TARGET}: {within})"),
    ]
    small_run, small_figures = sized_command(backfill, small)
    large_run, large_figures = sized_command(backfill, large)
    peaks = (small_run.peak_rss_mb, large_run.peak_rss_mb)
    return [*figures, *small_figures, *large_figures, *peak_verdicts("l", (small, large), peaks)]


def sized_command(backfill: Backfill, sessions: int) -> tuple[CommandRun, list[Figure]]:
    """The command over a data set of its own of `sessions` sessions (part a's bots and days),
    with its server; its run and figures."""
    sizes = replace(backfill.sizes, a=replace(backfill.sizes.a, sessions=sessions))
    with ExitStack() as stack:
        run, _, figures = command_figures(
            Backfill(sizes, backfill.tmp / f"l-{sessions}", stack), f"command {sessions:,}"
        )
    return run, figures
