"""dlt's working folder of a pipeline, mended where a killed run left it half made."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from dlt.common.storages.load_storage import LoadStorage
from kore_sessions.warehouse.pending_packages import LOAD_FOLDER, extracted_packages

# Where a loaded package keeps its data files (dlt's PackageStorage names it so).
COMPLETED_JOBS_FOLDER = "completed_jobs"
# Where dlt keeps a pipeline's schemas (`<name>.schema.json`), in its working folder.
SCHEMAS_FOLDER = "schemas"
# The name of the file dlt writes before renaming it over its target (`FileStorage.save_atomic`
# names it `uniq_id(8)`): 16 hex digits.
DEAD_SAVE_NAME = re.compile(r"[0-9a-f]{16}")
# The package folders dlt's load storage holds.
LOAD_PACKAGE_FOLDERS = (
    LoadStorage.NEW_PACKAGES_FOLDER,
    LoadStorage.NORMALIZED_FOLDER,
    LoadStorage.LOADED_FOLDER,
)


def mend_working_folder(working_dir: Path) -> bool:
    """Finish a working folder that a killed run left half made, as dlt would have; return
    whether a schema's dead save was deleted (the caller opens the pipeline again).

    The caller holds the pipeline's run lock, or made the folder itself: no live process
    writes in it. dlt has three steps a SIGKILL can split, each leaving a folder every later run
    fails on:
    - it saves a schema by writing a temporary file beside it and renaming that: the file left
      behind is deleted. dlt takes every file of its schema folder for a schema, and opening the
      pipeline put its name in the state's schemas, on which every sync failed
      (`InvalidSchemaName`); opened again, dlt names only the schemas stored;
    - it makes its load storage as `load/` and then the package folders, and takes the storage
      as ready once `load/` exists (`FileNotFoundError: .../load/normalized/.`): the missing
      folders are made, empty;
    - a normalized package is committed by renaming it into `load/normalized/` and then
      deleting its extracted copy (`OSError: Directory not empty: load/new/<id> ->
      load/normalized/<id>` when the copy is normalized again): the rename is atomic, so the
      committed package is whole and the extracted copy left behind is deleted.
    """
    schemas = (working_dir / SCHEMAS_FOLDER).glob("*")
    dead_saves = [path for path in schemas if DEAD_SAVE_NAME.fullmatch(path.name) and path.is_file()]
    for path in dead_saves:
        path.unlink()
    load = working_dir / LOAD_FOLDER
    if load.is_dir():
        for name in LOAD_PACKAGE_FOLDERS:
            (load / name).mkdir(exist_ok=True)
    for package in extracted_packages(working_dir):
        committed = (
            load / name / package.name for name in (LoadStorage.NORMALIZED_FOLDER, LoadStorage.LOADED_FOLDER)
        )
        if any(path.is_dir() for path in committed):
            shutil.rmtree(package)
    return bool(dead_saves)


def prune_loaded_jobs(working_dir: Path) -> int:
    """Delete the data files of packages already loaded; return how many were deleted.

    dlt keeps every loaded package's files (`load/loaded/<id>/completed_jobs/`) as history: a
    second copy of every session, personal data included, that grows with each load. The
    warehouse holds the data; the package's state and schema files stay.
    """
    loaded = working_dir / LOAD_FOLDER / LoadStorage.LOADED_FOLDER
    deleted = 0
    for job in loaded.glob(f"*/{COMPLETED_JOBS_FOLDER}/*"):
        if job.is_file():
            job.unlink(missing_ok=True)  # a load of the pipeline may prune beside `forget`
            deleted += 1
    return deleted
