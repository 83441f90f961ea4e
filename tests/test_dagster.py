"""The Dagster job of `pipelines/orchestration/dagster_defs.py` (over `partitions.py`), run by Dagster.

`execute_job` runs the reconstructable job on its multiprocess executor (a process per step,
on a temporary Dagster instance), configured only the documented ways (environment variables
the step processes inherit): three partitions of bots load the sandbox into a fresh PostgreSQL
dataset at once, one fails its first attempt and is retried alone, and the models are built
once, after all of them.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from kore_sessions.orchestration import dagster_defs
from kore_sessions.orchestration.dagster_defs import MODELS_ASSET
from kore_sessions.orchestration.partitions import (
    DEFAULT_SCHEDULE,
    Partition,
    parse_partitions,
    resolve_settings,
    warehouse_pipeline,
)
from kore_sessions.sandbox import GeneratedSession, SandboxApp, SandboxServer, generate_sessions
from kore_sessions.sandbox.app import SandboxApi
from kore_sessions.sandbox.errors import BAD_REQUEST_FAULT, error_body
from kore_sessions.sandbox.messages import Outcome, Request
from kore_sessions.sandbox.routes import match_route
from kore_sessions.sandbox.state import SandboxState
from kore_sessions.source import ConfigError, KoreApiError

from .conftest import (
    BOTS,
    CLIENT_ID,
    CLIENT_SECRET,
    POSTGRES_DSN,
    REAL_NOW,
    Loader,
    api_time,
    assert_matches_sandbox,
    counted_in_sandbox,
    make_apps,
)

# Three partitions, one of two bots: what `[orchestration.partitions]` would hold.
GROUPS = {
    "emea": [BOTS[0], BOTS[1]],
    "us": ["st-aaaaaaaa-0000-4000-8000-000000000003"],
    "apac": ["st-aaaaaaaa-0000-4000-8000-000000000004"],
}
GROUP_OF = {bot: group for group, bots in GROUPS.items() for bot in bots}
# Each partition's asset (and pipeline, and step).
PARTITION_STEPS = [f"kore_sessions_{group}" for group in GROUPS]
# The partition whose first request the API refuses (a 400, which the source never retries).
FAULTY = "us"
# Seconds the sandbox holds a partition's requests waiting for the other partitions: far more
# than the executor needs to start three processes, so only a job that ran the partitions one
# after another keeps a request waiting that long (and fails the test).
GATE_TIMEOUT = 60.0
# Days of history: two windows of six days, loaded as two packages (one window per package).
HISTORY_DAYS = 8
# The outcome columns of fct_containment_daily, and the containment type each counts.
OUTCOME_OF = {"selfService": "self_service", "dropOff": "drop_off", "agent": "agent"}
# One step's events: (event type, time, pid of the process that reported it).
StepEvents = list[tuple[str, float, int | None]]


class GatedApi(SandboxApi):
    """The sandbox API holding each partition's requests until every partition has sent one,
    and refusing the first request of FAULTY with a 400 (once through the gate)."""

    def __init__(self, state: SandboxState, apps: list[SandboxApp]) -> None:
        super().__init__(state, apps)
        self.lock = threading.Lock()
        self.arrived: dict[str, float] = {}
        self.all_arrived = threading.Event()
        self.gate_timeouts = 0
        self.refused: list[str] = []

    def handle(self, request: Request) -> Outcome:
        """Wait at the gate, then answer (or refuse FAULTY's first request)."""
        route = match_route(request.path)
        group = GROUP_OF.get(route.bot_id or "") if route else None
        if route is None or group is None:
            return super().handle(request)
        with self.lock:
            self.arrived.setdefault(group, time.time())
            if len(self.arrived) == len(GROUPS):
                self.all_arrived.set()
        passed = self.all_arrived.wait(GATE_TIMEOUT)
        with self.lock:
            self.gate_timeouts += 0 if passed else 1
            refuse = group == FAULTY and not self.refused
            if refuse:
                self.refused.append(str(route.bot_id))
        if not refuse:
            return super().handle(request)
        outcome = Outcome(400, error_body(BAD_REQUEST_FAULT, 400), fault="400")
        self.state.log.append(self._record(request, route, outcome))
        return outcome


@dataclass
class JobRun:
    """What a run of the job left: its success, each step's events, each asset's metadata, and
    the whole event log serialized (`messages`)."""

    success: bool
    events: dict[str, StepEvents]
    metadata: dict[str, dict[str, Any]]
    messages: str


@pytest.fixture(scope="module")
def history() -> list[GeneratedSession]:
    """Eight days of four bots up to the real now (the job runs on the real clock), some open."""
    return generate_sessions(
        list(GROUP_OF),
        REAL_NOW - timedelta(days=HISTORY_DAYS),
        REAL_NOW,
        per_day=40,
        seed=83,
        active_share=0.5,
    )


@pytest.fixture
def gated_server(history: list[GeneratedSession]) -> Iterator[SandboxServer]:
    """The sandbox at the real now, behind the gate."""
    server = SandboxServer(history, apps=make_apps(), now=REAL_NOW, page_cap=25)
    server.api = GatedApi(server, make_apps())
    with server:
        yield server


@pytest.fixture
def configured(gated_server: SandboxServer, postgres_dataset: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The documented configuration, in the environment the step processes inherit."""
    settings = {
        "ORCHESTRATION__PARTITIONS": json.dumps(GROUPS),
        "ORCHESTRATION__DESTINATION": "postgres",
        "ORCHESTRATION__DATASET": postgres_dataset,
        "ORCHESTRATION__MAX_CONCURRENT": "3",
        "ORCHESTRATION__RETRY_DELAY": "0",
        "DESTINATION__POSTGRES__CREDENTIALS": POSTGRES_DSN,
        "SOURCES__KORE_SESSIONS__HOST": gated_server.url,
        "SOURCES__KORE_SESSIONS__START_DATE": (REAL_NOW - timedelta(days=HISTORY_DAYS)).isoformat(),
        "SOURCES__KORE_SESSIONS__WINDOWS_PER_PACKAGE": "1",
        "SOURCES__KORE_SESSIONS__BACKOFF_INITIAL": "0.01",
        "SOURCES__KORE_SESSIONS__BACKOFF_MAX": "0.05",
        "SOURCES__KORE_SESSIONS__CREDENTIALS__CLIENT_ID": CLIENT_ID,
        "SOURCES__KORE_SESSIONS__CREDENTIALS__CLIENT_SECRET": CLIENT_SECRET,
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)


def run_job(tmp_path: Path) -> JobRun:
    """Run the job through Dagster's multiprocess executor on a temporary instance."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        job = dg.reconstructable(dagster_defs.kore_sessions_job)
        with dg.execute_job(job, instance=instance) as result:
            metadata = {
                str(event.step_key): {
                    key: value.value for key, value in event.materialization.metadata.items()
                }
                for event in result.get_asset_materialization_events()
            }
            logs = instance.all_logs(result.run_id)
            events: dict[str, StepEvents] = {}
            for entry in logs:
                if entry.dagster_event is not None and entry.step_key:
                    event = (entry.dagster_event.event_type_value, entry.timestamp, entry.dagster_event.pid)
                    events.setdefault(entry.step_key, []).append(event)
            messages = "\n".join(dg.serialize_value(entry) for entry in logs)
            return JobRun(result.success, events, metadata, messages)


def times(events: StepEvents, kind: str) -> list[float]:
    """When the events of one type happened."""
    return [at for event_type, at, _ in events if event_type == kind]


def assert_ran_at_once(run: JobRun, api: GatedApi) -> None:
    """Every partition's requests waited at the gate until all three had sent one, each from a
    process of its own, each step running (started, not yet ended) when the gate opened."""
    assert set(api.arrived) == set(GROUPS) and api.gate_timeouts == 0, "every partition at once"
    opened = max(api.arrived.values())
    for step in PARTITION_STEPS:
        start = times(run.events[step], "STEP_START")[0]
        end = min(times(run.events[step], "STEP_SUCCESS") + times(run.events[step], "STEP_UP_FOR_RETRY"))
        assert start < opened < end, f"{step} was not running when every partition was"
    pids = {pid for step in PARTITION_STEPS for kind, _, pid in run.events[step] if kind == "STEP_START"}
    assert len(pids) == len(PARTITION_STEPS), "one process per partition"


def assert_retried_alone(run: JobRun, server: SandboxServer) -> None:
    """The faulty partition failed once (a one-line error, no secret) and ran again; no other
    step failed or ran twice, and no other partition asked the API for anything twice."""
    api: GatedApi = server.api  # type: ignore[assignment]
    assert api.refused == GROUPS[FAULTY]
    for step in [*PARTITION_STEPS, MODELS_ASSET]:
        kinds = Counter(kind for kind, _, _ in run.events[step])
        again = 1 if step == f"kore_sessions_{FAULTY}" else 0
        assert kinds["STEP_UP_FOR_RETRY"] == again and kinds["STEP_RESTARTED"] == again, (step, kinds)
        assert kinds["STEP_START"] == 1 and kinds["STEP_SUCCESS"] == 1 and not kinds["STEP_FAILURE"]
    assert "HTTP 400 from Kore.ai: Invalid request parameters" in run.messages
    assert CLIENT_SECRET not in run.messages
    listings = Counter(
        (r.bot_id, r.body.get("dateFrom"), r.body.get("dateTo"), r.body.get("skip"))
        for r in server.requests
        if r.body is not None and "sessionId" not in r.body and GROUP_OF.get(r.bot_id or "") != FAULTY
    )
    assert listings and max(listings.values()) == 1, "a partition that did not fail asked nothing twice"


def assert_models_built_once(run: JobRun, loader: Loader) -> None:
    """One build of the models, after every partition (the retried one included) succeeded."""
    done = max(times(run.events[step], "STEP_SUCCESS")[0] for step in PARTITION_STEPS)
    assert times(run.events[MODELS_ASSET], "STEP_START")[0] > done
    materialized = Counter(
        step
        for step, events in run.events.items()
        for kind, _, _ in events
        if kind == "ASSET_MATERIALIZATION"
    )
    assert materialized == Counter({step: 1 for step in [*PARTITION_STEPS, MODELS_ASSET]})
    assert run.metadata[MODELS_ASSET]["built"] is True
    (built_at,) = loader.query("SELECT built_at FROM kore_model_settings")[0]
    assert built_at.timestamp() > done, "the models in the warehouse are those built after every partition"


def assert_marts_exact(loader: Loader, server: SandboxServer) -> None:
    """fct_containment_daily equals counts made here from the sandbox's sessions (closed,
    interactive, not a developer's; UTC days), bot by bot and day by day."""
    expected: Counter[tuple[str, str, str]] = Counter()
    for view in server.visible_sessions():
        if (
            view["sessionStatus"] == "closed"
            and view["sessionType"] == "interactive"
            and not view["isDeveloper"]
        ):
            day = api_time(view["start_time"]).astimezone(UTC).date().isoformat()
            expected[(day, view["botId"], "sessions")] += 1
            expected[(day, view["botId"], OUTCOME_OF[view["containmentType"]])] += 1
    columns = ("sessions", *OUTCOME_OF.values())
    got: Counter[tuple[str, str, str]] = Counter()
    for day, bot, *counts in loader.query(
        f"SELECT day, bot_id, {', '.join(columns)} FROM fct_containment_daily"
    ):
        for name, value in zip(columns, counts, strict=True):
            if value:
                got[(day.isoformat(), bot, name)] = value
    assert got == expected
    assert loader.query("SELECT SUM(sessions) FROM fct_containment_daily") == [(counted_in_sandbox(server),)]


def test_the_job_loads_partitions_at_once_retries_one_alone_and_builds_the_models_once(
    configured: None, gated_server: SandboxServer, tmp_path: Path
) -> None:
    assert dagster_defs.kore_sessions_job().executor_def.name == "multiprocess"
    run = run_job(tmp_path)
    assert run.success, run.events
    assert set(run.events) == {*PARTITION_STEPS, MODELS_ASSET}
    assert_ran_at_once(run, gated_server.api)  # type: ignore[arg-type]
    assert_retried_alone(run, gated_server)
    warehouse = Loader(gated_server, tmp_path / "check", "postgres")
    warehouse.pipeline = warehouse_pipeline(resolve_settings(), "kore_sessions")
    assert_models_built_once(run, warehouse)
    assert_matches_sandbox(warehouse, gated_server)
    assert_marts_exact(warehouse, gated_server)
    states = {row[0] for row in warehouse.query("SELECT DISTINCT pipeline_name FROM _dlt_pipeline_state")}
    assert states == set(PARTITION_STEPS), "each partition keeps its own state"
    for step in PARTITION_STEPS:
        assert run.metadata[step]["packages"] == 2, "the backfill of two windows came as two packages"
        assert run.metadata[step]["bots"] == ", ".join(GROUPS[step.removeprefix("kore_sessions_")])


def test_partitions_come_from_a_mapping_or_json_and_default_to_the_cli_pipeline() -> None:
    assert parse_partitions(None) == [Partition("all", None, "kore_sessions")]
    from_json = parse_partitions('{"emea": ["st-1", "st-2"], "us": "st-3"}')
    assert from_json == parse_partitions({"emea": "st-1,st-2", "us": ["st-3"]})
    assert [(p.pipeline_name, p.bot_ids) for p in from_json] == [
        ("kore_sessions_emea", ("st-1", "st-2")),
        ("kore_sessions_us", ("st-3",)),
    ]
    assert from_json[0].source_options() == {"bot_ids": ["st-1", "st-2"], "all_bots": False}
    assert parse_partitions(None)[0].source_options() == {}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('{"emea": ', "not a valid JSON object"),
        ('["st-1"]', "must map groups to bot ids"),
        ({"a__b": ["st-1"]}, "cannot be used"),
        ({"emea-1": ["st-1"]}, "cannot be used"),
        ({"emea": []}, "has no bot ids"),
        ({"emea": ["st-1"], "us": ["st-2", "st-1"]}, "is in partitions 'emea' and 'us'"),
        ({"x" * 60: ["st-1"]}, "pipeline name"),
    ],
)
def test_partitions_that_cannot_work_are_refused_in_one_line(value: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as refused:
        parse_partitions(value)
    assert "\n" not in str(refused.value)


def test_a_step_failure_is_one_line_and_retried_unless_the_configuration_is_wrong(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SOURCES__KORE_SESSIONS__CREDENTIALS__CLIENT_SECRET", CLIENT_SECRET)
    with pytest.raises(dg.Failure) as failed, dagster_defs.step_failures():
        raise KoreApiError(f"HTTP 503 from Kore.ai: {CLIENT_SECRET}")
    assert failed.value.allow_retries and CLIENT_SECRET not in str(failed.value.description)
    assert failed.value.__cause__ is None and failed.value.__suppress_context__
    with pytest.raises(dg.Failure) as wrong, dagster_defs.step_failures():
        raise ConfigError("no bot: set bot_ids (one or more bot ids) or all_bots = true")
    assert not wrong.value.allow_retries and wrong.value.description.startswith("no bot")


def test_the_schedule_skips_while_a_run_of_the_job_is_unfinished(tmp_path: Path) -> None:
    schedule = dagster_defs.load_schedule(resolve_settings())
    assert schedule.cron_schedule == DEFAULT_SCHEDULE
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        assert isinstance(schedule(dg.build_schedule_context(instance=instance)), dg.RunRequest)
        status = dg.DagsterRunStatus.STARTED
        instance.add_run(
            dg.DagsterRun(job_name=dagster_defs.JOB_NAME, run_id=str(uuid.uuid4()), status=status)
        )
        assert isinstance(schedule(dg.build_schedule_context(instance=instance)), dg.SkipReason)
