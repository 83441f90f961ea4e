"""DuckDB's memory limit: a load's bounded one does not bind a model build (the containment
rollups over 2,000,000 sessions ran out of the load's 160 MB), a user's own limit binds both, and
a database held open across a build gets the load's limit back."""

from __future__ import annotations

from pathlib import Path

import pytest
from kore_sessions.runtime.pipeline import make_pipeline
from kore_sessions.sandbox import SandboxServer
from kore_sessions.warehouse import duckdb_settings
from kore_sessions.warehouse.models import build_models

from .conftest import Loader

# A limit no model build of the test's history fits in (its fct_sessions alone needs more).
TOO_LITTLE = "4MB"
# What DuckDB reports for it.
TOO_LITTLE_SHOWN = "3.8 MiB"


@pytest.fixture
def loaded(server: SandboxServer, tmp_path: Path) -> Loader:
    """The test history loaded into DuckDB with the default settings."""
    loader = Loader(server, tmp_path)
    loader.run()
    return loader


def memory_limit(client: object) -> str:
    """The database's memory limit as DuckDB shows it."""
    ((limit,),) = client.execute_sql("SELECT current_setting('memory_limit')")  # type: ignore[attr-defined]
    return str(limit)


def test_a_build_is_not_held_to_the_loads_limit(loaded: Loader, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the load's limit too small for any build, the models build all the same, and a
    connection open across the build sees the load's limit again after it."""
    monkeypatch.setitem(duckdb_settings.DUCKDB_SETTINGS, "memory_limit", TOO_LITTLE)
    pipeline = make_pipeline(
        "duckdb", pipelines_dir=loaded.folder / "pipelines", duckdb_path=loaded.folder / "w.duckdb"
    )
    with pipeline.sql_client() as client:
        assert memory_limit(client) == TOO_LITTLE_SHOWN
        built = build_models(pipeline)
        assert memory_limit(client) == TOO_LITTLE_SHOWN
        ((sessions,),) = client.execute_sql("SELECT count(*) FROM fct_sessions")
    assert "fct_sessions" in [model.name for model in built.models]
    assert sessions > 1000


def test_a_users_own_limit_binds_the_build_too(loaded: Loader, monkeypatch: pytest.MonkeyPatch) -> None:
    """A limit the user configured is theirs for builds as well: too small, the build fails."""
    monkeypatch.setenv(
        "DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG", f'{{"memory_limit": "{TOO_LITTLE}"}}'
    )
    pipeline = make_pipeline(
        "duckdb", pipelines_dir=loaded.folder / "pipelines", duckdb_path=loaded.folder / "w.duckdb"
    )
    with pytest.raises(Exception, match="Out of Memory"):
        build_models(pipeline)
