"""The kore_sessions dlt pipeline: build it (one per partition of bots), and load sessions.

A load finishes what an interrupted run left, then runs the source package by package while
its run says more is left. Extract and normalize run freely (partitions in parallel); each load
step, and each build of the models, takes its turn on the dataset (`lock.warehouse_turn`), and
every load step first takes the sessions users had erased out of what it loads (`erasures`).
Nothing is created in the warehouse before the first load step of a pipeline's first run: a run
that fails before it leaves no DuckDB file behind, and so never has one to remove.
"""

from __future__ import annotations

import re
import shlex
import sys
import time
from contextlib import ExitStack
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import dlt
from dlt.common.destination.reference import Destination
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials
from dlt.extract.source import DltSource
from kore_sessions.runtime.extract_files import uncompressed_extract_files
from kore_sessions.runtime.missing_schemas import store_missing_schema
from kore_sessions.runtime.pending_schemas import drop_first_extract, roll_schemas_forward
from kore_sessions.runtime.step_end import StepEnd
from kore_sessions.runtime.summary import LoadSummary
from kore_sessions.runtime.working_folder import mend_working_folder, prune_loaded_jobs
from kore_sessions.source import ConfigError, SourceRun
from kore_sessions.source.api.rules import ALL_BOTS_KEY
from kore_sessions.source.dlt_compat import duckdb_kept_open, duckdb_step_settings
from kore_sessions.source.messages.message_tables import MESSAGES_SPEC
from kore_sessions.source.sessions.arrow import SESSIONS_SPEC
from kore_sessions.source.sessions.spec import SESSIONS_TABLE
from kore_sessions.source.settings import SOURCE_NAME
from kore_sessions.warehouse.dataset import count_rows, rows_of_bots, warehouse_exists
from kore_sessions.warehouse.duckdb_settings import append_step_settings, load_settings
from kore_sessions.warehouse.erasures import keep_erasures_out
from kore_sessions.warehouse.pending_packages import appends_only, pending_job_files
from kore_sessions.warehouse.turn import destination_credentials, warehouse_turn
from kore_sessions.warehouse.unfinished_jobs import undo_unmarked_jobs

# The pipeline's name when no partition names its own (dlt's working folder and state).
PIPELINE_NAME = "kore_sessions"
# A partition's pipeline name: dlt also names a schema after it, so an identifier (small
# letters, digits, `_`), and never `__` (dlt issue #3427: such a name breaks the restore of its
# state from the destination).
PIPELINE_NAME_PATTERN = re.compile(r"^[a-z](?:[a-z0-9]|_(?!_))*$")
MAX_PIPELINE_NAME = 64
DEFAULT_DATASET = "kore_sessions"
# A dataset name as dlt's snake_case naming keeps it unchanged; PostgreSQL cuts identifiers
# at 63 bytes, and dlt adds `_staging_<pipeline>` beside it, so names stay well short of that.
DATASET_NAME_PATTERN = re.compile(r"^[a-z_][a-z0-9_]*$")
MAX_DATASET_NAME = 40
# DuckDB file when none is configured; not dlt's default `kore_sessions.duckdb`, because a
# database named like the dataset makes DuckDB's binder fail with "Ambiguous reference".
DEFAULT_DUCKDB_FILE = "kore_warehouse.duckdb"
# Fastest loader file format where the destination takes it (insert_values is ~7x slower).
PREFERRED_FILE_FORMAT = "parquet"
# Each resource's child tables (its table has the resource's name).
CHILD_TABLES = {spec.name: [c.table for c in spec.children] for spec in (SESSIONS_SPEC, MESSAGES_SPEC)}


def make_pipeline(
    destination: str | Destination = "duckdb",
    dataset_name: str = DEFAULT_DATASET,
    pipelines_dir: str | Path | None = None,
    duckdb_path: str | Path | None = None,
    pipeline_name: str = PIPELINE_NAME,
) -> dlt.Pipeline:
    """Build a `kore_sessions` pipeline: the default one, or a partition's.

    Args:
        destination: A dlt destination name or object (default DuckDB).
        dataset_name: Dataset (schema) to load into.
        pipelines_dir: Where dlt keeps this pipeline's working state (default dlt's own).
        duckdb_path: File of the DuckDB database, when the destination is DuckDB.
        pipeline_name: The pipeline (partition) name; each has its own state and, unless it
            is the default, its own staging dataset `<dataset>_staging_<name>`.

    Raises:
        ConfigError: the pipeline name cannot work.
        TurnTimeoutError: the dataset, read for a schema a killed run left unstored, stayed taken.
    """
    check_pipeline_name(pipeline_name)
    check_dataset_name(dataset_name)
    own_staging = {"staging_dataset_name_layout": f"%s_staging_{pipeline_name}"}
    params = {} if pipeline_name == PIPELINE_NAME else own_staging
    if destination == "duckdb":
        destination = dlt.destinations.duckdb(duckdb_credentials(duckdb_path), **params)
    elif isinstance(destination, str):
        destination = Destination.from_reference(destination, **params)
    folder = str(pipelines_dir) if pipelines_dir else None  # None: dlt's own (or its config's)
    named = {"pipeline_name": pipeline_name, "dataset_name": dataset_name, "pipelines_dir": folder}
    pipeline = dlt.pipeline(destination=destination, **named)
    if mend_working_folder(Path(pipeline.working_dir)):  # dlt's opening named a dead save's file
        pipeline = dlt.pipeline(destination=destination, **named)  # in its state: not again
    store_missing_schema(pipeline)
    uncompressed_extract_files(pipeline)
    return pipeline


def check_pipeline_name(name: str) -> str:
    """A pipeline name dlt can keep and restore, or a one-line ConfigError."""
    if not PIPELINE_NAME_PATTERN.match(name) or len(name) > MAX_PIPELINE_NAME:
        raise ConfigError(
            f"pipeline name {name!r} cannot be used: a small letter, then small letters, digits and "
            f"single '_', at most {MAX_PIPELINE_NAME} characters ('__' breaks dlt's state restore)"
        )
    return name


def check_dataset_name(name: str) -> str:
    """A dataset name every destination keeps as given, or a one-line ConfigError (dlt would
    otherwise rename it quietly, e.g. `Bad-Name` to `bad_name`, and load somewhere else)."""
    if not DATASET_NAME_PATTERN.match(name) or len(name) > MAX_DATASET_NAME:
        raise ConfigError(
            f"dataset name {name!r} cannot be used: a small letter or '_', then small letters, digits "
            f"and '_', at most {MAX_DATASET_NAME} characters (--dataset)"
        )
    return name


def duckdb_credentials(duckdb_path: str | Path | None) -> DuckDbCredentials:
    """The DuckDB file (relative to the working folder) with a bounded memory limit.

    DuckDB takes 80% of the machine's memory by default and the merge of a large load uses a
    lot of it; with `load_settings()` (`warehouse/duckdb_settings.py`) it spills to disk instead.
    Settings under `destination.duckdb.credentials.global_config` win over this default.
    """
    return DuckDbCredentials(str(duckdb_file(duckdb_path)), global_config=load_settings())


def duckdb_file(duckdb_path: str | Path | None = None) -> Path:
    """The DuckDB file: the one given, else the configured one, else DEFAULT_DUCKDB_FILE, resolved
    against the working folder (not where dlt thinks the project is)."""
    configured = dlt.config.get("destination.duckdb.credentials")
    path = duckdb_path or (configured if isinstance(configured, str) else None) or DEFAULT_DUCKDB_FILE
    return Path(path).expanduser().resolve()


def finish_pending(pipeline: dlt.Pipeline) -> int:
    """Normalize and load packages an interrupted run left behind; return how many there were.

    `pipeline.run(data)` with pending packages loads only those and extracts nothing, so the
    leftovers (whose state matches what they hold) are finished first, explicitly, with a
    stored schema no older than theirs (`roll_schemas_forward`); those of a first extract dlt
    cannot finish are dropped and fetched again (`drop_first_extract`).
    """
    if not pipeline.has_pending_data or drop_first_extract(pipeline):
        return 0
    pending = len(pipeline.list_extracted_load_packages()) + len(pipeline.list_normalized_load_packages())
    roll_schemas_forward(pipeline)
    pipeline.normalize()
    load_step(pipeline)
    return pending


def load_step(pipeline: dlt.Pipeline, end: StepEnd | None = None) -> None:
    """Load the normalized packages in the dataset's turn, without the sessions users had erased
    (read again in the turn, so an erasure made at any moment before holds) and without a second
    copy of what a killed append or merge job had committed (`undo_unmarked_jobs`); a DuckDB file stays
    open for the step and is checkpointed once (`duckdb_kept_open`), with less memory when the
    step only appends (`step_settings`).

    Args:
        pipeline: The pipeline.
        end: Where the step's end (the checkpoint, the turn given back) goes on once its
            packages are loaded, in a thread of its own (`step_end`); None: before returning.
            A step that fails ends before it raises.
    """
    if end is not None:
        end.wait()  # the last step's turn given back before this one takes it
    database = duckdb_file_to_load(pipeline)
    settings = destination_credentials(pipeline).global_config if database else None
    with ExitStack() as step:
        step.enter_context(warehouse_turn(pipeline))
        step.enter_context(duckdb_kept_open(database, settings))
        step.enter_context(duckdb_step_settings(database, step_settings(pipeline, database)))
        undo_unmarked_jobs(pipeline, Path(pipeline.working_dir))
        keep_erasures_out(pipeline, pending_job_files(Path(pipeline.working_dir)))
        pipeline.load()
        if end is not None:
            end.start(step.pop_all())


def step_settings(pipeline: dlt.Pipeline, database: Path | None) -> dict[str, Any]:
    """DuckDB's settings over the load's for the next load step into `database` (None: another
    destination, or nothing to load): `append_step_settings` when its jobs all append."""
    if database is None or not appends_only(Path(pipeline.working_dir)):
        return {}
    return append_step_settings()


def duckdb_file_to_load(pipeline: dlt.Pipeline) -> Path | None:
    """The DuckDB file a load step writes into; None on other destinations and when there is
    nothing to load (opening the file would create it)."""
    if pipeline.destination.destination_name != "duckdb" or not pipeline.list_normalized_load_packages():
        return None
    return Path(destination_credentials(pipeline).database)


def load_sessions(pipeline: dlt.Pipeline, source: DltSource, run: SourceRun) -> LoadSummary:
    """Finish leftovers, then extract, normalize and load one run of the source.

    Args:
        pipeline: The pipeline from `make_pipeline`.
        source: A `kore_sessions` source made with `run`.
        run: The source's record of the run, asked whether more is left after each package.

    Returns:
        The run's summary.
    """
    started = time.monotonic()
    summary = LoadSummary(run=run, destination=pipeline.destination.destination_name)
    before: int | None = 0
    # A first run into a warehouse that does not exist yet makes nothing before its first load
    # step; a pipeline with state whose warehouse is gone is synced (dlt then starts it again
    # from scratch, rather than go on from a cursor into an empty warehouse).
    if warehouse_exists(pipeline) or pipeline.has_data:
        with warehouse_turn(pipeline):
            if pipeline.config.restore_from_destination:
                pipeline.sync_destination()  # as `pipeline.run` does first: state kept in the warehouse
            before = count_sessions(pipeline, run.bot_keys)
    summary.pending_packages_finished = finish_pending(pipeline)
    if summary.pending_packages_finished and pipeline.config.restore_from_destination:
        # A run killed between dlt's commit of a package and its save of the local state left
        # that state a version behind what was just loaded: the dataset's, newer, is taken, as
        # the next `pipeline.run` would (the walk goes on from the loaded cursor, not before it).
        with warehouse_turn(pipeline):
            pipeline.sync_destination()
    run.empty_tables = empty_tables(pipeline, source, run.bot_keys)
    run.large_appends = pipeline.destination.destination_name == "duckdb"  # DuckDB's row groups
    summary.packages = run_until_caught_up(pipeline, source, run)
    with warehouse_turn(pipeline):
        after = count_sessions(pipeline, run.bot_keys)
    summary.seconds = time.monotonic() - started
    summary.dataset = pipeline.dataset_name
    summary.sessions_total = after
    if before is not None and after is not None:
        summary.sessions_new = max(0, after - before + summary.sessions_deleted)
        summary.sessions_updated = max(0, summary.sessions_fetched - summary.sessions_new)
    location = getattr(destination_credentials(pipeline), "database", None)
    summary.location = f"({location})" if isinstance(location, str) else ""
    return summary


def run_until_caught_up(pipeline: dlt.Pipeline, source: DltSource, run: SourceRun) -> int:
    """Run the source as often as its run says more is left (a long backfill, a few windows of
    each bot per load package); return how many packages were loaded.

    Each package is committed with its state before the next is extracted, so memory stays
    bounded and a crash loses at most the package in progress; the next package of sessions is
    fetched while dlt loads the last (into a copy of the state, taken by the next extract).
    Only the load step waits for the dataset's turn: partitions extract from the API in parallel.
    """
    file_format = file_format_for(pipeline)
    packages = 0
    end = StepEnd()  # each load step's checkpoint runs while the next package is extracted
    run.fetch_ahead = True  # every package fetched ahead is taken below, or dropped
    try:
        while True:
            for part in resources_in_order(source):
                pipeline.extract(part, loader_file_format=file_format)
                pipeline.normalize()  # each package with the schema its extract left
                packages += 1
            load_step(pipeline, end)  # the next package of sessions is fetched meanwhile
            prune_loaded_jobs(Path(pipeline.working_dir))
            if not run.more_to_fetch:
                return packages  # its step's end waited for below
    finally:
        try:
            end.wait()  # a run that failed still gives its turn back before it ends
        finally:
            run.drop_ahead()
            run.fetch_ahead = False


def resources_in_order(source: DltSource) -> list[DltSource]:
    """The source once per selected resource, in the source's order (sessions before messages):
    each is extracted on its own, so the messages' walk reads the channels and open sessions
    the sessions' extract of the same round has just put in the state."""
    names = list(source.resources.selected)
    if len(names) <= 1:
        return [source.clone()]
    return [source.clone().with_resources(name) for name in names]


def file_format_for(pipeline: dlt.Pipeline) -> str | None:
    """Parquet where the destination supports it, else the destination's own default."""
    capabilities = pipeline.destination.capabilities()
    supported = capabilities.supported_loader_file_formats or []
    if pipeline.destination.destination_name == "postgres" and not find_spec("adbc_driver_postgresql"):
        return None  # dlt loads parquet into PostgreSQL only through the ADBC driver
    return PREFERRED_FILE_FORMAT if PREFERRED_FILE_FORMAT in supported else None


def empty_tables(pipeline: dlt.Pipeline, source: DltSource, bots: tuple[str, ...]) -> frozenset[str]:
    """The selected resources' tables holding no rows of these bots (nor rows without a bot, nor
    child rows without another bot's root), counted in the dataset's turn: where a first
    backfill may append (`first_backfill`). A resource with state of any of the bots is not
    counted (it merges whatever the count); nothing appends unless its jobs are Parquet files
    (`unfinished_jobs` undoes a killed one by their ids)."""
    selected = [
        name
        for name in source.resources.selected
        if not any(source_state(pipeline, name).get("bots", {}).get(bot) for bot in bots)
    ]
    if file_format_for(pipeline) != PREFERRED_FILE_FORMAT:
        return frozenset()  # a killed append is undone by its Parquet files' ids only
    if not selected or not warehouse_exists(pipeline):  # no DuckDB file: nothing in it, and none made
        return frozenset(selected)
    counted = _counted_bots(bots)
    with warehouse_turn(pipeline):
        counts = {name: rows_of_bots(pipeline, name, CHILD_TABLES[name], counted) for name in selected}
    return frozenset(table for table, rows in counts.items() if rows == 0)


def _counted_bots(bots: tuple[str, ...]) -> tuple[str, ...]:
    """The bots to count rows of: none named (every row) on the admin route."""
    return () if ALL_BOTS_KEY in bots else bots


def count_sessions(pipeline: dlt.Pipeline, bots: tuple[str, ...]) -> int | None:
    """Sessions of these bots in the warehouse (of every bot on the admin route), so that a
    partition counts its own while others load beside it; None when not countable."""
    return count_rows(pipeline, SESSIONS_TABLE, _counted_bots(bots))


def inspect_command(pipeline: dlt.Pipeline) -> str:
    """The `dlt pipeline ... info` command that finds this pipeline, to copy and run as is."""
    dlt_cli = Path(sys.executable).with_name("dlt")
    program = str(dlt_cli) if dlt_cli.exists() else "dlt"
    words = [program, "pipeline", "--pipelines-dir", pipeline.pipelines_dir, pipeline.pipeline_name, "info"]
    return shlex.join(words)


def source_state(pipeline: dlt.Pipeline, resource: str = SESSIONS_TABLE) -> dict[str, Any]:
    """One resource's state in the pipeline (default `sessions`): its cursors per bot, and what
    else the resource keeps (sessions: the open sessions)."""
    sources = pipeline.state.get("sources", {})
    resources = sources.get(SOURCE_NAME, {}).get("resources", {})
    return resources.get(resource, {})
