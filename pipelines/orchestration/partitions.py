"""Partitions of bots, each loaded by a pipeline of its own, then the models once: no orchestrator.

What the Dagster job (`dagster_defs`) runs, and what an Airflow DAG's tasks would call: it
imports nothing of any orchestrator, so it works without the `dagster` extra. The settings are
read the way `kore-sessions` reads its own: the source from `[sources.kore_sessions]` (a
partition sets only its `bot_ids`), the models from `[models]`, the destination's own keys
(`DESTINATION__POSTGRES__CREDENTIALS`), and `[orchestration]` (`OrchestrationSettings`): the
partitions, the warehouse as the CLI's flags name it, concurrency, retries and the schedule.

A partition `emea` is `kore-sessions load --pipeline-name kore_sessions_emea --bot ...
--no-models`: `load_sessions` with the partition's own pipeline (state, run lock, staging
dataset `<dataset>_staging_kore_sessions_emea`), so a long backfill is loaded as several
packages in a row. `build_containment_models` is `kore-sessions models`, run once after every
partition. `describe_step_failure` is a failed step's redacted line and whether a retry helps.
"""

# No `from __future__ import annotations`: dlt reads the settings' annotations at runtime.
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional

import dlt
from dlt.common.configuration import configspec, resolve_configuration
from dlt.common.configuration.specs import BaseConfiguration
from kore_sessions.output.failures import EXIT_CONFIG, describe_failure
from kore_sessions.output.redaction import known_secrets, redact
from kore_sessions.runtime.lock import pipeline_lock
from kore_sessions.runtime.pipeline import (
    DEFAULT_DATASET,
    PIPELINE_NAME,
    check_pipeline_name,
    load_sessions,
    make_pipeline,
)
from kore_sessions.runtime.summary import LoadSummary
from kore_sessions.source import ConfigError, SourceRun, kore_sessions
from kore_sessions.source.config import parse_bot_ids
from kore_sessions.warehouse.model_settings import ModelSettings
from kore_sessions.warehouse.models import build_models, models_unbuildable

# Where dlt looks for the settings: [orchestration] or ORCHESTRATION__<KEY>.
CONFIG_SECTIONS = ("orchestration",)
# The step building the SQL models after every partition: the Dagster asset, an Airflow task.
MODELS_STEP = "kore_containment_models"
# A partition's pipeline (and step) is this prefix and its group: `kore_sessions_emea`.
PARTITION_PREFIX = f"{PIPELINE_NAME}_"
# A group name: valid as a Dagster name, an Airflow task id and, after the prefix, as a
# pipeline name (no `__`, dlt issue #3427), so letters and digits joined by single underscores.
GROUP_PATTERN = re.compile(r"^[A-Za-z0-9]+(?:_[A-Za-z0-9]+)*$")
# The group of the single partition used when none are configured.
DEFAULT_GROUP = "all"
# Partitions loading at once: each is a process of ~300 MB (dlt, Arrow and the database
# driver loaded), its fetching waits on the API and its loads take turns on the dataset, so
# more processes mostly add memory.
DEFAULT_MAX_CONCURRENT = 4
# Retries of a failed step: the source already retries each request (max_attempts), so what
# fails a step is an outage or a warehouse error, which a later attempt or two may outlast.
DEFAULT_MAX_RETRIES = 2
# Seconds before a step's first retry (doubled for the next): long enough for a brief outage.
DEFAULT_RETRY_DELAY = 60.0
# The schedule: every 15 minutes keeps the tables and marts close to the API (README).
DEFAULT_SCHEDULE = "*/15 * * * *"


@configspec
class OrchestrationSettings(BaseConfiguration):
    """How the orchestrated job loads: where, which partitions, how many at once, how retried.

    Attributes:
        partitions: Groups of bots, each loaded by its own step and pipeline: a mapping
            group -> bot ids (a TOML table, or JSON in the environment); none: one partition.
        destination: dlt destination of the sessions and models, as `--destination`.
        dataset: Dataset of the sessions and models, as `--dataset`.
        pipelines_dir: Where dlt keeps the pipelines' state, as `--pipelines-dir`.
        duckdb_file: The DuckDB database file, as `--duckdb-file`.
        max_concurrent: Partitions loading at once (one process each).
        max_retries: Retries of a failed partition (or model build) before the run fails.
        retry_delay: Seconds before a step's first retry; doubled for each further one.
        schedule: Cron expression of the job's schedule (stopped until started).
    """

    partitions: Optional[Any] = None  # noqa: UP045 - dlt reads Optional from the annotation
    destination: str = "duckdb"
    dataset: str = DEFAULT_DATASET
    pipelines_dir: Optional[str] = None  # noqa: UP045
    duckdb_file: Optional[str] = None  # noqa: UP045
    max_concurrent: int = DEFAULT_MAX_CONCURRENT
    max_retries: int = DEFAULT_MAX_RETRIES
    retry_delay: float = DEFAULT_RETRY_DELAY
    schedule: str = DEFAULT_SCHEDULE


@dataclass(frozen=True)
class Partition:
    """A group of bots with a pipeline of its own (state, run lock, staging dataset).

    Attributes:
        group: The group's name, as configured.
        bot_ids: Its bots; None loads the source's configured `bot_ids` (or `all_bots`).
        pipeline_name: Its pipeline, which also names its step (Dagster asset, Airflow task).
    """

    group: str
    bot_ids: tuple[str, ...] | None
    pipeline_name: str

    def source_options(self) -> dict[str, Any]:
        """The source options this partition sets over `[sources.kore_sessions]`.

        Returns:
            `bot_ids` and `all_bots = False` for a configured group; nothing for the default.
        """
        return {} if self.bot_ids is None else {"bot_ids": list(self.bot_ids), "all_bots": False}


def resolve_settings() -> OrchestrationSettings:
    """The `[orchestration]` settings from dlt's providers, checked.

    Returns:
        The settings.

    Raises:
        ConfigError: a number out of range.
    """
    settings = resolve_configuration(OrchestrationSettings(), sections=CONFIG_SECTIONS)
    if settings.max_concurrent < 1:
        raise ConfigError(f"orchestration.max_concurrent must be at least 1, not {settings.max_concurrent}")
    if settings.max_retries < 0 or settings.retry_delay < 0:
        raise ConfigError("orchestration.max_retries and orchestration.retry_delay cannot be negative")
    return settings


def parse_partitions(value: Any) -> list[Partition]:
    """The partitions a `partitions` setting names, each bot in exactly one.

    Args:
        value: A mapping group -> bot ids (a list, a JSON list or `a,b,c`), as a mapping or a
            JSON object; None or empty: one partition, the configured bots, pipeline
            `kore_sessions` (the CLI's own).

    Returns:
        The partitions, in the order configured.

    Raises:
        ConfigError: not a mapping, a group name that cannot be used, a group without bots,
            or a bot in two groups.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return [Partition(DEFAULT_GROUP, None, PIPELINE_NAME)]
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"orchestration.partitions is not a valid JSON object: {exc}") from None
    if not isinstance(value, Mapping) or not value:
        raise ConfigError('orchestration.partitions must map groups to bot ids, e.g. {"emea": ["st-..."]}')
    owners: dict[str, str] = {}
    partitions = []
    for group, bots in value.items():
        if not GROUP_PATTERN.match(str(group)):
            raise ConfigError(f"partition name {group!r} cannot be used: letters and digits, single `_`")
        ids = tuple(dict.fromkeys(parse_bot_ids(bots)))
        if not ids:
            raise ConfigError(f"partition {group!r} has no bot ids")
        for bot in ids:
            if bot in owners:
                raise ConfigError(f"bot {bot} is in partitions {owners[bot]!r} and {group!r}: give it one")
            owners[bot] = group
        partitions.append(Partition(group, ids, check_pipeline_name(PARTITION_PREFIX + group)))
    return partitions


def configured_partitions() -> tuple[OrchestrationSettings, list[Partition]]:
    """The `[orchestration]` settings and the partitions they name, both checked.

    Returns:
        The settings and their partitions: what a job's steps are built from.

    Raises:
        ConfigError: the settings or the partitions cannot work.
    """
    settings = resolve_settings()
    return settings, parse_partitions(settings.partitions)


def warehouse_pipeline(settings: OrchestrationSettings, pipeline_name: str) -> dlt.Pipeline:
    """The pipeline `pipeline_name` on the configured destination and dataset.

    Args:
        settings: Where to load.
        pipeline_name: The pipeline (a partition's, or the CLI's own for the models).

    Returns:
        The pipeline, with its own staging dataset when it is a partition's.
    """
    return make_pipeline(
        settings.destination, settings.dataset, settings.pipelines_dir, settings.duckdb_file, pipeline_name
    )


def load_partition(partition: Partition, settings: OrchestrationSettings, orchestrator: str) -> LoadSummary:
    """One run of a partition: `kore-sessions load --pipeline-name ... --bot ... --no-models`.

    Args:
        partition: The bots and their pipeline.
        settings: Where to load.
        orchestrator: Who runs it (`dagster`, `airflow`): named, with the pipeline, to a run
            that finds the partition's run lock taken.

    Returns:
        The run's summary.

    Raises:
        Exception: whatever failed the run (`describe_step_failure` gives its line).
    """
    run = SourceRun()
    source = kore_sessions(run=run, **partition.source_options())
    purpose = f"{orchestrator} {partition.pipeline_name}"
    with pipeline_lock(settings.pipelines_dir, partition.pipeline_name, purpose):
        summary = load_sessions(warehouse_pipeline(settings, partition.pipeline_name), source, run)
    summary.check_complete()
    return summary


def build_containment_models(settings: OrchestrationSettings, orchestrator: str) -> dict[str, Any]:
    """`kore-sessions models`, once every partition has loaded.

    Args:
        settings: Where the sessions are and the models go.
        orchestrator: Who runs it, named to a run that finds the lock taken (this one waits).

    Returns:
        What the build shows (plain values): built or why not, models, seconds, what counted.
    """
    with pipeline_lock(settings.pipelines_dir, PIPELINE_NAME, f"{orchestrator} {MODELS_STEP}", wait=True):
        pipeline = warehouse_pipeline(settings, PIPELINE_NAME)
        why_not = models_unbuildable(pipeline)
        if why_not:
            return {"built": False, "reason": why_not}
        built = build_models(pipeline, ModelSettings.from_config())
    return {
        "built": True,
        "models": len(built.models),
        "seconds": round(built.seconds, 2),
        "counted": built.settings.describe(),
    }


def summary_metadata(partition: Partition, summary: LoadSummary) -> dict[str, Any]:
    """What a partition's run shows: its pipeline, bots and the run's counts.

    Args:
        partition: The partition that ran.
        summary: Its run's summary.

    Returns:
        Plain values by name (those the run did not count left out).
    """
    values = {
        "pipeline": partition.pipeline_name,
        "bots": ", ".join(summary.run.bot_keys),
        "packages": summary.packages,
        "windows": summary.windows,
        "requests": summary.requests,
        "retries": summary.retries,
        "sessions_fetched": summary.sessions_fetched,
        "sessions_new": summary.sessions_new,
        "sessions_updated": summary.sessions_updated,
        "sessions_deleted": summary.sessions_deleted,
        "sessions_total": summary.sessions_total,
        "seconds": round(summary.seconds, 2),
    }
    return {key: value for key, value in values.items() if value is not None}


def describe_step_failure(exc: BaseException) -> tuple[str, bool]:
    """A failed step as one redacted line, and whether retrying it may help.

    Args:
        exc: What failed the step.

    Returns:
        The line (no secret, no value of a session) and False when the configuration is
        wrong (no retry can mend that), True otherwise.
    """
    code, message = describe_failure(exc)
    return redact(message, known_secrets()), code != EXIT_CONFIG
