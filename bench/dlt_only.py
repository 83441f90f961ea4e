"""dlt alone: the time dlt itself takes to load the backfill, with nothing else to do.

Every page of the floor's windows is fetched and turned into the pipeline's own Arrow tables
first (`records.to_row`, `arrow.page_tables`, joined as the source joins them), and the
pipeline is made (`make_pipeline`, the pipeline's settings), untimed. On the way, once every
page is in, each page's columnar build and the floor's flat rows of it are timed on one thread
(`bench.build_clocks`). Then only dlt is timed:
extract, normalize and the load of those tables into a fresh DuckDB file, in one load package
(the pipeline loads several, so this is a lower bound), appended as the pipeline's first
backfill appends them (`job.write_disposition`), or merged as every later run does. With this
pipeline's tables and settings, no run through dlt can be faster.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dlt
from kore_sessions.runtime.pipeline import PREFERRED_FILE_FORMAT, make_pipeline
from kore_sessions.source import batched_tables
from kore_sessions.source.api.arrow_rows import table_hints
from kore_sessions.source.heap import lean_heap
from kore_sessions.source.sessions.arrow import SESSIONS_SPEC
from kore_sessions.source.sessions.records import to_row
from kore_sessions.source.sessions.spec import SESSIONS_TABLE

from bench.build_clocks import BuildClocks
from bench.jobs import Job
from bench.reference import fetch_all

# `_dlt_load_id` of the ready-made tables: dlt's load id is only known once its extract starts,
# and the value does not change what the merge does.
READY_MADE_LOAD_ID = "0000000000.000000"


def run_dlt_only(job: Job) -> dict[str, Any]:
    """Fetch and transform every window of the job untimed, then time dlt's load of it.

    Args:
        job: The job (``windows`` set, as the floor's).

    Returns:
        Seconds of dlt's run and its CPU seconds, seconds of the untimed preparation, and the
        CPU seconds of the pages' columnar build and of the floor's flat rows of them, with the
        pages the columnar build left to the record transform (`bench.build_clocks`).
    """
    prepared = time.perf_counter()
    clocks = BuildClocks(READY_MADE_LOAD_ID)
    raw_pages, _ = fetch_all(job, lambda kept: kept)
    raw_pages.reverse()
    gc.collect()
    gc.freeze()  # no collection walks the fetched pages while their builds are timed
    pages = []
    with lean_heap():  # the collector's settings of the pipeline's extract, which builds pages
        while raw_pages:  # each page's sessions freed once made rows
            pages.append([to_row(raw) for raw in clocks.timed(raw_pages.pop())])
    tables = list(batched_tables(pages, READY_MADE_LOAD_ID))
    del pages  # only the tables are handed to dlt
    hints = table_hints(SESSIONS_SPEC, job.write_disposition)

    @dlt.resource(name=SESSIONS_TABLE, write_disposition=job.write_disposition)  # type: ignore[call-overload]
    def ready_made() -> Iterator[Any]:
        for name, table in tables:
            yield dlt.mark.with_hints(table, hints[name], create_table_variant=True)

    pipeline = make_pipeline(
        job.destination,
        dataset_name=job.dataset,
        pipelines_dir=Path(job.workdir) / "pipelines",
        duckdb_path=job.duckdb_path,
    )
    gc.collect()
    gc.freeze()  # the garbage collector does not walk the preparation's leftovers while timed
    started, cpu = time.perf_counter(), time.process_time()
    pipeline.run(ready_made(), loader_file_format=PREFERRED_FILE_FORMAT)
    return {
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu,
        "prepare_seconds": started - prepared,
        "build_cpu_seconds": clocks.seconds["columnar"],
        "flat_build_cpu_seconds": clocks.seconds["flat"],
        "pages_not_columnar": clocks.not_columnar,
    }
