"""The kore_sessions dlt pipeline: build it, load sessions, and report what a run did."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import dlt
from dlt.common.destination.reference import Destination
from dlt.common.storages.load_storage import LoadStorage
from dlt.common.storages.normalize_storage import NormalizeStorage
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials
from dlt.extract.source import DltSource

from sources.kore_sessions import SourceRun
from sources.kore_sessions.settings import SESSIONS_TABLE, SOURCE_NAME

PIPELINE_NAME = "kore_sessions"
DEFAULT_DATASET = "kore_sessions"
# DuckDB file when none is configured; not dlt's default `kore_sessions.duckdb`, because a
# database named like the dataset makes DuckDB's binder fail with "Ambiguous reference".
DEFAULT_DUCKDB_FILE = "kore_warehouse.duckdb"
# DuckDB while loading and building models: a memory limit (it spills to disk beyond it), and
# no insertion order to keep, which lets large INSERT ... SELECT statements stream.
DUCKDB_SETTINGS = {"memory_limit": "160MB", "preserve_insertion_order": False}
# dlt's normalize and load storages in a pipeline's working folder (dlt's Pipeline names them
# so), and the package folders the load storage holds.
NORMALIZE_FOLDER = "normalize"
LOAD_FOLDER = "load"
LOAD_PACKAGE_FOLDERS = (
    LoadStorage.NEW_PACKAGES_FOLDER,
    LoadStorage.NORMALIZED_FOLDER,
    LoadStorage.LOADED_FOLDER,
)
# Fastest loader file format where the destination takes it (insert_values is ~7x slower).
PREFERRED_FILE_FORMAT = "parquet"


@dataclass
class LoadSummary:
    """What one `load` did, for the CLI's closing lines: the source's run, and the warehouse."""

    run: SourceRun = field(default_factory=SourceRun)
    sessions_new: int | None = None
    sessions_updated: int | None = None
    sessions_total: int | None = None
    pending_packages_finished: int = 0
    packages: int = 0
    seconds: float = 0.0
    destination: str = ""
    dataset: str = ""
    location: str = ""

    @property
    def windows(self) -> int:
        """Windows completed."""
        return self.run.totals.windows

    @property
    def requests(self) -> int:
        """Requests sent (retries included)."""
        return self.run.client.requests

    @property
    def retries(self) -> int:
        """Requests sent again."""
        return self.run.client.retries

    @property
    def rate_limited(self) -> int:
        """Answers 429 (or the documented rate-limit message)."""
        return self.run.client.rate_limited

    @property
    def sessions_fetched(self) -> int:
        """Sessions fetched by window or by id."""
        return self.run.totals.sessions + self.run.totals.refreshed

    @property
    def sessions_refreshed(self) -> int:
        """Open (or held) sessions fetched by id or by their small window."""
        return self.run.totals.refreshed

    @property
    def sessions_deleted(self) -> int:
        """Sessions the API called invalid, deleted from the warehouse."""
        return self.run.totals.deleted

    @property
    def legacy_bots(self) -> list[str]:
        """Bots whose server answered in the pre-9.0 shape."""
        return sorted(self.run.legacy_bots)

    @property
    def undocumented_containment(self) -> dict[str, int]:
        """Containment values the docs do not list, with their counts."""
        return dict(self.run.undocumented_containment)

    def lines(self) -> list[str]:
        """The summary as short human-readable lines."""
        changes = (
            f"{self.sessions_new} new, {self.sessions_updated} updated"
            if self.sessions_new is not None
            else "new/updated not counted on this destination"
        )
        lines = [
            f"windows: {self.windows}  requests: {self.requests}  retries: {self.retries} "
            f"(rate limited: {self.rate_limited})",
            f"sessions: {self.sessions_fetched} fetched ({changes}), "
            f"{self.sessions_refreshed} open sessions refreshed, {self.sessions_deleted} deleted",
            f"time: {self.seconds:.1f} s  destination: {self.destination} "
            f"dataset: {self.dataset} {self.location}".rstrip(),
        ]
        if self.sessions_total is not None:
            lines.insert(2, f"sessions in the warehouse: {self.sessions_total}")
        if self.legacy_bots:
            lines.append(f"pre-9.0 answer shape detected for: {', '.join(self.legacy_bots)}")
        if self.undocumented_containment:
            found = ", ".join(f"{value!r} x{n}" for value, n in sorted(self.undocumented_containment.items()))
            lines.append(f"undocumented containment values, loaded as sent: {found}")
        if self.packages > 1:
            lines.append(f"loaded as {self.packages} packages, each committed with its state")
        if self.pending_packages_finished:
            lines.append(f"finished {self.pending_packages_finished} package(s) left by an interrupted run")
        return lines


def make_pipeline(
    destination: str | Destination = "duckdb",
    dataset_name: str = DEFAULT_DATASET,
    pipelines_dir: str | Path | None = None,
    duckdb_path: str | Path | None = None,
) -> dlt.Pipeline:
    """Build the `kore_sessions` pipeline.

    Args:
        destination: A dlt destination name or object (default DuckDB).
        dataset_name: Dataset (schema) to load into.
        pipelines_dir: Where dlt keeps this pipeline's working state (default dlt's own).
        duckdb_path: File of the DuckDB database, when the destination is DuckDB.
    """
    if destination == "duckdb":
        destination = dlt.destinations.duckdb(duckdb_credentials(duckdb_path))
    pipeline = dlt.pipeline(
        pipeline_name=PIPELINE_NAME,
        destination=destination,
        dataset_name=dataset_name,
        pipelines_dir=str(pipelines_dir) if pipelines_dir else None,
    )
    mend_working_folder(Path(pipeline.working_dir))
    return pipeline


def mend_working_folder(working_dir: Path) -> None:
    """Finish a working folder that a killed run left half made, as dlt would have.

    dlt has two steps a SIGKILL can split, and each leaves a folder every later run fails on:
    - it makes its load storage as `load/` and then the package folders, and takes the storage
      as ready once `load/` exists (`FileNotFoundError: .../load/normalized/.`): the missing
      folders are made, empty;
    - a normalized package is committed by renaming it into `load/normalized/` and then
      deleting its extracted copy (`OSError: Directory not empty: load/new/<id> ->
      load/normalized/<id>` when the copy is normalized again): the rename is atomic, so the
      committed package is whole and the extracted copy left behind is deleted.
    """
    load = working_dir / LOAD_FOLDER
    if load.is_dir():
        for name in LOAD_PACKAGE_FOLDERS:
            (load / name).mkdir(exist_ok=True)
    extracted = working_dir / NORMALIZE_FOLDER / NormalizeStorage.EXTRACTED_FOLDER
    if not extracted.is_dir():
        return
    for package in extracted.iterdir():
        committed = (
            load / name / package.name for name in (LoadStorage.NORMALIZED_FOLDER, LoadStorage.LOADED_FOLDER)
        )
        if any(path.is_dir() for path in committed):
            shutil.rmtree(package)


def duckdb_credentials(duckdb_path: str | Path | None) -> DuckDbCredentials:
    """The DuckDB file (relative to the working folder) with a bounded memory limit.

    DuckDB takes 80% of the machine's memory by default and the merge of a large load uses a
    lot of it; with DUCKDB_SETTINGS it spills to disk instead. Settings under
    `destination.duckdb.credentials.global_config` win over this default.
    """
    extra = dlt.config.get("destination.duckdb.credentials.global_config") or {}
    return DuckDbCredentials(str(duckdb_file(duckdb_path)), global_config={**DUCKDB_SETTINGS, **dict(extra)})


def duckdb_file(duckdb_path: str | Path | None = None) -> Path:
    """The DuckDB file: the one given, else the configured one, else DEFAULT_DUCKDB_FILE, resolved
    against the working folder (not where dlt thinks the project is)."""
    configured = dlt.config.get("destination.duckdb.credentials")
    path = duckdb_path or (configured if isinstance(configured, str) else None) or DEFAULT_DUCKDB_FILE
    return Path(path).expanduser().resolve()


def finish_pending(pipeline: dlt.Pipeline) -> int:
    """Normalize and load packages an interrupted run left behind; return how many there were.

    `pipeline.run(data)` with pending packages loads only those and extracts nothing, so the
    leftovers (whose state matches what they hold) are finished first, explicitly.
    """
    if not pipeline.has_pending_data:
        return 0
    pending = len(pipeline.list_extracted_load_packages()) + len(pipeline.list_normalized_load_packages())
    pipeline.normalize()
    pipeline.load()
    return pending


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
    summary.pending_packages_finished = finish_pending(pipeline)
    before = count_rows(pipeline, SESSIONS_TABLE)
    summary.packages = run_until_caught_up(pipeline, source, run)
    after = count_rows(pipeline, SESSIONS_TABLE)
    summary.seconds = time.monotonic() - started
    summary.dataset = pipeline.dataset_name
    summary.sessions_total = after
    if before is not None and after is not None:
        summary.sessions_new = max(0, after - before + summary.sessions_deleted)
        summary.sessions_updated = max(0, summary.sessions_fetched - summary.sessions_new)
    location = getattr(pipeline.destination_client().config.credentials, "database", None)
    summary.location = f"({location})" if isinstance(location, str) else ""
    return summary


def run_until_caught_up(pipeline: dlt.Pipeline, source: DltSource, run: SourceRun) -> int:
    """Run the source as often as its run says more is left (a long backfill, a few windows of
    each bot per load package); return how many packages were loaded.

    Each package is committed with its state before the next is extracted, so memory stays
    bounded and a crash loses at most the package in progress.
    """
    file_format = file_format_for(pipeline)
    packages = 0
    while True:
        pipeline.run(source.clone(), loader_file_format=file_format)
        packages += 1
        if not run.more_to_fetch:
            return packages


def file_format_for(pipeline: dlt.Pipeline) -> str | None:
    """Parquet where the destination supports it, else the destination's own default."""
    capabilities = pipeline.destination.capabilities()
    supported = capabilities.supported_loader_file_formats or []
    if pipeline.destination.destination_name == "postgres" and not find_spec("adbc_driver_postgresql"):
        return None  # dlt loads parquet into PostgreSQL only through the ADBC driver
    return PREFERRED_FILE_FORMAT if PREFERRED_FILE_FORMAT in supported else None


def count_rows(pipeline: dlt.Pipeline, table: str) -> int | None:
    """Rows of a table in the destination; 0 if it does not exist yet, None if not countable."""
    try:
        with pipeline.sql_client() as client:
            if not client.has_dataset():
                return 0
            qualified = client.make_qualified_table_name(table)
            try:
                rows = client.execute_sql(f"SELECT COUNT(*) FROM {qualified}")
            except Exception:  # the table does not exist before the first load
                return 0
            return int(rows[0][0])
    except Exception:  # destinations without a SQL client (e.g. filesystem)
        return None


def source_state(pipeline: dlt.Pipeline) -> dict[str, Any]:
    """The `sessions` resource state of the pipeline: cursors and open sessions per bot."""
    sources = pipeline.state.get("sources", {})
    resources = sources.get(SOURCE_NAME, {}).get("resources", {})
    return resources.get(SESSIONS_TABLE, {})
