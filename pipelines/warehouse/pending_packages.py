"""The normalized packages a pipeline's next load step runs: their job files, their tables, and
whether the step only appends (a first backfill, `kore_sessions.source.first_backfill`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dlt.common.schema.utils import get_write_disposition
from dlt.common.storages.load_package import PackageStorage, ParsedLoadJobFileName
from dlt.common.storages.load_storage import LoadStorage
from dlt.common.storages.normalize_storage import NormalizeStorage

# dlt's load storage in a pipeline's working folder (dlt's Pipeline names it so).
LOAD_FOLDER = "load"
# dlt's normalize storage in a pipeline's working folder (dlt's Pipeline names it so).
NORMALIZE_FOLDER = "normalize"
# A package's jobs a load step runs: those not yet started, and those a killed load step had
# started (dlt starts them again).
PENDING_JOB_FOLDERS = (PackageStorage.NEW_JOBS_FOLDER, PackageStorage.STARTED_JOBS_FOLDER)


def appends_only(working_dir: Path) -> bool:
    """Whether the next load step only appends: it has jobs (new, or started by a killed step),
    and each is of a table its package writes with `append`."""
    dispositions: set[str | None] = set()
    for package in normalized_packages(working_dir):
        jobs = pending_jobs(package)
        tables = package_tables(package) if jobs else {}
        for path in jobs:
            dispositions.add(disposition(tables, ParsedLoadJobFileName.parse(path.name).table_name))
    return dispositions == {"append"}


def pending_job_files(working_dir: Path) -> Iterator[Path]:
    """The data files the next load step will load, package by package (PENDING_JOB_FOLDERS)."""
    for package in normalized_packages(working_dir):
        yield from pending_jobs(package)


def pending_jobs(package: Path) -> list[Path]:
    """A package's job files the next load step runs (PENDING_JOB_FOLDERS)."""
    return [path for folder in PENDING_JOB_FOLDERS for path in job_files(package, folder)]


def disposition(tables: dict[str, Any], table: str) -> str | None:
    """A table's write disposition in a package's schema (a child table's is its root's); None
    when the schema does not say."""
    try:
        return get_write_disposition(tables, table) if table in tables else None
    except ValueError:  # no table up to the root has one
        return None


def normalized_packages(working_dir: Path) -> list[Path]:
    """The normalized packages of a working folder, oldest first."""
    normalized = working_dir / LOAD_FOLDER / LoadStorage.NORMALIZED_FOLDER
    return sorted(path for path in normalized.glob("*") if path.is_dir())


def extracted_packages(working_dir: Path) -> list[Path]:
    """The extracted packages of a working folder (not normalized yet), oldest first."""
    extracted = working_dir / NORMALIZE_FOLDER / NormalizeStorage.EXTRACTED_FOLDER
    return sorted(path for path in extracted.glob("*") if path.is_dir())


def job_files(package: Path, folder: str) -> list[Path]:
    """The job files in one of a package's job folders, by name."""
    return sorted(job for job in (package / folder).glob("*") if job.is_file())


def package_tables(package: Path) -> dict[str, Any]:
    """The tables of the schema a package was normalized with."""
    return json.loads((package / PackageStorage.SCHEMA_FILE_NAME).read_text())["tables"]
