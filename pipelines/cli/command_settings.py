"""The command line's arguments as typed settings, made once at the top of each command.

Below the commands nothing reads the parsed arguments: a command turns them into
`WarehouseSettings`, `SourceSettings` and `ModelSettings` (and its own few values) and hands
those down.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dlt
from kore_sessions.cli.flags import add_field_flags, given_values, non_negative_float
from kore_sessions.runtime.lock import pipelines_folder
from kore_sessions.runtime.pipeline import (
    DEFAULT_DATASET,
    DEFAULT_DUCKDB_FILE,
    PIPELINE_NAME,
    check_dataset_name,
    check_pipeline_name,
    duckdb_file,
    make_pipeline,
)
from kore_sessions.source import ConfigError, KoreSessionsOptions, resolve_options
from kore_sessions.source.options import option_fields
from kore_sessions.warehouse.model_files import ModelError
from kore_sessions.warehouse.model_settings import ModelSettings, model_setting_fields
from kore_sessions.warehouse.turn import DEFAULT_TURN_TIMEOUT


@dataclass(frozen=True)
class WarehouseSettings:
    """Which warehouse, dataset and pipeline a command works on: the warehouse flags, declared
    once (each field is its flag, see `kore_sessions.cli.flags`)."""

    destination: str = field(default="duckdb", metadata={"help": "dlt destination (default duckdb)"})
    dataset: str = field(default=DEFAULT_DATASET, metadata={"help": "dataset of the sessions and models"})
    pipeline_name: str | None = field(
        default=None,
        metadata={
            "help": "the pipeline (a partition of bots): its own state, lock and staging dataset "
            "(default dlt's pipeline_name key, else kore_sessions)"
        },
    )
    pipelines_dir: str | None = field(default=None, metadata={"help": "where dlt keeps pipeline state"})
    duckdb_file: str | None = field(
        default=None, metadata={"help": f"DuckDB database file (default ./{DEFAULT_DUCKDB_FILE})"}
    )
    turn_timeout: float | None = field(
        default=None,
        metadata={
            "help": "seconds to wait while another process loads into the dataset or builds its models "
            f"(default {DEFAULT_TURN_TIMEOUT:g})",
            "type": non_negative_float,
        },
    )

    @classmethod
    def add_flags(
        cls,
        command: argparse.ArgumentParser,
        only: Iterable[str] | None = None,
        helps: Mapping[str, str] | None = None,
    ) -> None:
        """The warehouse flags (or those named in `only`, with `helps` for another use)."""
        names = None if only is None else set(only)
        fields = [field for field in dataclasses.fields(cls) if names is None or field.name in names]
        add_field_flags(command, fields, helps=helps)

    @classmethod
    def from_arguments(cls, args: argparse.Namespace) -> WarehouseSettings:
        """The settings the flags give (a flag the command lacks, or not given: its default)."""
        return cls(**given_values(args, dataclasses.fields(cls)))

    @property
    def name(self) -> str:
        """The pipeline (partition) the command works on: `--pipeline-name`, else dlt's
        `pipeline_name` key (env `PIPELINE_NAME`), else the default one."""
        configured = dlt.config.get("pipeline_name")
        return check_pipeline_name(
            self.pipeline_name or (configured if isinstance(configured, str) else PIPELINE_NAME)
        )

    @property
    def folder(self) -> Path:
        """Where the pipelines are kept: `--pipelines-dir`, else dlt's folder."""
        return pipelines_folder(self.pipelines_dir)

    def require(self) -> None:
        """Fail (creating nothing) when the flags name a DuckDB file that is not there (a dataset
        name that cannot work is named first: a mistake in the command comes before its effect)."""
        check_dataset_name(self.dataset)
        if self.destination == "duckdb" and not duckdb_file(self.duckdb_file).exists():
            raise ModelError(
                f"no DuckDB file at {duckdb_file(self.duckdb_file)}: load sessions first, "
                "or name the file with --duckdb-file"
            )

    @contextmanager
    def reader(self) -> Iterator[dlt.Pipeline]:
        """The warehouse, through a pipeline kept in a temporary folder: a command that owns no
        pipeline (`models`, `report`, `export`, `forget`) needs no pipeline's lock (it takes the
        dataset's turn) and creates nothing in the pipelines folder."""
        self.require()
        with tempfile.TemporaryDirectory(prefix="kore-sessions-") as folder:
            yield make_pipeline(self.destination, self.dataset, folder, self.duckdb_file, self.name)

    def pipeline(self, name: str | None = None) -> dlt.Pipeline:
        """The pipeline of the warehouse (or pipeline `name` of it), in the pipelines folder."""
        return make_pipeline(
            self.destination, self.dataset, self.pipelines_dir, self.duckdb_file, name or self.name
        )


@dataclass(frozen=True)
class SourceSettings:
    """The source options the command line gives (the rest resolve from config).

    Attributes:
        overrides: Option values by name, as `kore_sessions(**overrides)` takes them.
    """

    overrides: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_arguments(cls, args: argparse.Namespace) -> SourceSettings:
        """The source flags given, checked against each other.

        Raises:
            ConfigError: --bot with --all-bots, or --end without --start.
        """
        overrides = given_values(args, option_fields())
        if args.all_bots and args.bot_ids:
            raise ConfigError("give either --bot or --all-bots, not both")
        if args.all_bots:
            overrides["bot_ids"] = None
        elif args.bot_ids:
            overrides["all_bots"] = False
        if getattr(args, "end_date", None) and not getattr(args, "start_date", None):
            raise ConfigError("--end needs --start: a bounded backfill has both ends")
        return cls(overrides)

    def options(self) -> KoreSessionsOptions:
        """The options resolved: these values over `[sources.kore_sessions]`."""
        return resolve_options(**self.overrides)


def model_settings(args: argparse.Namespace) -> ModelSettings:
    """Model settings from [models] in config, with the command line's flags on top."""
    return ModelSettings.from_config(**given_values(args, model_setting_fields()))
