"""Five fixes to dlt 1.31, each applied in one place.

1. `lend_resource_to_nested_tables`: dlt groups extract metrics by
`schema.get_table(name)["resource"]`, which nested tables never have, so an item written
straight into a nested table (an Arrow child table marked with `parent_table_name`) fails with
`KeyError: 'resource'`. While the metrics are computed, each nested table borrows its root
table's resource; nothing is stored in the schema.

2. `duckdb_kept_open`: dlt's DuckDB client closes the database whenever the last of its
connections is handed back (`DuckDbConnectionPool.return_conn`), several times in one load step,
and it sets `enable_checkpoint_on_shutdown`: each close writes the whole WAL into the file
(11-16% of a backfill's time, profiled). A connection held open for the step keeps the database
open (DuckDB shares one database per file and process), so the step checkpoints once, at its
end. dlt's public configuration has no setting for this. DuckDB refuses a second connection to
a file with other connect-time settings, so the kept one is opened with those dlt would pass.

3. `child_tables_follow_root`: a child table's hints are set by the items written to it, so a
child table without rows in a package keeps the write disposition of the last package that had
some. After an appended package (a first backfill), dlt would then merge the root through a
staging copy of the child table that it never made ("table does not exist"). Each package sets
its child tables' disposition to its root's in the source's schema as it begins.

4. `duckdb_step_settings`: dlt sets a DuckDB file's `credentials.global_config` each time its
client opens the database (`DuckDbConnectionPool.borrow_conn`, several times in one load step),
from the credentials it resolved for the whole pipeline, so a setting for one load step set on a
connection of ours is set back. While a step runs, the settings given for its file are passed
to each of those borrows as `global_config`, which dlt lays over the credentials' own.

5. `type_hints_read_once`: dlt validates a table's hints each time an item is written to it (an
Arrow table: 4 a batch of sessions, 200 over 500,000), and each validation reads the type hints
of the TypedDicts it checks against again (`get_type_hints` in `dlt.common.validation`, a TODO of
dlt's own): 2,847 reads over a 500,000-session backfill, on the extract's main thread, holding
the GIL the source's threads wait for. A class's hints are read once; the validation gets a copy
each time. dlt's extract of 204 Arrow tables (510,000 sessions) took 1.83-1.88 s, not 2.01-2.12 s.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dlt
import duckdb
from dlt.common import validation
from dlt.common.schema.utils import get_root_table, is_nested_table
from dlt.destinations.impl.duckdb.configuration import DuckDbConnectionPool
from dlt.extract.extract import Extract

# Marks on the functions that replace dlt's, so that each patch is made once per process.
_PATCHED = "_kore_sessions_nested_metrics"
_STEP_SETTINGS_PATCHED = "_kore_sessions_step_settings"
_HINTS_PATCHED = "_kore_sessions_hints_once"
# The settings of the load step running on each DuckDB file (by its absolute path); a step holds
# the file's turn (`warehouse_turn`), so one file has one step at a time.
_STEP_SETTINGS: dict[str, dict[str, Any]] = {}
logger = logging.getLogger("kore_sessions")
# Settings of a DuckDB `global_config` that dlt passes to `duckdb.connect` rather than SET
# (`DuckDbConnectionPool.borrow_conn` in dlt 1.31).
DUCKDB_CONNECT_SETTINGS = ("custom_user_agent",)


def lend_resource_to_nested_tables() -> None:
    """Patch `Extract._compute_metrics` (idempotent)."""
    original = Extract._compute_metrics
    if getattr(original, _PATCHED, False):
        return

    def compute_metrics(self: Extract, load_id: str, source: Any) -> Any:
        tables = source.schema.tables
        lent = [table for table in tables.values() if is_nested_table(table) and "resource" not in table]
        for table in lent:
            table["resource"] = get_root_table(tables, table["name"]).get("resource")
        try:
            return original(self, load_id, source)
        finally:
            for table in lent:
                table.pop("resource", None)

    setattr(compute_metrics, _PATCHED, True)
    Extract._compute_metrics = compute_metrics  # type: ignore[method-assign]


def type_hints_read_once() -> None:
    """Patch the `get_type_hints` of `dlt.common.validation` to read each class's once (idempotent)."""
    if not getattr(validation.get_type_hints, _HINTS_PATCHED, False):
        validation.get_type_hints = hints_read_once(validation.get_type_hints)  # type: ignore[attr-defined]


def hints_read_once(read: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """`read` (a `get_type_hints`) that reads a class's hints once for each global namespace and
    `include_extras`, and returns a copy; any other call (a local namespace, not a class) reads."""
    known: dict[tuple[type, int, bool], tuple[dict[str, Any] | None, dict[str, Any]]] = {}

    def get_type_hints(
        obj: Any, globalns: dict[str, Any] | None = None, localns: Any = None, include_extras: bool = False
    ) -> dict[str, Any]:
        if localns is not None or not isinstance(obj, type):
            return read(obj, globalns, localns, include_extras)
        key = (obj, id(globalns), include_extras)
        if key not in known:  # the namespace is kept beside, so its id names it while the entry lives
            known[key] = (globalns, read(obj, globalns, None, include_extras))
        return dict(known[key][1])

    setattr(get_type_hints, _HINTS_PATCHED, True)
    return get_type_hints


@contextmanager
def duckdb_kept_open(database: Path | None, global_config: dict[str, Any] | None = None) -> Iterator[None]:
    """Keep a DuckDB file open while dlt loads into it, and checkpoint it once at the end.

    The connection is opened as dlt opens its own (with the same connect-time settings, so DuckDB
    hands both the same database); dlt's other settings apply to it as they are. When the step fails,
    the connection is closed without a checkpoint of ours (DuckDB's own on shutdown still runs).

    Args:
        database: The DuckDB file; None (another destination) keeps nothing open.
        global_config: dlt's DuckDB settings (`credentials.global_config`): those it sets at
            connect time (DUCKDB_CONNECT_SETTINGS) are set on the kept connection too.
    """
    if database is None:
        yield
        return
    settings = global_config or {}
    connect = {key: settings[key] for key in DUCKDB_CONNECT_SETTINGS if key in settings}
    keeper = duckdb.connect(str(database), config=connect)
    try:
        yield
        try:
            keeper.execute("CHECKPOINT")
        except duckdb.Error as error:  # the load is committed; closing checkpoints it too
            logger.warning("DuckDB's checkpoint after a load step failed (%s); closing checkpoints it", error)
    finally:
        keeper.close()


def child_tables_follow_root(children: list[str], write_disposition: str) -> None:
    """Set the write disposition of the child tables the schema has to their root's (call in a
    resource's generator, as its package begins).

    Args:
        children: The root table's child tables.
        write_disposition: The root's write disposition in this package.
    """
    tables = dlt.current.source_schema().tables
    for name in children:
        if name in tables:
            tables[name]["write_disposition"] = write_disposition  # type: ignore[typeddict-item]


@contextmanager
def duckdb_step_settings(database: Path | None, settings: dict[str, Any]) -> Iterator[None]:
    """Lay DuckDB settings over dlt's own while a load step opens the database.

    Args:
        database: The DuckDB file the step loads; None (another destination) sets nothing.
        settings: DuckDB settings for the step (none: dlt's own hold).

    Yields:
        Nothing: the step runs inside.
    """
    if database is None or not settings:
        yield
        return
    _pass_step_settings_to_dlt()
    key = _database_key(database)
    _STEP_SETTINGS[key] = dict(settings)
    try:
        yield
    finally:
        _STEP_SETTINGS.pop(key, None)


def _pass_step_settings_to_dlt() -> None:
    """Patch `DuckDbConnectionPool.borrow_conn` to pass the step's settings on (idempotent)."""
    original = DuckDbConnectionPool.borrow_conn
    if getattr(original, _STEP_SETTINGS_PATCHED, False):
        return

    def borrow_conn(
        self: DuckDbConnectionPool,
        global_config: dict[str, Any] | None = None,
        local_config: dict[str, Any] | None = None,
        pragmas: list[str] | None = None,
    ) -> duckdb.DuckDBPyConnection:
        database = getattr(self.credentials, "database", None)
        step = _STEP_SETTINGS.get(_database_key(database)) if isinstance(database, str) else None
        if step:
            global_config = {**step, **(global_config or {})}
        return original(self, global_config, local_config, pragmas)

    setattr(borrow_conn, _STEP_SETTINGS_PATCHED, True)
    DuckDbConnectionPool.borrow_conn = borrow_conn  # type: ignore[method-assign]


def _database_key(database: str | Path) -> str:
    """A DuckDB file's absolute path, however it was written."""
    return str(Path(database).expanduser().absolute())
