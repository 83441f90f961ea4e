"""Part l: `kore-sessions load` run as its users run it, models built after the load, against
the bench's server with Kore's rate limits lifted (`--requests-per-minute`,
`--requests-per-hour`): the whole command's time at part a's sessions over a floor like the
independent check's (4 workers, pages parsed by the standard library's json), and the command's
peak RSS there and at part r's two sizes (its larger over its smaller), with the model builds
it ran again for want of DuckDB memory (each of those raises the peak). The independent check
times and measures the command this way.

At part a's sessions the command and its floor run in turn, `Sizes.l_pairs` times, and the
median pair's ratio is the figure: on these machines one run of either took up to twice
another's time within the hour (the floor 5.3 to 10.5 s), and a pair run back to back shares
the machine's pace of the moment.

The command runs on this machine's clock, the sandbox on `harness.NOW` (the last Sunday noon
before the run): the command also pages the empty windows between the two (none to a week's), so
the floor pages the windows the command asked for.
"""

from __future__ import annotations

import json
import re
import statistics
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


def command_figures(
    backfill: Backfill, label: str, name: str = "command"
) -> tuple[CommandRun, list[RequestRecord], list[Figure]]:
    """Run the command over the backfill's data and server, in the job folder `name`; its run,
    its requests and its figures (printed as well)."""
    backfill.server.clear_requests()
    run = run_command(backfill.job(name))
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


@dataclass(frozen=True)
class Pair:
    """One run of the command and one of the check's floor over the windows it asked for, in turn."""

    command: CommandRun
    figures: list[Figure]
    floor: harness.ChildRun
    floor_rows: str

    @property
    def ratio(self) -> float:
        """The command's time over the floor's."""
        return self.command.seconds / self.floor.seconds


def run_pair(backfill: Backfill, label: str, number: int) -> Pair:
    """The command (job folder `command-<number>`), then the check's floor of the windows it asked
    for; each printed."""
    run, log, figures = command_figures(backfill, label, f"command-{number}")
    floor_job = replace(
        backfill.job(f"check-floor-{number}"),
        kind=REFERENCE,
        windows=harness.owned_windows(log),
        workers=CHECK_FLOOR_WORKERS,
        parser=CHECK_FLOOR_PARSER,
    )
    floor, _ = backfill.run(floor_job)
    rows = check_rows("check's floor", floor, backfill.data)
    times = f"{run.seconds:.1f} s against {floor.seconds:.1f} s"
    say(f"   command/floor: time x{run.seconds / floor.seconds:.2f} ({times})")
    return Pair(run, figures, floor, rows)


def pair_figures(label: str, pairs: list[Pair]) -> list[Figure]:
    """The figures of the command and its floor run in turn: each time, the median pair's ratio
    against the bound, and every run's checks (the first failing one, else ok)."""
    by_name: dict[str, list[str]] = {}
    for pair in pairs:
        for _, name, value in pair.figures:
            by_name.setdefault(name, []).append(value)
    ratios = sorted(pair.ratio for pair in pairs)
    ratio = statistics.median(ratios)
    within = "yes" if ratio <= FLOOR_RATIO_TARGET else "NO"
    each = ", ".join(f"x{value:.2f}" for value in ratios)
    verdict = f"x{ratio:.2f} (<= x{FLOOR_RATIO_TARGET}: {within}); pairs {each}"
    peak = max(pair.command.peak_rss_mb for pair in pairs)
    floor_label = f"check's floor time ({CHECK_FLOOR_WORKERS} workers, json)"
    return [
        ("l", f"{label} time", _median_of([pair.command.seconds for pair in pairs])),
        ("l", f"{label} peak RSS", f"{peak:.0f} MB (highest of {len(pairs)})"),
        ("l", f"{label} requests / minimum", _same_or_each(by_name[f"{label} requests / minimum"])),
        ("l", f"{label} rows check", _first_failed(by_name[f"{label} rows check"])),
        ("l", f"{label} model builds run again", str(sum(pair.command.rebuilds for pair in pairs))),
        ("l", floor_label, _median_of([pair.floor.seconds for pair in pairs])),
        ("l", "check's floor rows check", _first_failed([pair.floor_rows for pair in pairs])),
        ("l", "time command/check's floor", verdict),
    ]


def _median_of(seconds: list[float]) -> str:
    """The median of some times, with each of them."""
    each = ", ".join(f"{value:.1f}" for value in seconds)
    return f"{statistics.median(seconds):.1f} s (median of {len(seconds)}: {each})"


def _same_or_each(values: list[str]) -> str:
    """One value when every run gave it, else each run's."""
    return values[0] if len(set(values)) == 1 else "; ".join(values)


def _first_failed(verdicts: list[str]) -> str:
    """``ok`` when every run's check is, else the first that is not."""
    return next((verdict for verdict in verdicts if verdict != "ok"), "ok")


def part_l(backfill: Backfill) -> list[Figure]:
    """The command at part a's sessions and the check's floor of the same windows, run in turn
    `l_pairs` times (the median pair's ratio against the bound), and the command at part r's two
    sizes (the larger's peak RSS against the bound and over the smaller's)."""
    sessions = backfill.sizes.a.sessions
    small, large = (round(sessions * share) for share in RSS_SHARES)
    say(
        f"\n== (l) kore-sessions load with its models, {small:,}, {sessions:,} and {large:,} sessions, DuckDB"
    )
    label = f"command {sessions:,}"
    pairs = [run_pair(backfill, label, number) for number in range(backfill.sizes.l_pairs)]
    figures = pair_figures(label, pairs)
    say(f"   command/floor, median of {len(pairs)} pairs: {figures[-1][2]}")
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
