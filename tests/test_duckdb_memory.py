"""DuckDB's memory limit and threads: a model build runs under a limit of its own (sized by its
threads and the sessions loaded, doubled when DuckDB runs out of it), not the load's, and on every
core, not the load's threads (a core left to the extract beside it); a load step that only
appends runs under less memory than one that merges; a user's own setting binds them all, and a
database held open across a build, built or failed, gets the load's settings back."""

from __future__ import annotations

import os
from pathlib import Path

import dlt
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dlt.destinations.exceptions import DatabaseTransientException
from kore_sessions.runtime.pipeline import make_pipeline
from kore_sessions.sandbox import SandboxServer
from kore_sessions.warehouse import build_memory, duckdb_settings
from kore_sessions.warehouse.models import build_models
from kore_sessions.warehouse.turn import destination_credentials

from .conftest import Loader

# A limit no model build of the test's history fits in (its fct_sessions alone needs more).
TOO_LITTLE = "4MB"
# A model that records the memory limit its build ran under.
LIMIT_MODEL = (
    "-- Grain: one row per build (memory_limit).\n"
    "SELECT current_setting('memory_limit') AS memory_limit, count(*) AS sessions FROM sessions\n"
)
# A model that records the threads its build ran on.
THREADS_MODEL = (
    "-- Grain: one row per build (threads).\n"
    "SELECT current_setting('threads') AS threads FROM sessions LIMIT 1\n"
)


@pytest.fixture
def loaded(server: SandboxServer, tmp_path: Path) -> Loader:
    """The test history loaded into DuckDB with the default settings."""
    loader = Loader(server, tmp_path)
    loader.run()
    return loader


def pipeline_of(loader: Loader) -> dlt.Pipeline:
    """A new pipeline over the loader's DuckDB file, with the settings in force now."""
    return make_pipeline(
        "duckdb", pipelines_dir=loader.folder / "pipelines", duckdb_path=loader.folder / "w.duckdb"
    )


def memory_limit(client: object) -> str:
    """The database's memory limit as DuckDB shows it."""
    ((limit,),) = client.execute_sql("SELECT current_setting('memory_limit')")  # type: ignore[attr-defined]
    return str(limit)


def shown(setting: str | None) -> str:
    """How DuckDB shows a memory limit (None: its own default) on this machine."""
    with duckdb.connect() as connection:
        if setting is not None:
            connection.execute("SET memory_limit = ?", [setting])
        ((limit,),) = connection.execute("SELECT current_setting('memory_limit')").fetchall()
    return str(limit)


def load_limit(threads: int | None = None) -> str:
    """The load's memory limit as DuckDB shows it, for `threads` (default: the load's)."""
    return shown(duckdb_settings.load_memory_limit(threads or duckdb_settings.load_threads()))


def threads(client: object) -> int:
    """The database's threads."""
    ((count,),) = client.execute_sql("SELECT current_setting('threads')")  # type: ignore[attr-defined]
    return int(count)


def duckdbs_own_threads() -> int:
    """DuckDB's own default thread count on this machine."""
    with duckdb.connect() as connection:
        ((count,),) = connection.execute("SELECT current_setting('threads')").fetchall()
    return int(count)


def one_model(folder: Path, name: str, sql: str) -> Path:
    """A models folder holding only one mart."""
    (folder / "marts").mkdir(parents=True)
    (folder / "marts" / f"{name}.sql").write_text(sql)
    return folder


def limit_model(folder: Path) -> Path:
    """A models folder holding only LIMIT_MODEL."""
    return one_model(folder, "fct_build_limit", LIMIT_MODEL)


def test_a_build_is_not_held_to_the_loads_limit(loaded: Loader, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the load's limit too small for any build, the models build all the same, and a
    connection open across the build sees the load's limit again after it."""
    monkeypatch.setattr(duckdb_settings, "load_memory_limit", lambda threads, appends_only=False: TOO_LITTLE)
    pipeline = pipeline_of(loaded)
    with pipeline.sql_client() as client:
        assert memory_limit(client) == shown(TOO_LITTLE)
        built = build_models(pipeline)
        assert memory_limit(client) == shown(TOO_LITTLE)
        ((sessions,),) = client.execute_sql("SELECT count(*) FROM fct_sessions")
    assert "fct_sessions" in [model.name for model in built.models]
    assert sessions > 1000


def test_a_build_runs_under_its_own_limit_or_duckdbs_lower_default(
    loaded: Loader, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The build runs under `build_memory_mb` for every core and the sessions loaded; on a machine
    whose DuckDB default is lower (here: a build limit above any machine's), under DuckDB's
    default."""
    models = limit_model(tmp_path / "models")
    pipeline = pipeline_of(loaded)
    built = build_models(pipeline, sql_dir=models)
    with pipeline.sql_client() as client:
        ((sessions,),) = client.execute_sql("SELECT count(*) FROM sessions")
    expected = build_memory.build_memory_mb(duckdbs_own_threads(), sessions)
    assert built.memory_limit_mb == expected
    with pipeline.sql_client() as client:
        assert client.execute_sql("SELECT memory_limit FROM fct_build_limit") == [(shown(f"{expected}MB"),)]
    monkeypatch.setattr(build_memory, "MEMORY_PER_BUILD_THREAD_MB", 10**12)
    build_models(pipeline, sql_dir=models)
    with pipeline.sql_client() as client:
        assert client.execute_sql("SELECT memory_limit FROM fct_build_limit") == [(shown(None),)]
        assert memory_limit(client) == load_limit()


@pytest.mark.parametrize(
    ("threads", "sessions", "expected"),
    [(1, 0, 48), (2, 200_000, 96), (2, 2_000_000, 96), (2, 2_000_001, 192), (4, 4_000_000, 384), (0, 0, 48)],
)
def test_a_builds_memory_grows_with_threads_and_sessions(threads: int, sessions: int, expected: int) -> None:
    """MEMORY_PER_BUILD_THREAD_MB a thread (at least one) for each started BUILD_SESSIONS_STEP
    sessions (at least one step)."""
    assert build_memory.build_memory_mb(threads, sessions) == expected


def test_a_build_that_runs_out_of_memory_is_built_again_under_more(
    loaded: Loader, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A build whose limit is too small for it (1 MB a thread) is rolled back and built again
    under twice the limit until it fits: every model built once, each retry said in one line, and
    the connection held open across it gets the load's limit back."""
    monkeypatch.setattr(build_memory, "MEMORY_PER_BUILD_THREAD_MB", 1)
    pipeline = pipeline_of(loaded)
    with pipeline.sql_client() as client:
        built = build_models(pipeline)
        assert memory_limit(client) == load_limit()
        ((sessions,),) = client.execute_sql("SELECT count(*) FROM fct_sessions")
        ((loaded_sessions,),) = client.execute_sql("SELECT count(*) FROM sessions")
    retries = [record.getMessage() for record in caplog.records if "ran out of memory" in record.getMessage()]
    start = duckdbs_own_threads()
    assert retries, "the tiny limit was expected to run out"
    assert built.memory_limit_mb == start * 2 ** len(retries)
    assert retries[-1].endswith(f"building again under {built.memory_limit_mb} MB")
    assert sessions == loaded_sessions > 1000


def test_a_build_under_the_users_limit_is_not_built_again(
    loaded: Loader, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Out of the user's own memory limit, the build fails at once: their limit holds."""
    monkeypatch.setenv(
        "DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG", f'{{"memory_limit": "{TOO_LITTLE}"}}'
    )
    with pytest.raises(Exception, match="Out of Memory"):
        build_models(pipeline_of(loaded))
    assert not [record for record in caplog.records if "ran out of memory" in record.getMessage()]


class RecordingClient:
    """A SQL client that records the statements it is given."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def execute_sql(self, sql: str, *args: object) -> None:
        """Record the statement with its arguments."""
        self.statements.append(" ".join([sql, *map(str, args)]))


@pytest.mark.parametrize(
    ("limit", "ceiling", "raised", "statement"),
    [
        (96, 1000.0, 192, "SET memory_limit = %s 192MB"),
        (600, 1000.0, 1000, "RESET memory_limit"),
        (1000, 1000.0, None, None),
        (96, float("inf"), None, None),
    ],
)
def test_a_builds_limit_doubles_up_to_duckdbs_default(
    limit: int, ceiling: float, raised: int | None, statement: str | None
) -> None:
    """A limit doubles until DuckDB's own default, which it takes as it is (RESET); at the default,
    or with no default known (unreadable), it does not grow."""
    client = RecordingClient()
    memory = build_memory.BuildMemory(client, limit_mb=limit, ceiling_mb=ceiling)  # type: ignore[arg-type]
    assert memory.raise_limit() is (raised is not None)
    assert memory.limit_mb == (raised or limit)
    assert client.statements == ([statement] if statement else [])


def test_out_of_memory_is_told_from_other_errors() -> None:
    """DuckDB's out-of-memory error, as dlt wraps it, is the one a build retries."""
    try:
        try:
            raise duckdb.OutOfMemoryException("Out of Memory Error: failed to allocate")
        except duckdb.Error as error:
            raise DatabaseTransientException(error) from error
    except DatabaseTransientException as wrapped:
        assert build_memory.out_of_memory(wrapped)
    assert not build_memory.out_of_memory(DatabaseTransientException(duckdb.CatalogException("no table")))
    assert not build_memory.out_of_memory(ValueError("Out of Memory Error"))


def test_a_failed_build_gives_the_load_its_limit_back(loaded: Loader, tmp_path: Path) -> None:
    """A build that fails (a model reading a column that does not exist) is rolled back, and the
    connection held open across it has the load's limit again."""
    broken = tmp_path / "broken"
    (broken / "marts").mkdir(parents=True)
    (broken / "marts" / "fct_broken.sql").write_text(
        "-- Grain: one row (x).\nSELECT no_such_column AS x FROM sessions\n"
    )
    pipeline = pipeline_of(loaded)
    with pipeline.sql_client() as client:
        before = memory_limit(client)
        with pytest.raises(Exception, match="no_such_column"):
            build_models(pipeline, sql_dir=broken)
        assert memory_limit(client) == before == load_limit()


@pytest.mark.parametrize("name", ["memory_limit", "max_memory", "MEMORY_LIMIT"])
def test_a_users_own_limit_binds_the_build_too(
    loaded: Loader, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """A limit the user configured, under any of DuckDB's names for it, is theirs for builds as
    well: too small, the build fails."""
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG", f'{{"{name}": "{TOO_LITTLE}"}}')
    with pytest.raises(Exception, match="Out of Memory"):
        build_models(pipeline_of(loaded))


@pytest.mark.parametrize(("cores", "expected"), [({0}, 1), ({0, 1}, 1), (set(range(8)), 7)])
def test_a_load_leaves_a_core_to_the_extract(
    monkeypatch: pytest.MonkeyPatch, cores: set[int], expected: int
) -> None:
    """DuckDB loads on the cores this process may use less one (the extract of the next package
    runs beside each load step), and on one where there is only one."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: cores)
    assert duckdb_settings.load_threads() == expected
    assert duckdb_settings.load_settings()["threads"] == expected


def test_a_build_runs_on_every_core_and_gives_the_load_its_threads_back(
    loaded: Loader, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pipeline's connection has the load's threads; the build runs on DuckDB's own count (every
    core), and a connection held open across it has the load's threads again."""
    load = duckdbs_own_threads() + 1  # differs from DuckDB's own on any machine
    monkeypatch.setattr(duckdb_settings, "load_threads", lambda: load)
    pipeline = pipeline_of(loaded)
    with pipeline.sql_client() as client:
        assert threads(client) == load
        build_models(pipeline, sql_dir=one_model(tmp_path / "models", "fct_build_threads", THREADS_MODEL))
        assert threads(client) == load
        assert client.execute_sql("SELECT threads FROM fct_build_threads") == [(duckdbs_own_threads(),)]


@pytest.mark.parametrize("name", ["threads", "worker_threads", "THREADS"])
def test_a_users_own_threads_hold_for_loads_and_builds(
    loaded: Loader, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """Threads the user configured, under any of DuckDB's names, are theirs for loads and builds,
    and the load's memory grows with them."""
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG", f'{{"{name}": 5}}')
    pipeline = pipeline_of(loaded)
    build_models(pipeline, sql_dir=one_model(tmp_path / "models", "fct_build_threads", THREADS_MODEL))
    with pipeline.sql_client() as client:
        assert threads(client) == 5
        assert memory_limit(client) == shown("240MB")
        assert client.execute_sql("SELECT threads FROM fct_build_threads") == [(5,)]


def limits_of_load_steps(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """DuckDB's memory limit as each load step's `pipeline.load` ends (its file is still open), in
    a list that fills as pipelines load."""
    seen: list[str] = []
    original = dlt.Pipeline.load

    def load(self: dlt.Pipeline, *args: object, **kwargs: object) -> object:
        info = original(self, *args, **kwargs)  # type: ignore[arg-type]
        with duckdb.connect(str(destination_credentials(self).database)) as connection:
            ((limit,),) = connection.execute("SELECT current_setting('memory_limit')").fetchall()
        seen.append(str(limit))
        return info

    monkeypatch.setattr(dlt.Pipeline, "load", load)
    return seen


@pytest.mark.parametrize(
    ("load_threads", "append_limit", "merge_limit"), [(1, 48, 160), (3, 144, 160), (7, 336, 336)]
)
def test_a_first_backfill_appends_under_less_memory_and_later_runs_merge_under_the_loads(
    server: SandboxServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    load_threads: int,
    append_limit: int,
    merge_limit: int,
) -> None:
    """Each load step of a first backfill (its jobs all append) runs under MEMORY_PER_LOAD_THREAD_MB
    a load thread; the next run's steps merge under the load's limit (at least
    LOAD_MEMORY_LIMIT_MB), and a connection after a step has the load's."""
    monkeypatch.setattr(duckdb_settings, "load_threads", lambda: load_threads)
    seen = limits_of_load_steps(monkeypatch)
    loader = Loader(server, tmp_path)
    loader.run()
    assert loader.run_record.appending and all(loader.run_record.appending.values())
    first = list(seen)
    seen.clear()
    loader.run()
    assert first and set(first) == {shown(f"{append_limit}MB")}
    assert seen and set(seen) == {shown(f"{merge_limit}MB")} == {load_limit()}
    with pipeline_of(loader).sql_client() as client:
        assert memory_limit(client) == load_limit()


@pytest.fixture(scope="module")
def dlt_shaped_parquet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Parquet file shaped as dlt's job files (row groups of 10,000 rows): 300,000 rows of 16
    text and 8 integer columns."""
    rows = range(300_000)
    texts = {
        f"s{i}": [f"text-{i}-{j % 7919}-abcdefghijklmnopqrstuvwxyz-{j}" for j in rows] for i in range(16)
    }
    numbers = {f"n{i}": pa.array(rows, pa.int64()) for i in range(8)}
    path = tmp_path_factory.mktemp("parquet") / "jobs.parquet"
    pq.write_table(pa.table({**texts, **numbers}), path, row_group_size=10_000)
    return path


@pytest.mark.parametrize("threads_", [1, 3, 7, 15])
def test_an_append_on_more_threads_fits_the_memory_they_are_given(
    dlt_shaped_parquet: Path, tmp_path: Path, threads_: int
) -> None:
    """An insert of dlt-shaped Parquet fits an append step's limit (MEMORY_PER_LOAD_THREAD_MB a
    thread) on 1 to 15 threads: a fixed 48 MB ran out of memory on 3, and 160 MB on 15."""
    with duckdb.connect(str(tmp_path / "append.duckdb")) as connection:
        connection.execute(f"SET memory_limit = '{duckdb_settings.MEMORY_PER_LOAD_THREAD_MB * threads_}MB'")
        connection.execute(f"SET threads = {threads_}")
        connection.execute("SET preserve_insertion_order = false")
        source = f"read_parquet('{dlt_shaped_parquet}')"
        connection.execute(f"CREATE TABLE sessions AS SELECT * FROM {source} LIMIT 0")
        connection.execute(f"INSERT INTO sessions SELECT * FROM {source}")
        assert connection.execute("SELECT count(*) FROM sessions").fetchall() == [(300_000,)]


@pytest.mark.parametrize("name", ["memory_limit", "max_memory", "MEMORY_LIMIT"])
def test_a_users_own_limit_holds_for_appends_too(
    server: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """A limit the user configured, under any of DuckDB's names, holds for a first backfill."""
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG", f'{{"{name}": "200MB"}}')
    seen = limits_of_load_steps(monkeypatch)
    Loader(server, tmp_path).run()
    assert seen and set(seen) == {shown("200MB")}
