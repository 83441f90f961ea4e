"""What each `kore-sessions` command does, once its arguments are parsed.

Each command turns its arguments into typed settings at its top (`command_settings`) and hands
those down; the audit is in `audit_command`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import dlt
from kore_sessions.cli.command_settings import (
    SourceSettings,
    WarehouseSettings,
    model_settings,
)
from kore_sessions.cli.folders import check_folders_on_the_way
from kore_sessions.output.failures import EXIT_INCOMPLETE
from kore_sessions.report import write_report
from kore_sessions.report.console import recent_containment_lines
from kore_sessions.runtime.leftovers import loaded_anything, working_folder_kept_only_if_used
from kore_sessions.runtime.lock import pipeline_lock
from kore_sessions.runtime.pipeline import PIPELINE_NAME, inspect_command, load_sessions
from kore_sessions.runtime.working_folder import prune_loaded_jobs
from kore_sessions.source import ConfigError, SourceRun, kore_sessions
from kore_sessions.warehouse.export import export_marts
from kore_sessions.warehouse.model_settings import ModelSettings
from kore_sessions.warehouse.models import build_models, models_unbuildable
from kore_sessions.warehouse.turn import warehouse_turn

# What a load's lock file says of its holder; the one command refused at once beside a run.
LOAD_PURPOSE = "kore-sessions load"


def command_load(args: argparse.Namespace) -> int:
    """`kore-sessions load`: one incremental run, or a bounded backfill."""
    settings = None if args.no_models else model_settings(args)
    return load(SourceSettings.from_arguments(args), WarehouseSettings.from_arguments(args), settings)


def load(source: SourceSettings, warehouse: WarehouseSettings, settings: ModelSettings | None) -> int:
    """Load the sessions (then build the models with `settings`, unless None).

    A run that fails before loading anything removes what it created (see `leftovers`).
    """
    run = SourceRun()
    sessions = kore_sessions(**source.overrides, run=run)
    opened: list[dlt.Pipeline] = []
    with pipeline_turn(warehouse, LOAD_PURPOSE, lambda: loaded_anything(opened[0] if opened else None)):
        opened.append(warehouse.pipeline())
        summary = load_sessions(opened[0], sessions, run)
        for line in summary.lines():
            print(line)
        summary.check_complete()
        if warehouse.pipelines_dir or warehouse.name != PIPELINE_NAME:  # dlt's CLI looks elsewhere
            print(f"inspect: {inspect_command(opened[0])}")
        if settings is not None:
            build_after_load(opened[0], settings)
    return 0


@contextmanager
def pipeline_turn(
    warehouse: WarehouseSettings,
    purpose: str,
    kept: Callable[[], bool] = lambda: False,
    name: str | None = None,
) -> Iterator[None]:
    """The pipeline's run lock for one command; if the command fails and `kept()` says nothing
    is worth keeping, the pipeline's working folder it made goes again (see `leftovers`).

    `load` is refused at once while another run of its pipeline holds the lock (two scheduled
    loads overlapping: the later has nothing to add); every other command waits for its turn.
    """
    name = name or warehouse.name
    lock = pipeline_lock(warehouse.pipelines_dir, name, purpose, wait=purpose != LOAD_PURPOSE)
    # The lock first: a run that does not get it has made nothing, and cleans nothing up.
    with lock, working_folder_kept_only_if_used(warehouse.folder / name, kept):
        yield


def build_after_load(pipeline: dlt.Pipeline, settings: ModelSettings) -> None:
    """Rebuild the models after a load, where the warehouse has sessions and a SQL client."""
    why_not = models_unbuildable(pipeline)
    if why_not:
        print(f"models: not built, {why_not}")
    else:
        for line in build_models(pipeline, settings).lines():
            print(line)


def command_models(args: argparse.Namespace) -> int:
    """`kore-sessions models`: (re)build the models and print the last days' containment."""
    settings = model_settings(args)
    warehouse = WarehouseSettings.from_arguments(args)
    with warehouse.reader() as pipeline, warehouse_turn(pipeline):
        for line in build_models(pipeline, settings).lines():
            print(line)
        print()
        for line in recent_containment_lines(pipeline, args.days):
            print(line)
    return 0


def command_report(args: argparse.Namespace) -> int:
    """`kore-sessions report`: write the HTML report and print its path."""
    warehouse, output = WarehouseSettings.from_arguments(args), Path(args.output)
    if output.is_dir():
        raise ConfigError(f"{args.output} is a folder: give the HTML file to write (--output)")
    check_folders_on_the_way(output.parent)
    with warehouse.reader() as pipeline, warehouse_turn(pipeline):  # not in a load's way
        written = write_report(pipeline, output, days=args.days)
    print(written)
    return 0


def command_export(args: argparse.Namespace) -> int:
    """`kore-sessions export`: one file per mart in DIR; print each with its row count."""
    warehouse, directory = WarehouseSettings.from_arguments(args), Path(args.directory)
    check_folders_on_the_way(directory)
    with warehouse.reader() as pipeline, warehouse_turn(pipeline):  # marts as one build left them
        exported = export_marts(pipeline, directory, args.file_format)
    for written in exported:
        print(f"{written.path}  {written.rows} rows")
    return 0


def command_forget(args: argparse.Namespace) -> int:
    """`kore-sessions forget`: erase the sessions of the users named, rebuild the marts."""
    from kore_sessions.warehouse.forget import forget_users

    warehouse = WarehouseSettings.from_arguments(args)
    with warehouse.reader() as pipeline:  # the dataset's turn only: beside any load
        forgotten = forget_users(pipeline, args.user_ids)
    for folder in warehouse.folder.glob("*/"):
        prune_loaded_jobs(folder)  # copies of loaded packages a crash kept, of every pipeline
    for line in forgotten.lines():
        print(line)
    return 0


def command_lookup(args: argparse.Namespace) -> int:
    """`kore-sessions lookup`: sessions by id or call id as the API has them, one JSON a line."""
    from kore_sessions.cli.lookup import by_call_ids, by_session_ids

    options = SourceSettings.from_arguments(args).options()
    warehouse = WarehouseSettings.from_arguments(args)
    config = options.run_config()
    with options.open_client(str(warehouse.folder)) as client:  # load's budget
        if args.call_ids:
            found = by_call_ids(
                client, config.bot_keys, args.call_ids, config.clock(), args.days, config.page_size
            )
        else:
            found = by_session_ids(client, config.bot_keys, args.session_ids)
    for session in found.sessions:
        print(json.dumps(session, sort_keys=True))
    if found.missing:
        print(found.missing_line(), file=sys.stderr)
        return EXIT_INCOMPLETE
    return 0


def command_demo(args: argparse.Namespace) -> int:
    """`kore-sessions demo`: sandbox API on loopback -> DuckDB file, with a report."""
    from kore_sessions.cli.demo import run_demo

    return run_demo(args.dir, days=args.days, per_day=args.per_day)
