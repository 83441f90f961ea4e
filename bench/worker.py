"""Child process entry point: ``python -m bench.worker JOB.json RESULT.json``.

Runs one job (the real pipeline, the reference or dlt alone) and writes its figures as JSON, so the
parent can take the child's own peak RSS from ``os.wait4``.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.jobs import CLIENT_ID, CLIENT_SECRET, DLT_ONLY, MESSAGES_FLOOR, PIPELINE, POSTGRES, Job


def run_pipeline(job: Job) -> dict[str, Any]:
    """Load the job's bots with the real source and pipeline into a fresh DuckDB file (or a fresh
    PostgreSQL schema).

    Args:
        job: The pipeline job.

    Returns:
        Seconds of the whole load and of its steps, requests, sessions and rows loaded.
    """
    from kore_sessions.runtime.pipeline import file_format_for, load_sessions, make_pipeline
    from kore_sessions.source import KoreCredentials, SourceRun, kore_sessions

    now = datetime.fromisoformat(job.now)
    if job.destination == POSTGRES and job.postgres_url:
        os.environ["DESTINATION__POSTGRES__CREDENTIALS"] = job.postgres_url
    pipeline = make_pipeline(
        job.destination,
        dataset_name=job.dataset,
        pipelines_dir=Path(job.workdir) / "pipelines",
        duckdb_path=job.duckdb_path,
    )
    run = SourceRun()
    source = kore_sessions(
        host=job.host,
        bot_ids=job.bots,
        start_date=job.start,
        credentials=KoreCredentials(client_id=CLIENT_ID, client_secret=CLIENT_SECRET),
        clock=lambda: now,
        run=run,
        requests_per_minute=job.requests_per_minute,
        requests_per_hour=job.requests_per_hour,
        seconds_per_minute=job.seconds_per_minute,
        page_size=job.page_size,
        max_in_flight=job.max_in_flight,
        resources=job.resources,
        messages_page_size=job.messages_page_size,
    )
    resource_seconds, spans = time_steps_by_resource(pipeline)
    cpu = time.process_time()
    summary = load_sessions(pipeline, source, run)
    cpu_seconds = time.process_time() - cpu
    steps = {
        step.step: [step.started_at.timestamp(), step.finished_at.timestamp()]
        for step in pipeline.last_trace.steps
        if step.step != "run"
    }
    return {
        "seconds": summary.seconds,
        "cpu_seconds": cpu_seconds,  # every thread of the process, over the same span
        "steps": steps,  # step -> [start, end] in epoch seconds
        "requests": summary.requests,
        "retries": summary.retries,
        "rate_limited": summary.rate_limited,
        "sessions": summary.sessions_fetched,
        "messages": run.totals.of("messages"),
        "resource_seconds": resource_seconds,  # extract + normalize by resource, and load
        "step_spans": spans,  # [step, start, end] in epoch seconds, every step of every package
        "packages": summary.packages,
        "file_format": file_format_for(pipeline),
    }


def time_steps_by_resource(pipeline: Any) -> tuple[dict[str, float], list[list[Any]]]:
    """Add up, as the run goes, the seconds of ``pipeline``'s extract and normalize by the
    resource extracted (a normalize counts for the extract before it) and of its load steps
    (every resource's, in one package), under ``load``; and list each step's span, as
    ``[step resource, start, end]`` (epoch seconds)."""
    seconds: dict[str, float] = {}
    spans: list[list[Any]] = []
    current = ["?"]

    def timed(step: Callable[..., Any], name: Callable[[tuple[Any, ...]], str]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            started, began = time.perf_counter(), time.time()
            try:
                return step(*args, **kwargs)
            finally:
                key = name(args)
                seconds[key] = seconds.get(key, 0.0) + time.perf_counter() - started
                label = step.__name__ if key == step.__name__ else f"{step.__name__} {key}"
                spans.append([label, began, time.time()])

        return run

    def extracted(args: tuple[Any, ...]) -> str:
        current[0] = ",".join(args[0].resources.selected) if args else "?"
        return current[0]

    pipeline.extract = timed(pipeline.extract, extracted)
    pipeline.normalize = timed(pipeline.normalize, lambda _: current[0])
    pipeline.load = timed(pipeline.load, lambda _: "load")
    return seconds, spans


def own_peak_rss_kb() -> int:
    """This process's peak resident memory since it started its own program (VmHWM).

    Not `ru_maxrss`: Linux keeps that across `execve`, so a child forked from a parent that
    holds the sandbox's data set would report the parent's size.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main(argv: list[str]) -> int:
    """Run the job in ``argv[0]`` and write the result to ``argv[1]``."""
    job = Job.load(Path(argv[0]))
    if job.kind in (PIPELINE, DLT_ONLY):
        import kore_sessions.cli  # noqa: F401  (Arrow's allocator, chosen before pyarrow loads)
        from kore_sessions.source.heap import tune_process_heap

        tune_process_heap()  # as `kore-sessions` does at its start
    if job.kind == PIPELINE:
        result = run_pipeline(job)
    elif job.kind == MESSAGES_FLOOR:
        from bench.messages_floor import run_messages_floor

        result = run_messages_floor(job)
    elif job.kind == DLT_ONLY:
        from bench.dlt_only import run_dlt_only

        result = run_dlt_only(job)
    else:
        from bench.reference import run_reference

        result = run_reference(job)
    result["peak_rss_kb"] = own_peak_rss_kb()
    Path(argv[1]).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
