"""DuckDB's settings: a bounded memory while loading, more while models build, and the user's
`destination.duckdb.credentials.global_config` over both."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dlt
from dlt.destinations.exceptions import DatabaseException
from kore_sessions.source import ConfigError
from kore_sessions.warehouse.turn import destination_credentials

logger = logging.getLogger("kore_sessions")

# DuckDB while loading: a memory limit (it spills to disk beyond it; DuckDB's own default is 80%
# of the machine's memory), and no insertion order to keep, which lets large INSERT ... SELECT
# statements stream. At 160 MB a 1,000,000-session backfill peaked at 493 MB and its bounded
# merge (20 packages) passed; at 64 MB the merge of the messages bench's messages ran out of it.
DUCKDB_SETTINGS = {"memory_limit": "160MB", "preserve_insertion_order": False}
MEMORY_LIMIT = "memory_limit"
# DuckDB while models build, unless the user set a limit: the containment rollups over 2,000,000
# sessions ran out of the load's 160 MB, and over 1,000,000 of 100 MB (measured; a build is all
# models in one transaction); at 512 MB and at 1 GB the 2,000,000 built in 24 s, peaking at 724
# MB and 1.26 GB. DuckDB's own default (80% of the machine's memory) built them in 18 s but
# peaked at 5.8 GB. 1 GB leaves room for about four times those sessions, and spills beyond.
MODEL_BUILD_MEMORY_LIMIT = "1GB"
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
    """DuckDB's settings for a pipeline: DUCKDB_SETTINGS under the user's."""
    return {**DUCKDB_SETTINGS, **configured_settings()}


@contextmanager
def memory_for_models(client: Any, pipeline: Any) -> Iterator[None]:
    """While models build on DuckDB, MODEL_BUILD_MEMORY_LIMIT instead of the load's limit, unless
    the user set one; the load's limit is put back after (a database held open across the build,
    by a load of the same process, keeps its own).

    Args:
        client: The build's open SQL client.
        pipeline: The build's pipeline (other warehouses keep their own settings).
    """
    if pipeline.destination.destination_name != "duckdb" or MEMORY_LIMIT in configured_settings():
        yield
        return
    loads_limit = (destination_credentials(pipeline).global_config or {}).get(MEMORY_LIMIT)
    client.execute_sql(f"SET memory_limit = '{MODEL_BUILD_MEMORY_LIMIT}'")
    try:
        yield
    finally:
        try:
            if loads_limit is None:
                client.execute_sql("RESET memory_limit")
            else:
                client.execute_sql(f"SET memory_limit = '{loads_limit}'")
        except DatabaseException as error:  # the database closes with the client: nothing lasts
            logger.warning("DuckDB's memory limit was not put back after the model build (%s)", error)
