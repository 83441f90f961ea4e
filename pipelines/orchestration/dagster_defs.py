"""Dagster definitions: one asset per partition of bots, loaded in parallel, then the models once.

Serve them with `dagster dev -m kore_sessions.orchestration.dagster_defs` (extra `dagster`). They
read the dlt configuration `kore-sessions` reads: the source from `[sources.kore_sessions]`
(a partition sets only its `bot_ids`), the models from `[models]`, the destination's own keys
(`DESTINATION__POSTGRES__CREDENTIALS`), and `[orchestration]` (`OrchestrationSettings`): the
partitions, the warehouse as the CLI's flags name it, concurrency and retries.

Asset `kore_sessions_<group>` is `kore-sessions load --pipeline-name kore_sessions_<group>
--bot ... --no-models`: `load_sessions` with the partition's own pipeline (state, run lock,
staging dataset), so a long backfill is loaded as several packages in a row (dagster-dlt
calls `pipeline.run()` once, which would load only the first). Each has its own RetryPolicy:
a failed partition runs again alone. Asset `kore_containment_models` depends on all of them,
so the models are built once per run, after every partition. The job runs on the
multiprocess executor, a process per step, at most `max_concurrent` at once; each process
builds these definitions again from the same configuration (see `kore_sessions_job`).
"""

# No `from __future__ import annotations`: Dagster checks the `context` annotation at runtime.
import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Optional

import dagster as dg
import dlt
from dlt.common.configuration import configspec, resolve_configuration
from dlt.common.configuration.specs import BaseConfiguration
from kore_sessions.output.failures import EXIT_CONFIG, describe_failure, setup_logging
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
# The job a run (or the schedule) starts: every partition, then the models.
JOB_NAME = "kore_sessions_job"
# The asset of the SQL models, downstream of every partition.
MODELS_ASSET = "kore_containment_models"
# The assets' group in the Dagster UI.
ASSET_GROUP = "kore_sessions"
# A partition's pipeline (and asset) is this prefix and its group: `kore_sessions_emea`.
PARTITION_PREFIX = f"{PIPELINE_NAME}_"
# A group name: valid as a Dagster name and, after the prefix, as a pipeline name (no `__`,
# dlt issue #3427), so letters and digits joined by single underscores.
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
# Runs of the job that are not finished: the schedule starts no other meanwhile.
UNFINISHED_RUNS = [dg.DagsterRunStatus[name] for name in ("QUEUED", "NOT_STARTED", "STARTING", "STARTED")]


@configspec
class OrchestrationSettings(BaseConfiguration):
    """How the Dagster job loads: where, which partitions, how many at once, how retried.

    Attributes:
        partitions: Groups of bots, each loaded by its own asset and pipeline: a mapping
            group -> bot ids (a TOML table, or JSON in the environment); none: one partition.
        destination: dlt destination of the sessions and models, as `--destination`.
        dataset: Dataset of the sessions and models, as `--dataset`.
        pipelines_dir: Where dlt keeps the pipelines' state, as `--pipelines-dir`.
        duckdb_file: The DuckDB database file, as `--duckdb-file`.
        max_concurrent: Partitions loading at once (processes of the multiprocess executor).
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
        pipeline_name: Its pipeline, which also names its asset.
    """

    group: str
    bot_ids: tuple[str, ...] | None
    pipeline_name: str

    def source_options(self) -> dict[str, Any]:
        """The source options this partition sets over `[sources.kore_sessions]`."""
        return {} if self.bot_ids is None else {"bot_ids": list(self.bot_ids), "all_bots": False}


def resolve_settings() -> OrchestrationSettings:
    """The `[orchestration]` settings from dlt's providers, checked.

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


def warehouse_pipeline(settings: OrchestrationSettings, pipeline_name: str) -> dlt.Pipeline:
    """The pipeline `pipeline_name` on the configured destination and dataset."""
    return make_pipeline(
        settings.destination, settings.dataset, settings.pipelines_dir, settings.duckdb_file, pipeline_name
    )


def load_partition(partition: Partition, settings: OrchestrationSettings) -> LoadSummary:
    """One run of a partition: `kore-sessions load --pipeline-name ... --bot ... --no-models`.

    Args:
        partition: The bots and their pipeline.
        settings: Where to load.

    Returns:
        The run's summary.
    """
    run = SourceRun()
    source = kore_sessions(run=run, **partition.source_options())
    with pipeline_lock(settings.pipelines_dir, partition.pipeline_name, f"dagster {partition.pipeline_name}"):
        summary = load_sessions(warehouse_pipeline(settings, partition.pipeline_name), source, run)
    summary.check_complete()
    return summary


def build_containment_models(settings: OrchestrationSettings) -> dict[str, Any]:
    """`kore-sessions models` once the partitions have loaded; returns the asset's metadata."""
    with pipeline_lock(settings.pipelines_dir, PIPELINE_NAME, f"dagster {MODELS_ASSET}", wait=True):
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
    """What a partition's materialization shows: its pipeline, bots and the run's counts."""
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


@contextmanager
def step_failures() -> Iterator[None]:
    """Turn a failure into a one-line, redacted `dagster.Failure` (no traceback holding secrets),
    retried by the step's policy unless the configuration is wrong (no retry can mend that)."""
    try:
        yield
    except Exception as exc:
        code, message = describe_failure(exc)
        description = redact(message, known_secrets())
        raise dg.Failure(description=description, allow_retries=code != EXIT_CONFIG) from None


def retry_policy(settings: OrchestrationSettings) -> dg.RetryPolicy:
    """The retries of one step, exponential from `retry_delay`."""
    return dg.RetryPolicy(
        max_retries=settings.max_retries, delay=settings.retry_delay, backoff=dg.Backoff.EXPONENTIAL
    )


def partition_asset(partition: Partition, settings: OrchestrationSettings) -> dg.AssetsDefinition:
    """The asset loading one partition's sessions, retried on its own."""
    bots = ", ".join(partition.bot_ids) if partition.bot_ids else "the bots of [sources.kore_sessions]"

    @dg.asset(
        name=partition.pipeline_name,
        group_name=ASSET_GROUP,
        description=f"Sessions of {bots}, loaded by pipeline {partition.pipeline_name} "
        f"into dataset {settings.dataset}.",
        retry_policy=retry_policy(settings),
        kinds={"dlt"},
    )
    def load(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        setup_logging(quiet=False)  # the source's progress lines, into the step's captured stderr
        with step_failures():
            summary = load_partition(partition, settings)
        for line in summary.lines():
            context.log.info(line)
        return dg.MaterializeResult(metadata=summary_metadata(partition, summary))

    return load


def models_asset(partitions: list[Partition], settings: OrchestrationSettings) -> dg.AssetsDefinition:
    """The asset building the SQL models once, after every partition of the run."""

    @dg.asset(
        name=MODELS_ASSET,
        group_name=ASSET_GROUP,
        deps=[partition.pipeline_name for partition in partitions],
        description=f"The SQL models of sql/ (staging, intermediate, marts) in dataset {settings.dataset}.",
        retry_policy=retry_policy(settings),
        kinds={"sql"},
    )
    def models(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        with step_failures():
            metadata = build_containment_models(settings)
        context.log.info(f"models: {metadata}")
        return dg.MaterializeResult(metadata=metadata)

    return models


def load_schedule(settings: OrchestrationSettings) -> dg.ScheduleDefinition:
    """The job every `schedule` (stopped until started), skipped while a run is unfinished."""

    @dg.schedule(
        name=f"{JOB_NAME}_schedule",
        cron_schedule=settings.schedule,
        job_name=JOB_NAME,
        default_status=dg.DefaultScheduleStatus.STOPPED,
    )
    def every_interval(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        filters = dg.RunsFilter(job_name=JOB_NAME, statuses=UNFINISHED_RUNS)
        unfinished = context.instance.get_runs(filters=filters, limit=1)
        if unfinished:
            return dg.SkipReason(f"run {unfinished[0].run_id} of {JOB_NAME} is not finished yet")
        return dg.RunRequest()

    return every_interval


def build_definitions(settings: OrchestrationSettings | None = None) -> dg.Definitions:
    """The assets, the job and its schedule for the configured partitions.

    Args:
        settings: The settings; default: resolved from the dlt configuration.

    Raises:
        ConfigError: the settings or the partitions cannot work.
    """
    settings = settings or resolve_settings()
    partitions = parse_partitions(settings.partitions)
    assets = [*(partition_asset(p, settings) for p in partitions), models_asset(partitions, settings)]
    job = dg.define_asset_job(
        JOB_NAME,
        selection=dg.AssetSelection.assets(*assets),
        executor_def=dg.multiprocess_executor.configured({"max_concurrent": settings.max_concurrent}),
        description="Load every partition of bots in parallel, then build the SQL models once.",
    )
    return dg.Definitions(assets=assets, jobs=[job], schedules=[load_schedule(settings)])


def kore_sessions_job() -> dg.JobDefinition:
    """The job for the current configuration, for `dagster.reconstructable`: each step's
    process builds it again from the same configuration (files and environment)."""
    return build_definitions().resolve_job_def(JOB_NAME)


# What `dagster dev -m kore_sessions.orchestration.dagster_defs` loads.
defs = build_definitions()
