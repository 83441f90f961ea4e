"""A run killed between dlt's commit of a package and its save of the local state leaves that
state a version behind the package. The runs after it go on from what was loaded, and a sync
from the dataset never leaves a pending package without the schema it was extracted with
(`runtime/pending_schemas.py`, `runtime/pipeline.load_sessions`)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import dlt
import duckdb
import pyarrow as pa
import pytest
from kore_sessions.runtime.pending_schemas import roll_schemas_forward
from kore_sessions.runtime.pipeline import finish_pending
from kore_sessions.sandbox import SandboxServer
from kore_sessions.source.settings import DEFAULT_LOOKBACK_MINUTES

from .cli_helpers import (
    DATABASE,
    EXTRACTED,
    PACKAGE_A_DAY,
    PENDING_STAGES,
    PIPELINE_FOLDER,
    cli_env,
    expected,
    kore,
    loaded,
    normalized,
    packages,
    pending_packages,
)
from .conftest import BOTS, POSTGRES_DSN, REAL_NOW, sandbox_at_real_now
from .postgres_rows import postgres_ids, postgres_rows_twice
from .sandbox_helpers import hand_made_session
from .test_first_backfill import rows_twice

# Midnight (UTC) four days before the real now: the histories below start there, and so do the
# command's one-day windows (the last one, up to now, is partial).
FIRST_DAY = (REAL_NOW - timedelta(days=4)).replace(hour=0, minute=0, second=0)


def exit_after_commits(count: int) -> str:
    """A patch: the process dies right after dlt committed its `count`-th extracted package,
    before dlt saves the pipeline's state (as a SIGKILL at that moment would)."""
    return f"""
import os
from dlt.extract.extract import Extract
_commit = Extract.commit_packages
_calls = []
def commit_packages(self):
    _commit(self)
    _calls.append(1)
    if len(_calls) == {count}:
        os._exit(9)
Extract.commit_packages = commit_packages
"""


def left_behind(cwd: Path, *pipelines: str) -> list[Path]:
    """The packages these pipelines (named as `--pipeline-name` names them) have still to load."""
    folders = [cwd / PIPELINE_FOLDER.parent / name / stage for name in pipelines for stage in PENDING_STAGES]
    return [package for folder in folders for package in folder.glob("*")]


def day_sessions(tagged_day: int | None, bots: int = 1) -> list:
    """One closed session of each of the first `bots` bots on each of four days, with messages
    (the first bot's numbered 1 to 4); the sessions of `tagged_day` (counted from 0) alone have
    session tags, so their package brings a new table."""
    return [
        hand_made_session(
            10 * bot + day + 1,
            FIRST_DAY + timedelta(days=day, hours=2),
            5,
            bot_id=BOTS[bot],
            messages=4,
            session_tags=(("topic", "billing"),) if day == tagged_day else (),
        )
        for bot in range(bots)
        for day in range(4)
    ]


def env_of(server: SandboxServer, tmp_path: Path, resources: str) -> dict[str, str]:
    """The command's environment: the first bot, from the first day, a window a package."""
    return cli_env(
        server,
        tmp_path,
        **PACKAGE_A_DAY,
        SOURCES__KORE_SESSIONS__BOT_IDS=BOTS[0],
        SOURCES__KORE_SESSIONS__START_DATE=FIRST_DAY.isoformat(),
        SOURCES__KORE_SESSIONS__RESOURCES=resources,
    )


def partition_env(server: SandboxServer, tmp_path: Path) -> dict[str, str]:
    """`env_of` without bots: each partition's command names its own."""
    env = env_of(server, tmp_path, "sessions")
    env.pop("SOURCES__KORE_SESSIONS__BOT_IDS")
    return env


def partitions(*options: str) -> dict[str, list[str]]:
    """The commands of two partitions, `part_a` and `part_b`, a bot each, with `options`."""
    return {
        name: ["load", "--no-models", *options, "--pipeline-name", name, "--bot", bot]
        for name, bot in zip(("part_a", "part_b"), BOTS, strict=True)
    }


def test_a_package_committed_before_its_schema_was_saved_loads_its_new_table(tmp_path: Path) -> None:
    """Run 1 dies right after dlt committed its second day's package, whose session tags make
    a new table, and before dlt saved the pipeline's schema (it saves it after the commit).
    Run 2 finishes the package with the schema it was extracted with: dlt alone normalizes it
    with the stored one, without that table, and this run and every later one failed on
    `KeyError: 'sessions__session_tags'`."""
    with sandbox_at_real_now(day_sessions(tagged_day=1)) as server:
        env = env_of(server, tmp_path, "sessions")
        first = kore(["load", "--no-models"], env, tmp_path, patch=exit_after_commits(2))
        assert first.returncode == 9, first.stderr
        assert len(packages(tmp_path, EXTRACTED)) == 1, "run 1 died with the second day extracted"
        last = kore(["load", "--no-models"], env, tmp_path)
        assert last.returncode == 0, last.stderr
        assert not pending_packages(tmp_path)
        assert normalized(loaded(tmp_path)) == normalized(expected(server))
        assert set(rows_twice(tmp_path).values()) == {0}
        with duckdb.connect(str(tmp_path / DATABASE), read_only=True) as con:
            tags = con.sql("SELECT session_id, name FROM kore_sessions.sessions__session_tags").fetchall()
        assert tags == [(f"{2:024x}", "topic")]


def test_a_partition_finishes_its_package_beside_another_partition_loading(tmp_path: Path) -> None:
    """Two partitions, a bot each, into one DuckDB file: the first dies as above, with its
    tagged day committed and its schema not saved; then both load at once, each in a process
    of its own. Each session is there once, both bots' tags too, and no package is left."""
    with sandbox_at_real_now(day_sessions(tagged_day=1, bots=2)) as server:
        env, commands = partition_env(server, tmp_path), partitions()
        killed = kore(commands["part_a"], env, tmp_path, patch=exit_after_commits(2))
        assert killed.returncode == 9, killed.stderr
        plain = "# a process of its own, not the test's fork"
        with ThreadPoolExecutor(2) as pool:
            runs = list(pool.map(lambda args: kore(args, env, tmp_path, patch=plain), commands.values()))
        assert [run.returncode for run in runs] == [0, 0], [run.stderr for run in runs]
        assert not left_behind(tmp_path, *commands)
        assert normalized(loaded(tmp_path)) == normalized(expected(server))
        assert set(rows_twice(tmp_path).values()) == {0}
        with duckdb.connect(str(tmp_path / DATABASE), read_only=True) as con:
            query = "SELECT session_id FROM kore_sessions.sessions__session_tags ORDER BY session_id"
            tags = con.sql(query).fetchall()
        assert tags == [(f"{2:024x}",), (f"{12:024x}",)]


@pytest.mark.parametrize("destination", ["duckdb", "postgres"])
def test_a_partitions_first_extract_killed_before_its_state_is_fetched_again_once(
    tmp_path: Path, destination: str, request: pytest.FixtureRequest
) -> None:
    """A partition's first run into a dataset another partition has filled (so dlt's sync has
    written a state without a schema) dies right after dlt committed its first package. dlt
    never finishes that package (it neither normalizes nor loads without a default schema) and
    the next extract fetches its window again: the package is dropped, and each session of the
    partition's bot is loaded once, not twice (DuckDB) or refused (PostgreSQL). Into a dataset
    that does not exist yet, dlt's sync itself empties the pipeline's folder, package and all."""
    with sandbox_at_real_now(day_sessions(tagged_day=0, bots=2)) as server:
        env, options = partition_env(server, tmp_path), []
        if destination == "postgres":
            dataset = request.getfixturevalue("postgres_dataset")
            env["DESTINATION__POSTGRES__CREDENTIALS"] = POSTGRES_DSN
            options = ["--destination", "postgres", "--dataset", dataset]
        commands = partitions(*options)
        assert kore(commands["part_b"], env, tmp_path).returncode == 0
        killed = kore(commands["part_a"], env, tmp_path, patch=exit_after_commits(1))
        assert killed.returncode == 9, killed.stderr
        assert len(left_behind(tmp_path, "part_a")) == 1
        last = kore(commands["part_a"], env, tmp_path)
        assert last.returncode == 0, last.stderr
        assert not left_behind(tmp_path, *commands)
        if destination == "postgres":
            assert sorted(postgres_ids(dataset)) == sorted(expected(server))
            tables = {"sessions": "_dlt_id", "sessions__session_tags": "_dlt_id"}  # the history's
            assert postgres_rows_twice(dataset, tables) == dict.fromkeys(tables, 0)
        else:
            assert normalized(loaded(tmp_path)) == normalized(expected(server))
            assert set(rows_twice(tmp_path).values()) == {0}


def test_a_run_after_a_lagging_state_goes_on_from_what_it_loaded(tmp_path: Path) -> None:
    """Run 1 dies after committing its second day's sessions, before saving the state. Run 2
    loads that package first and goes on from its cursor (the second day's session, less the
    walk's overlap): nothing before the second day is asked for again, as it was when dlt's
    local state, a package behind, still had the first day's cursor."""
    with sandbox_at_real_now(day_sessions(tagged_day=None)) as server:
        env = env_of(server, tmp_path, "sessions")
        first = kore(["load", "--no-models"], env, tmp_path, patch=exit_after_commits(2))
        assert first.returncode == 9, first.stderr
        server.clear_requests()
        last = kore(["load", "--no-models"], env, tmp_path)
        assert last.returncode == 0, last.stderr
        asked = [record.body["dateFrom"] for record in server.requests if "dateFrom" in (record.body or {})]
        second_session = FIRST_DAY + timedelta(days=1, hours=2)  # as `day_sessions` makes it
        cursor = (second_session - timedelta(minutes=DEFAULT_LOOKBACK_MINUTES)).strftime("%Y-%m-%dT%H:%M:%S")
        assert asked and min(asked) >= cursor, asked  # ISO times in UTC: compared as text
        assert normalized(loaded(tmp_path)) == normalized(expected(server))


@dlt.source(name="toy")
def toy(step: int) -> list:
    """A table on every step, and from step 3 on a second one."""

    @dlt.resource(name="first", write_disposition="append")
    def first() -> object:
        dlt.current.resource_state()["step"] = step
        yield pa.table({"step": [step]})

    @dlt.resource(name="second", write_disposition="append")
    def second() -> object:
        if step >= 3:
            yield pa.table({"step": [step]})

    return [first, second]


def toy_pipeline(tmp_path: Path) -> dlt.Pipeline:
    """A pipeline of `toy` into a DuckDB file, in a folder of the test's own."""
    return dlt.pipeline(
        "toy",
        destination=dlt.destinations.duckdb(str(tmp_path / "toy_warehouse.duckdb")),
        dataset_name="toy",
        pipelines_dir=str(tmp_path / "pipelines"),
    )


def test_a_pending_package_is_finished_with_the_schema_it_was_extracted_with(tmp_path: Path) -> None:
    """dlt's sync puts the dataset's schema back over the one a pending package was extracted
    with (the local state lagged, then a package numbered like the loaded one was extracted):
    finishing the package rolls the stored schema forward to the package's, and it loads."""
    pipeline = toy_pipeline(tmp_path)
    pipeline.run(toy(1))
    state_file = Path(pipeline.working_dir) / "state.json"
    saved = state_file.read_text()
    pipeline.extract(toy(2))
    state_file.write_text(saved)  # as a kill before dlt saved the state leaves it
    pipeline = toy_pipeline(tmp_path)
    pipeline.normalize()
    pipeline.load()
    pipeline.extract(toy(3))  # the second table; killed before it is loaded
    pipeline = toy_pipeline(tmp_path)
    pipeline.sync_destination()
    assert "second" not in pipeline.default_schema.tables, "dlt's sync put the older schema back"
    assert finish_pending(pipeline) == 1
    assert "second" in pipeline.default_schema.tables
    with pipeline.sql_client() as client:
        assert client.execute_sql("SELECT step FROM second") == [(3,)]


def test_a_stored_schema_newer_than_a_pending_package_is_kept(tmp_path: Path) -> None:
    """Two pending packages: the older one's schema is an ancestor of the stored one, not a
    descendant, and nothing is rolled; both load."""
    pipeline = toy_pipeline(tmp_path)
    pipeline.run(toy(1))
    pipeline.extract(toy(2))
    pipeline.extract(toy(3))
    stored = pipeline.default_schema.stored_version_hash
    assert roll_schemas_forward(pipeline) == []
    assert pipeline.default_schema.stored_version_hash == stored
    assert finish_pending(pipeline) == 2
    with pipeline.sql_client() as client:
        assert client.execute_sql("SELECT step FROM first ORDER BY step") == [(1,), (2,), (3,)]


@pytest.mark.parametrize("folder", ["extracted", "normalized"])
def test_a_rolled_back_schema_is_rolled_forward_from_either_stage(tmp_path: Path, folder: str) -> None:
    """An extracted package (normalized with the stored schema) and a normalized one (whose
    load leaves the stored schema as it found it) both roll a stored ancestor forward."""
    pipeline = toy_pipeline(tmp_path)
    pipeline.run(toy(1))
    ancestor = pipeline.default_schema.clone()
    pipeline.extract(toy(3))
    if folder == "normalized":
        pipeline.normalize()
    carried = pipeline.default_schema.stored_version_hash
    pipeline.schemas.save_schema(ancestor)
    assert pipeline.default_schema.stored_version_hash != carried
    assert roll_schemas_forward(pipeline) == ["toy"]
    assert pipeline.default_schema.stored_version_hash == carried


# A patch: the process dies inside dlt's sync with the dataset's newer state, right after it
# deleted the stored schemas and before it saved the dataset's (`_install_state_and_schemas`).
KILLED_INSIDE_THE_SYNC = """
import os
from dlt.common.storages.live_schema_storage import LiveSchemaStorage
_clear = LiveSchemaStorage.clear_storage
def clear_storage(self):
    _clear(self)
    os._exit(9)
LiveSchemaStorage.clear_storage = clear_storage
"""


@pytest.mark.parametrize(
    ("destination", "then"), [("duckdb", "load"), ("duckdb", "audit"), ("postgres", "load")]
)
def test_a_run_killed_inside_the_sync_leaves_no_command_without_its_schema(
    tmp_path: Path, destination: str, then: str, request: pytest.FixtureRequest
) -> None:
    """Run 1 dies with its state a package behind; run 2 loads the package, and dies inside dlt's
    sync with the dataset's newer state, its schema deleted, the dataset's not yet saved. The
    state names a schema not stored: every later command failed on `SchemaNotFoundError` (as a
    first backfill killed at random moments once did in CI). The next command (`then`) takes
    the dataset's schema; a load then loads to the end: each session once, the tagged day's
    table too."""
    with sandbox_at_real_now(day_sessions(tagged_day=1)) as server:
        env, args = env_of(server, tmp_path, "sessions"), ["load", "--no-models"]
        if destination == "postgres":
            dataset = request.getfixturevalue("postgres_dataset")
            env["DESTINATION__POSTGRES__CREDENTIALS"] = POSTGRES_DSN
            args += ["--destination", "postgres", "--dataset", dataset]
        first = kore(args, env, tmp_path, patch=exit_after_commits(2))
        assert first.returncode == 9, first.stderr
        second = kore(args, env, tmp_path, patch=KILLED_INSIDE_THE_SYNC)
        assert second.returncode == 9, second.stderr
        assert not list((tmp_path / PIPELINE_FOLDER / "schemas").glob("*.json")), "the sync was cut"
        following = kore(["audit"] if then == "audit" else args, env, tmp_path)
        if then == "audit":  # it finds what the killed runs left unloaded, and says so
            assert following.returncode == 3, following.stdout + following.stderr
            assert "(2 sessions missing, 0 extra)" in following.stdout
        else:
            assert following.returncode == 0, following.stderr
        assert "was not stored: from the dataset" in following.stderr
        last = kore(args, env, tmp_path)
        assert last.returncode == 0, last.stderr
        assert not pending_packages(tmp_path)
        if destination == "postgres":
            assert sorted(postgres_ids(dataset)) == sorted(expected(server))
            tables = {"sessions": "_dlt_id", "sessions__session_tags": "_dlt_id"}
            assert postgres_rows_twice(dataset, tables) == dict.fromkeys(tables, 0)
            return
        assert normalized(loaded(tmp_path)) == normalized(expected(server))
        assert set(rows_twice(tmp_path).values()) == {0}
        with duckdb.connect(str(tmp_path / DATABASE), read_only=True) as con:
            tags = con.sql("SELECT session_id FROM kore_sessions.sessions__session_tags").fetchall()
        assert tags == [(f"{2:024x}",)]
        if then == "audit":
            assert kore(["audit"], env, tmp_path).returncode == 0


# A patch: the process dies at its first load step, before the dataset exists.
KILLED_AT_THE_FIRST_LOAD = """
import os
from dlt.pipeline.pipeline import Pipeline
def load(self, *args, **kwargs):
    os._exit(9)
Pipeline.load = load
"""


def killed_inside_the_wipe(deleted: str) -> str:
    """A patch: the process dies inside dlt's wipe of a pipeline whose dataset does not exist,
    with only the `deleted` paths (space-separated globs in the pipeline's working folder)
    deleted, its state kept."""
    return f"""
import os, shutil
from pathlib import Path
from dlt.pipeline.pipeline import Pipeline
def wipe(self):
    for pattern in {deleted.split()!r}:
        for path in Path(self.working_dir).glob(pattern):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    os._exit(9)
Pipeline._wipe_working_folder = wipe
"""


@pytest.mark.parametrize(
    ("deleted", "origin"),
    [
        ("schemas", "the newest package still to load"),
        ("schemas load/*/*/schema.json", "nowhere (a new, empty one)"),
        ("schemas load", "nowhere (a new, empty one)"),
    ],
)
@pytest.mark.parametrize("then", ["load", "audit"])
def test_a_run_killed_inside_the_wipe_starts_the_pipeline_again(
    tmp_path: Path, deleted: str, origin: str, then: str
) -> None:
    """Run 1 dies at its first load step: the dataset does not exist. Run 2 has dlt wipe the
    pipeline's folder, and dies inside the wipe with its schemas deleted (and its packages or
    their schema files, or not), its state not. The next command (`then`) puts a schema back (the
    package's, or a new one) and dlt's sync ends the wipe; a load then loads every session once."""
    with sandbox_at_real_now(day_sessions(tagged_day=1)) as server:
        env = env_of(server, tmp_path, "sessions")
        first = kore(["load", "--no-models"], env, tmp_path, patch=KILLED_AT_THE_FIRST_LOAD)
        assert first.returncode == 9, first.stderr
        second = kore(["load", "--no-models"], env, tmp_path, patch=killed_inside_the_wipe(deleted))
        assert second.returncode == 9, second.stderr
        assert (tmp_path / PIPELINE_FOLDER / "state.json").is_file()
        if then == "audit":  # its sync ends the wipe before it finishes leftovers: none is left
            audit = kore(["audit"], env, tmp_path)
            assert audit.returncode == 3, audit.stdout + audit.stderr
            assert "nothing to audit: no pipeline has loaded sessions" in audit.stderr
            assert f"was not stored: from {origin}" in audit.stderr
        last = kore(["load", "--no-models"], env, tmp_path)
        assert last.returncode == 0, last.stderr
        assert (f"was not stored: from {origin}" in last.stderr) is (then == "load")
        assert not pending_packages(tmp_path)
        assert normalized(loaded(tmp_path)) == normalized(expected(server))
        assert set(rows_twice(tmp_path).values()) == {0}
