"""The Parquet files dlt's extract writes for a pipeline whose loads read them on this machine:
written without compression, unless the user configured it.

DuckDB copies a package's files from the pipeline's working folder, and PostgreSQL's ADBC
driver streams them from it; the files are dropped once loaded. Snappy (dlt's default) then only
costs the extract's thread time: `kore-sessions load` over 500,000 sessions extracted in 10.5 s
against 11.1 s with it (four alternated runs each, the load steps unchanged). A destination that
takes the files elsewhere (a bucket, a warehouse's stage) keeps dlt's default.

The default is held by a config provider of this project's, added after every provider of the
user's (as `dlt.config.register_provider` adds one), under the pipeline's own name
(`<pipeline>.data_writer`), and only where no provider of the user's sets
`<pipeline>.data_writer.compression` or `data_writer.compression`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import dlt
from dlt.common.configuration.container import Container
from dlt.common.configuration.providers import ConfigProvider, DictionaryProvider
from dlt.common.configuration.specs.pluggable_run_context import PluggableRunContext

# dlt's types of the destinations whose load step reads the extract's files on this machine.
LOCAL_FILE_DESTINATIONS = frozenset({"dlt.destinations.duckdb", "dlt.destinations.postgres"})
# dlt's config section of its file writers, and the Parquet writer's compression in it.
DATA_WRITER_SECTION = "data_writer"
COMPRESSION_KEY = "compression"
# What the extract's Parquet is written with for those destinations: nothing to undo at the load.
EXTRACT_COMPRESSION = "none"


class ProjectDefaults(DictionaryProvider):
    """dlt config values this project sets unless the user does (a provider of its own name)."""

    NAME: ClassVar[str] = "kore-sessions defaults"


DEFAULTS = ProjectDefaults()


def uncompressed_extract_files(pipeline: dlt.Pipeline) -> bool:
    """Have the pipeline's extract write Parquet without compression where its loads read the
    files on this machine and the user set no compression; whether it does.

    Args:
        pipeline: A pipeline with its destination.
    """
    providers = Container()[PluggableRunContext].providers
    if DEFAULTS not in providers.providers:
        providers.add_provider(DEFAULTS)
    name = pipeline.pipeline_name
    destination = pipeline.destination
    local = destination is not None and destination.destination_type in LOCAL_FILE_DESTINATIONS
    ours = EXTRACT_COMPRESSION if local and not _user_sets_compression(providers.providers, name) else None
    DEFAULTS.set_value(COMPRESSION_KEY, ours, name, DATA_WRITER_SECTION)  # None takes an earlier one out
    return ours is not None


def _user_sets_compression(providers: Sequence[ConfigProvider], pipeline_name: str) -> bool:
    """Whether a provider of the user's (any but ours) sets the writers' compression, for the
    pipeline or for every one."""
    users = [provider for provider in providers if provider is not DEFAULTS]
    scopes = (pipeline_name, None)
    return any(
        provider.get_value(COMPRESSION_KEY, str, scope, DATA_WRITER_SECTION)[0] is not None
        for provider in users
        for scope in scopes
    )
