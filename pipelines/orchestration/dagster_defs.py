"""Dagster definitions: one asset per partition of bots, loaded in parallel, then the models once.

Serve them with `dagster dev -m kore_sessions.orchestration.dagster_defs` (extra `dagster`).
This module is only the wiring: which bots each partition loads, its pipeline, its settings
(`[orchestration]`, `OrchestrationSettings`), how it loads and how the models are built live in
`kore_sessions.orchestration.partitions`, which imports no orchestrator.

Asset `kore_sessions_<group>` calls `load_partition` (`kore-sessions load --pipeline-name
kore_sessions_<group> --bot ... --no-models`), so a long backfill is loaded as several
packages in a row (dagster-dlt calls `pipeline.run()` once, which would load only the first).
Each has its own RetryPolicy: a failed partition runs again alone. Asset
`kore_containment_models` depends on all of them, so the models are built once per run, after
every partition. The job runs on the multiprocess executor, a process per step, at most
`max_concurrent` at once; each process builds these definitions again from the same
configuration (see `kore_sessions_job`).
"""

# No `from __future__ import annotations`: Dagster checks the `context` annotation at runtime.
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from kore_sessions.orchestration.partitions import (
    MODELS_STEP,
    OrchestrationSettings,
    Partition,
    build_containment_models,
    describe_step_failure,
    load_partition,
    parse_partitions,
    resolve_settings,
    summary_metadata,
)
from kore_sessions.output.failures import setup_logging

# The job a run (or the schedule) starts: every partition, then the models.
JOB_NAME = "kore_sessions_job"
# The asset of the SQL models, downstream of every partition.
MODELS_ASSET = MODELS_STEP
# The assets' group in the Dagster UI.
ASSET_GROUP = "kore_sessions"
# Who holds a step's run lock, as told to a run that finds it taken: `dagster kore_sessions_us`.
ORCHESTRATOR = "dagster"
# Runs of the job that are not finished: the schedule starts no other meanwhile.
UNFINISHED_RUNS = [dg.DagsterRunStatus[name] for name in ("QUEUED", "NOT_STARTED", "STARTING", "STARTED")]


@contextmanager
def step_failures() -> Iterator[None]:
    """Turn a failure into a one-line, redacted `dagster.Failure` (no traceback holding secrets),
    retried by the step's policy unless the configuration is wrong (no retry can mend that).

    Yields:
        Nothing: the step's work runs inside.

    Raises:
        dagster.Failure: the step failed; its description is `describe_step_failure`'s line.
    """
    try:
        yield
    except Exception as exc:
        description, retryable = describe_step_failure(exc)
        raise dg.Failure(description=description, allow_retries=retryable) from None


def retry_policy(settings: OrchestrationSettings) -> dg.RetryPolicy:
    """The retries of one step, exponential from `retry_delay`.

    Args:
        settings: `max_retries` and `retry_delay`.

    Returns:
        The step's policy.
    """
    return dg.RetryPolicy(
        max_retries=settings.max_retries, delay=settings.retry_delay, backoff=dg.Backoff.EXPONENTIAL
    )


def partition_asset(partition: Partition, settings: OrchestrationSettings) -> dg.AssetsDefinition:
    """The asset loading one partition's sessions, retried on its own.

    Args:
        partition: Its bots and pipeline (which names the asset).
        settings: Where to load, and the retries.

    Returns:
        The asset.
    """
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
        """Load the partition; its summary's lines to the log, its counts as metadata."""
        setup_logging(quiet=False)  # the source's progress lines, into the step's captured stderr
        with step_failures():
            summary = load_partition(partition, settings, ORCHESTRATOR)
        for line in summary.lines():
            context.log.info(line)
        return dg.MaterializeResult(metadata=summary_metadata(partition, summary))

    return load


def models_asset(partitions: list[Partition], settings: OrchestrationSettings) -> dg.AssetsDefinition:
    """The asset building the SQL models once, after every partition of the run.

    Args:
        partitions: The partitions it waits for.
        settings: Where the models go, and the retries.

    Returns:
        The asset.
    """

    @dg.asset(
        name=MODELS_ASSET,
        group_name=ASSET_GROUP,
        deps=[partition.pipeline_name for partition in partitions],
        description=f"The SQL models of sql/ (staging, intermediate, marts) in dataset {settings.dataset}.",
        retry_policy=retry_policy(settings),
        kinds={"sql"},
    )
    def models(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        """Build the models; what was built (or why not) as metadata."""
        with step_failures():
            metadata = build_containment_models(settings, ORCHESTRATOR)
        context.log.info(f"models: {metadata}")
        return dg.MaterializeResult(metadata=metadata)

    return models


def load_schedule(settings: OrchestrationSettings) -> dg.ScheduleDefinition:
    """The job every `schedule` (stopped until started), skipped while a run is unfinished.

    Args:
        settings: The cron expression.

    Returns:
        The schedule `kore_sessions_job_schedule`.
    """

    @dg.schedule(
        name=f"{JOB_NAME}_schedule",
        cron_schedule=settings.schedule,
        job_name=JOB_NAME,
        default_status=dg.DefaultScheduleStatus.STOPPED,
    )
    def every_interval(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        """A run of the job, or a skip naming the run that is not finished."""
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

    Returns:
        The definitions `dagster dev` serves.

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
    process builds it again from the same configuration (files and environment).

    Returns:
        `kore_sessions_job`.
    """
    return build_definitions().resolve_job_def(JOB_NAME)


# What `dagster dev -m kore_sessions.orchestration.dagster_defs` loads.
defs = build_definitions()
