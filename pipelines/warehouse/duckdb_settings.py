"""DuckDB's settings: a bounded memory and a core left to the extract while loading (less memory
still while a load step only appends); every core and a memory of their own while models build
(`build_memory.py`).

The user's `destination.duckdb.credentials.global_config` holds over both.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import Any

import dlt
from dlt.destinations.exceptions import DatabaseException
from dlt.destinations.sql_client import SqlClientBase
from kore_sessions.source import ConfigError
from kore_sessions.warehouse.build_memory import BuildMemory, build_memory_mb
from kore_sessions.warehouse.turn import destination_credentials

logger = logging.getLogger("kore_sessions")

# DuckDB while loading: no insertion order to keep, which lets large INSERT ... SELECT
# statements stream.
DUCKDB_SETTINGS = {"preserve_insertion_order": False}
# DuckDB's memory limit while loading, at least (it spills to disk beyond it; DuckDB's own
# default is 80% of the machine's memory). At 160 MB a 1,000,000-session backfill peaked at
# 493 MB and its bounded merge (20 packages) passed; at 64 MB the merge of the messages bench's
# messages ran out of it.
LOAD_MEMORY_LIMIT_MB = 160
# DuckDB's memory a load thread needs: each thread of an insert holds buffers of its own. An
# insert of a 300,000-row Parquet file of 24 columns in row groups of 10,000 rows (dlt's files
# hold at most ARROW_BATCH_SESSIONS rows a group) ran out of memory on 3 threads under 48 MB, 7
# under 128 MB and 15 under 160 MB, and passed on 1 under 24 MB, 3 under 64 MB, 7 under 192 MB
# and 15 under 240 MB: 48 MB a thread leaves about twice that. A load takes the larger of this
# and LOAD_MEMORY_LIMIT_MB; a load step whose jobs all append (a first backfill) only this,
# since it holds no merge's staging copy.
MEMORY_PER_LOAD_THREAD_MB = 48
# Measured on 2 cores (one load thread: 48 MB for an append step). A 1,000,000-session first
# backfill peaked at 473-489 MB with 160 MB, 425 MB with 96 MB, 404-406 MB with 64 MB, 385 MB with
# 48 MB and 376 MB with 32 MB (one run each, 22.6-25.7 s). At 48 MB (two runs alternated with
# 160 MB): 393-398 MB in 25.8-26.3 s against 471-473 MB in 23.4-23.9 s, and at 200,000 sessions
# 345-353 MB in 5.9-6.2 s against 422-432 MB in 5.5-5.7 s: DuckDB spills what it cannot hold,
# ~8-10% slower. The messages bench's first backfill loaded within it.
# DuckDB's names of its memory limit (`max_memory` is an alias), as a user may write them.
MEMORY_LIMIT_NAMES = frozenset({"memory_limit", "max_memory"})
# DuckDB's threads while loading: the cores less one, at least one. The next package is
# extracted beside each load step (`package_ahead.py`) on about one core (its work holds the
# GIL), and DuckDB's own default of every core made the two fight over them: on 2 cores, a
# 500,000-session first backfill took 12.2-12.8 s with 1 thread against 14.3-14.4 s with 2
# (three alternated runs each), and a 1,000,000-session one 23.9-24.7 s against 26.0-27.5 s,
# peaking ~20 MB lower. dlt alone (nothing beside it) appended in 4.3 s against 4.7-5.5 s, and
# merged in 13.1-13.8 s against 12.2-13.1 s.
CORES_LEFT_TO_THE_EXTRACT = 1
# DuckDB's names of its thread count (`worker_threads` is an alias).
THREADS_NAMES = frozenset({"threads", "worker_threads"})
# The settings a load and a model build each take their own of, unless the user set them (by any
# of DuckDB's names for them).
OWN_SETTINGS = {"memory_limit": MEMORY_LIMIT_NAMES, "threads": THREADS_NAMES}
# How DuckDB shows a memory limit (`current_setting('memory_limit')`): `953.6 MiB`.
SHOWN_SIZE = re.compile(r"^([0-9.]+) (bytes|KiB|MiB|GiB|TiB|PiB)$")
SIZE_UNITS = {"bytes": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40, "PiB": 2**50}
# Where users set DuckDB's settings (a table in config.toml, a JSON object in the environment).
SETTINGS_KEY = "destination.duckdb.credentials.global_config"


def configured_settings() -> dict[str, Any]:
    """The DuckDB settings the user configured (none: an empty table).

    Raises:
        ConfigError: they are not a table of settings.
    """
    configured = dlt.config.get(SETTINGS_KEY) or {}
    if isinstance(configured, str):  # from an environment variable: a JSON object
        try:
            configured = json.loads(configured)
        except ValueError:
            configured = None
    if not isinstance(configured, dict):
        raise ConfigError(
            f"{SETTINGS_KEY} must be a table of DuckDB settings "
            '(DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG=\'{"memory_limit": "1GB"}\')'
        )
    return configured


def load_settings() -> dict[str, Any]:
    """DuckDB's settings for a pipeline: DUCKDB_SETTINGS, `load_threads()` and a memory limit for
    them (`load_memory_limit`) under the user's (a limit or a thread count of theirs, by any
    name, replaces the load's; the limit grows with their threads).

    Raises:
        ConfigError: the user's settings are not a table of settings.
    """
    configured = configured_settings()
    threads = threads_in_force(configured)
    ours = {**DUCKDB_SETTINGS, "memory_limit": load_memory_limit(threads), "threads": threads}
    kept = {
        name: value for name, value in ours.items() if not sets_any(configured, OWN_SETTINGS.get(name, ()))
    }
    return {**kept, **configured}


def append_step_settings() -> dict[str, Any]:
    """DuckDB's settings over the load's for a load step whose jobs all append: a memory limit of
    MEMORY_PER_LOAD_THREAD_MB a thread, unless the user configured a limit (by any name: theirs
    holds for every step).

    Raises:
        ConfigError: the user's settings are not a table of settings.
    """
    configured = configured_settings()
    if sets_any(configured, MEMORY_LIMIT_NAMES):
        return {}
    return {"memory_limit": load_memory_limit(threads_in_force(configured), appends_only=True)}


def load_memory_limit(threads: int, appends_only: bool = False) -> str:
    """DuckDB's memory limit for a load on `threads` threads: MEMORY_PER_LOAD_THREAD_MB each, and
    at least LOAD_MEMORY_LIMIT_MB unless the load only appends."""
    threads_need = MEMORY_PER_LOAD_THREAD_MB * threads
    return f"{threads_need if appends_only else max(LOAD_MEMORY_LIMIT_MB, threads_need)}MB"


def threads_in_force(configured: dict[str, Any]) -> int:
    """DuckDB's threads while loading: the user's (by any name, when a whole number), else
    `load_threads()`."""
    for name, value in configured.items():
        if str(name).lower() in THREADS_NAMES:
            try:
                return max(1, int(value))
            except (TypeError, ValueError):
                break  # DuckDB says what is wrong with it when dlt sets it
    return load_threads()


def load_threads() -> int:
    """DuckDB's threads while loading: the cores this process may use less
    CORES_LEFT_TO_THE_EXTRACT, at least one."""
    affinity = getattr(os, "sched_getaffinity", None)  # Linux; elsewhere every core
    cores = len(affinity(0)) if affinity else (os.cpu_count() or 1)
    return max(1, cores - CORES_LEFT_TO_THE_EXTRACT)


def sets_any(settings: dict[str, Any], names: Collection[str]) -> bool:
    """Whether DuckDB settings hold one of a setting's names (DuckDB's names ignore case)."""
    return any(str(name).lower() in names for name in settings)


@contextmanager
def settings_for_models(
    client: SqlClientBase[Any], pipeline: dlt.Pipeline, sessions_table: str | None
) -> Iterator[BuildMemory]:
    """Give a model build on DuckDB its own memory limit and every core, and the load's back after.

    The build runs on DuckDB's own thread count (every core: no extract runs beside a build) and
    under `build_memory_mb` for those threads and the sessions loaded (or DuckDB's own default
    where that is lower), except for a setting the user configured (theirs holds for builds
    too). After it (built or failed, and rolled back) the pipeline's settings are put back, for a
    connection of the same process held open across the build.

    Args:
        client: The build's open SQL client.
        pipeline: The build's pipeline (other warehouses keep their own settings).
        sessions_table: The loaded sessions' table, qualified (None: none loaded yet).

    Yields:
        The build's memory, which the build may raise when DuckDB runs out of it.

    Raises:
        ConfigError: the user's DuckDB settings are not a table of settings.
    """
    if pipeline.destination.destination_name != "duckdb":
        yield BuildMemory()
        return
    configured = configured_settings()
    changed = [name for name, names in OWN_SETTINGS.items() if not sets_any(configured, names)]
    memory = BuildMemory(client)
    try:  # settings put back whatever fails from here
        for name in changed:
            client.execute_sql(f"RESET {name}")  # DuckDB's own default
        if "memory_limit" in changed:
            ((default, threads),) = client.execute_sql(
                "SELECT current_setting('memory_limit'), current_setting('threads')"
            )
            counted = f"SELECT count(*) FROM {sessions_table}" if sessions_table else "SELECT 0"
            ((sessions,),) = client.execute_sql(counted)
            memory.ceiling_mb = shown_bytes(str(default)) / 10**6  # DuckDB's MB: 10**6 bytes
            memory.set_limit(build_memory_mb(int(threads), int(sessions)))
        yield memory
    finally:
        put_back(client, changed, destination_credentials(pipeline).global_config or {})


def put_back(client: SqlClientBase[Any], names: list[str], loads: dict[str, Any]) -> None:
    """Set DuckDB's settings back to the pipeline's (those it has not: DuckDB's own default)."""
    for name in names:
        try:
            if loads.get(name) is None:
                client.execute_sql(f"RESET {name}")
            else:
                client.execute_sql(f"SET {name} = %s", str(loads[name]))
        except DatabaseException as error:  # a connection held open keeps the build's setting
            logger.warning("DuckDB's %s was not put back after the model build (%s)", name, error)


def shown_bytes(shown: str) -> float:
    """Bytes of a memory limit as DuckDB shows it (`953.6 MiB`); infinite when unreadable."""
    match = SHOWN_SIZE.match(shown.strip())
    return float(match[1]) * SIZE_UNITS[match[2]] if match else float("inf")
