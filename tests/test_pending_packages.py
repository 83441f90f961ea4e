"""Whether the next load step only appends, read from the normalized packages' job files and
schemas (`kore_sessions.warehouse.pending_packages.appends_only`): an append step of a first
backfill runs DuckDB under less memory, so a step with any merge must never be taken for one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from dlt.common.storages.load_package import PackageStorage
from kore_sessions.warehouse.pending_packages import LOAD_FOLDER, appends_only

pytestmark = pytest.mark.unit

APPEND = {"write_disposition": "append"}
MERGE = {"write_disposition": "merge"}
# A nested table takes its root's disposition (dlt's `parent` hint).
TAGS = {"parent": "sessions"}


def package(working_dir: Path, load_id: str, tables: dict[str, Any], jobs: dict[str, list[str]]) -> None:
    """A normalized package: its schema's tables, and job files by folder (`new_jobs`, ...)."""
    folder = working_dir / LOAD_FOLDER / "normalized" / load_id
    folder.mkdir(parents=True)
    (folder / PackageStorage.SCHEMA_FILE_NAME).write_text(json.dumps({"tables": tables}))
    for jobs_folder, tables_of_jobs in jobs.items():
        (folder / jobs_folder).mkdir()
        for number, table in enumerate(tables_of_jobs):
            (folder / jobs_folder / f"{table}.job{number}.0.parquet").write_text("")


def test_nothing_to_load_is_not_an_append_step(tmp_path: Path) -> None:
    """No package, or packages without jobs, is no append step."""
    assert not appends_only(tmp_path)
    package(tmp_path, "1", {"sessions": APPEND}, {PackageStorage.NEW_JOBS_FOLDER: []})
    assert not appends_only(tmp_path)


def test_a_first_backfills_packages_only_append(tmp_path: Path) -> None:
    """Root, nested and dlt's state tables appended, new jobs and those a killed step started."""
    tables = {"sessions": APPEND, "sessions__tags": TAGS, "_dlt_pipeline_state": APPEND}
    package(tmp_path, "1", tables, {PackageStorage.NEW_JOBS_FOLDER: ["sessions", "sessions__tags"]})
    package(tmp_path, "2", tables, {PackageStorage.STARTED_JOBS_FOLDER: ["sessions", "_dlt_pipeline_state"]})
    assert appends_only(tmp_path)


@pytest.mark.parametrize(
    ("tables", "jobs"),
    [
        ({"sessions": MERGE, "sessions__tags": TAGS}, ["sessions__tags"]),  # a nested table of a merged root
        ({"sessions": APPEND}, ["messages"]),  # a table the schema does not hold
        ({"sessions": APPEND, "orphan": {"parent": "gone"}}, ["orphan"]),  # no disposition up the chain
        ({"sessions": {"write_disposition": "replace"}}, ["sessions"]),
    ],
)
def test_a_step_with_any_other_job_is_not_an_append_step(
    tmp_path: Path, tables: dict[str, Any], jobs: list[str]
) -> None:
    """Beside an appending package, one job that merges, replaces or cannot be told makes the
    step not an append step."""
    package(tmp_path, "1", {"sessions": APPEND}, {PackageStorage.NEW_JOBS_FOLDER: ["sessions"]})
    package(tmp_path, "2", tables, {PackageStorage.STARTED_JOBS_FOLDER: jobs})
    assert not appends_only(tmp_path)
