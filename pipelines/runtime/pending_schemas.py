"""A pipeline's stored schemas, never older than the packages it has still to normalize and load.

dlt normalizes an extracted package with the schema its pipeline stores, not with the one the
package carries ("Storage schema was used"), and two moments leave the stored one older:
- dlt commits an extracted package and only then saves the pipeline's schema: a run killed
  between the two leaves a package whose new tables or columns the stored schema lacks;
- `sync_destination` puts the dataset's schema back when the dataset's state is as new as the
  local one and differs, as it is after a run killed between the commit and dlt's save of the
  local state, then another killed after its next extract.
The next normalize of such a package failed, on every later run (`KeyError:
'sessions__session_lang'`, or a load step's "Table ... does not have a column"). A stored
schema that is an ancestor of a pending package's is rolled forward to it.
"""

from __future__ import annotations

import json
from pathlib import Path

import dlt
from dlt.common.schema import Schema
from dlt.common.storages.load_package import PackageStorage
from dlt.common.storages.normalize_storage import NormalizeStorage
from kore_sessions.runtime.working_folder import NORMALIZE_FOLDER
from kore_sessions.warehouse.pending_packages import normalized_packages


def roll_schemas_forward(pipeline: dlt.Pipeline) -> list[str]:
    """Store the schema each pending package carries where the stored one is its ancestor (an
    earlier version of it), oldest package first; return the names of the schemas rolled forward.

    A stored schema the package's does not descend from (another lineage, or a newer one) is
    kept: dlt's own choice then stands.
    """
    rolled: list[str] = []
    for package in pending_packages(Path(pipeline.working_dir)):
        carried = Schema.from_dict(
            json.loads((package / PackageStorage.SCHEMA_FILE_NAME).read_text()), validate_schema=False
        )
        if carried.name not in pipeline.schemas:
            continue
        stored = pipeline.schemas[carried.name]
        if stored.stored_version_hash in carried.previous_hashes:
            pipeline.schemas.save_schema(carried)
            rolled.append(carried.name)
    return rolled


def pending_packages(working_dir: Path) -> list[Path]:
    """The packages still to load, extracted or normalized, oldest first (a load id is the time
    of its extract)."""
    extracted = working_dir / NORMALIZE_FOLDER / NormalizeStorage.EXTRACTED_FOLDER
    packages = [path for path in extracted.glob("*") if path.is_dir()] + normalized_packages(working_dir)
    return sorted(packages, key=lambda path: float(path.name))
