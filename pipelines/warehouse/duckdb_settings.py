"""DuckDB's settings: a bounded memory while loading, more while models build.

The user's `destination.duckdb.credentials.global_config` holds over both.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dlt
from dlt.destinations.exceptions import DatabaseException
from dlt.destinations.sql_client import SqlClientBase
from kore_sessions.source import ConfigError
from kore_sessions.warehouse.turn import destination_credentials

logger = logging.getLogger("kore_sessions")

# DuckDB while loading: a memory limit (it spills to disk beyond it; DuckDB's own default is 80%
# of the machine's memory), and no insertion order to keep, which lets large INSERT ... SELECT
# statements stream. At 160 MB a 1,000,000-session backfill peaked at 493 MB and its bounded
# merge (20 packages) passed; at 64 MB the merge of the messages bench's messages ran out of it.
DUCKDB_SETTINGS = {"memory_limit": "160MB", "preserve_insertion_order": False}
# DuckDB's names of its memory limit (`max_memory` is an alias), as a user may write them.
MEMORY_LIMIT_NAMES = frozenset({"memory_limit", "max_memory"})
# DuckDB while models build, unless the user set a limit or DuckDB's own default is lower (a small
# machine or container): the containment rollups over 2,000,000 sessions ran out of the load's
# 160 MB, and over 1,000,000 of 100 MB (measured; a build is all models in one transaction); at
# 1 GB the 2,000,000 built in 21-24 s peaking at 1.3 GB, at 512 MB in 24 s at 724 MB. DuckDB's
# own default (80% of the machine's memory) built them in 18 s but peaked at 5.8 GB. 1 GB leaves
# room for about four times those sessions, and spills beyond.
MODEL_BUILD_MEMORY_LIMIT = "1GB"
MODEL_BUILD_MEMORY_BYTES = 10**9
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
    """DuckDB's settings for a pipeline: DUCKDB_SETTINGS under the user's (a limit of theirs, by
    any name, replaces the load's).

    Raises:
        ConfigError: the user's settings are not a table of settings.
    """
    configured = configured_settings()
    ours = DUCKDB_SETTINGS
    if sets_memory_limit(configured):
        ours = {name: value for name, value in ours.items() if name not in MEMORY_LIMIT_NAMES}
    return {**ours, **configured}


def sets_memory_limit(settings: dict[str, Any]) -> bool:
    """Whether DuckDB settings hold a memory limit, under any of its names."""
    return any(str(name).lower() in MEMORY_LIMIT_NAMES for name in settings)


@contextmanager
def memory_for_models(client: SqlClientBase[Any], pipeline: dlt.Pipeline) -> Iterator[None]:
    """Give a model build on DuckDB its own memory limit, and the load's back after.

    The build takes MODEL_BUILD_MEMORY_LIMIT, or DuckDB's own default where that is lower,
    unless the user set a limit (theirs holds for builds too). After it (built or failed, and
    rolled back) the limit of the pipeline's settings is put back, for a connection of the same
    process held open across the build.

    Args:
        client: The build's open SQL client.
        pipeline: The build's pipeline (other warehouses keep their own settings).

    Yields:
        Nothing: the build runs inside.

    Raises:
        ConfigError: the user's DuckDB settings are not a table of settings.
    """
    if pipeline.destination.destination_name != "duckdb" or sets_memory_limit(configured_settings()):
        yield
        return
    loads_limit = (destination_credentials(pipeline).global_config or {}).get("memory_limit")
    client.execute_sql("RESET memory_limit")  # DuckDB's own default: kept where it is lower
    ((default,),) = client.execute_sql("SELECT current_setting('memory_limit')")
    if shown_bytes(str(default)) > MODEL_BUILD_MEMORY_BYTES:
        client.execute_sql("SET memory_limit = %s", MODEL_BUILD_MEMORY_LIMIT)
    try:
        yield
    finally:
        try:
            if loads_limit is None:
                client.execute_sql("RESET memory_limit")
            else:
                client.execute_sql("SET memory_limit = %s", str(loads_limit))
        except DatabaseException as error:  # a connection held open keeps the build's limit
            logger.warning("DuckDB's memory limit was not put back after the model build (%s)", error)


def shown_bytes(shown: str) -> float:
    """Bytes of a memory limit as DuckDB shows it (`953.6 MiB`); infinite when unreadable."""
    match = SHOWN_SIZE.match(shown.strip())
    return float(match[1]) * SIZE_UNITS[match[2]] if match else float("inf")
