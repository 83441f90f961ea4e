"""The schemas a pipeline finishes the packages a killed run left with: never older than theirs.

dlt normalizes an extracted package with the schema its pipeline stores, not with the one the
package carries ("Storage schema was used"), and it saves the pipeline's schema, then its
state, only after committing a package. So a run killed between the commit and those saves
leaves the stored schema older than the package's, and the state without the package:
- with a schema stored before (not the pipeline's first extract), the next normalize of the
  package failed on every later run: a table it brought is missing (`KeyError:
  'sessions__session_lang'`) or, once normalized, a column (DuckDB's "Binder Error: Table ...
  does not have a column with name ..." at the load step). A stored schema that is an ancestor
  of a leftover's is rolled forward to it. It also covers a leftover extracted after a state
  that lagged the dataset's by a version, which `sync_destination` put the dataset's older
  schema back over (`load_sessions` now takes the dataset's state once leftovers are finished,
  so only packages left by earlier versions, or by the audit's sync, meet it);
- the pipeline's first extract: dlt neither normalizes nor loads without a default schema, which
  only the state names, so the package stayed behind while the next extract fetched its windows
  again and both were loaded (appended twice, or a `KeyError`). Nothing of it reached the state
  or the dataset: it is dropped, and the next extract fetches it again.
The caller holds the pipeline fresh from its files or just synced (no schema changed in memory).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import dlt
from dlt.common.schema import Schema
from dlt.common.storages.load_package import PackageStorage
from kore_sessions.warehouse.pending_packages import extracted_packages, normalized_packages

logger = logging.getLogger("kore_sessions")


def roll_schemas_forward(pipeline: dlt.Pipeline) -> list[str]:
    """Store the schema each package left behind carries where the stored one is its ancestor
    (an earlier version of it), oldest package first; return the names of the schemas rolled.

    A stored schema the package's does not descend from (another lineage, or a newer one) is
    kept: dlt's own choice then stands.
    """
    rolled: list[str] = []
    for package in packages_to_finish(Path(pipeline.working_dir)):
        carried = carried_schema(package)
        if carried.name not in pipeline.schemas:
            continue
        stored = pipeline.schemas[carried.name]
        if stored.stored_version_hash in carried.previous_hashes:
            pipeline.schemas.save_schema(carried)
            rolled.append(carried.name)
            logger.info("package %s left behind: its schema %s stored", package.name, carried.name)
    return rolled


def drop_first_extract(pipeline: dlt.Pipeline) -> int:
    """Delete the packages a pipeline without a default schema holds (its first extract, killed
    before dlt saved its state, which nothing of them reached); return how many there were.

    The state stays as it is: it is the one the extract started from.
    """
    if pipeline.default_schema_name is not None:
        return 0
    packages = packages_to_finish(Path(pipeline.working_dir))
    for package in packages:
        shutil.rmtree(package)
    if packages:
        logger.info(
            "%d package(s) of a first extract killed before dlt kept it: fetched again", len(packages)
        )
    return len(packages)


def carried_schema(package: Path) -> Schema:
    """The schema a package was extracted (or normalized) with, as the package keeps it."""
    return Schema.from_dict(
        json.loads((package / PackageStorage.SCHEMA_FILE_NAME).read_text()), validate_schema=False
    )


def packages_to_finish(working_dir: Path) -> list[Path]:
    """The folders of the packages still to load, extracted or normalized, oldest first (a load
    id is the time of its extract)."""
    packages = extracted_packages(working_dir) + normalized_packages(working_dir)
    return sorted(packages, key=lambda path: float(path.name))
