"""A pipeline whose state names a schema it does not store: one is put back before anything asks.

dlt's sync of a pipeline with the dataset's newer state deletes the stored schemas, then saves
the dataset's, then the state (`_install_state_and_schemas`); its wipe of a pipeline whose dataset
is gone deletes the working folder file by file. A run killed between those steps left a state
naming a default schema that is not stored, and every later `load` and `audit` of the pipeline
failed on `SchemaNotFoundError`: the dataset's turn and credentials here ask dlt for a client
with the default schema before dlt's sync could put it back (and the sync's own wipe asks too).

The schema put back is, in this order:
- the one the newest package still to load carries (it descends from the schema the state
  named, which the package was extracted with);
- else the dataset's newest of that name (what dlt's sync restores);
- else a new, empty one, as dlt's sync makes when the dataset has none: its sync then starts the
  pipeline again from the dataset's state, or from scratch when there is no dataset.
The caller holds the pipeline fresh from its files, its working folder mended.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dlt
from dlt.common.destination.client import WithStateSync
from dlt.common.schema import Schema
from dlt.common.storages.load_package import PackageStorage
from kore_sessions.runtime.pending_schemas import carried_schema, packages_to_finish
from kore_sessions.warehouse.dataset import warehouse_exists
from kore_sessions.warehouse.turn import warehouse_turn

logger = logging.getLogger("kore_sessions")


def store_missing_schema(pipeline: dlt.Pipeline) -> str | None:
    """Store the default schema where the pipeline's state names one its storage lacks; return
    its name (None, unless a run was killed inside dlt's sync or wipe).

    Only the default schema (the only one this project's pipelines have): the state's other
    names may be a killed save's temporary file (dlt lists every file of its schema folder).
    """
    name = pipeline.default_schema_name
    if name is None or pipeline.schemas.has_schema(name):
        return None
    origin, schema = schema_to_store(pipeline, name)
    pipeline.schemas.save_schema(schema)
    logger.warning("schema %s, which the pipeline's state names, was not stored: from %s", name, origin)
    return name


def schema_to_store(pipeline: dlt.Pipeline, name: str) -> tuple[str, Schema]:
    """The schema `name` to put back, and where it comes from (said in the log)."""
    carried = package_schema(pipeline, name)
    if carried is not None:
        return "the newest package still to load", carried
    loaded = dataset_schema(pipeline, name)
    if loaded is not None:
        return "the dataset", loaded
    return "nowhere (a new, empty one)", Schema(name)


def package_schema(pipeline: dlt.Pipeline, name: str) -> Schema | None:
    """The schema `name` as the newest package still to load carries it; None: no package does.

    A package without its schema file (a wipe killed inside it) is passed over: dlt's sync
    ends the wipe.
    """
    for package in reversed(packages_to_finish(Path(pipeline.working_dir))):
        if (package / PackageStorage.SCHEMA_FILE_NAME).is_file():
            carried = carried_schema(package)
            if carried.name == name:
                return carried
    return None


def dataset_schema(pipeline: dlt.Pipeline, name: str) -> Schema | None:
    """The dataset's newest schema `name`; None: no dataset, or none of that name. Read whatever
    `restore_from_destination` says: it restores no state (and `audit` syncs regardless).

    The destination's client is opened as dlt opens it for a pipeline without a default schema
    (with an ad hoc one): it cannot load the default schema the state names.
    """
    with without_default_schema(pipeline):
        if not warehouse_exists(pipeline):  # a DuckDB file is not made by reading it
            return None
        with warehouse_turn(pipeline), pipeline.destination_client() as client:
            info = client.get_stored_schema(name) if isinstance(client, WithStateSync) else None
    return Schema.from_dict(json.loads(info.schema)) if info else None


@contextmanager
def without_default_schema(pipeline: dlt.Pipeline) -> Iterator[None]:
    """The pipeline without its default schema's name, in memory only (its state is not saved
    meanwhile): dlt then opens its destination's client with an ad hoc schema."""
    default, pipeline.default_schema_name = pipeline.default_schema_name, None
    try:
        yield
    finally:
        pipeline.default_schema_name = default
