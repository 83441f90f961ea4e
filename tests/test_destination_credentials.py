"""The dataset's turn resolves a pipeline's destination credentials once, and again only when
the pipeline's destination changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dlt
import pytest
from kore_sessions.warehouse.turn import destination_credentials, warehouse_turn

pytestmark = pytest.mark.unit


def counting_clients(pipeline: Any, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the pipeline's `destination_client()` calls (dlt resolves its config on each)."""
    calls: list[int] = []
    original = pipeline.destination_client

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(pipeline, "destination_client", counted)
    return calls


def test_turns_of_one_pipeline_resolve_its_credentials_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "w.duckdb"
    pipeline = dlt.pipeline(
        "credentials_once",
        destination=dlt.destinations.duckdb(str(database)),
        pipelines_dir=str(tmp_path / "pipelines"),
    )
    calls = counting_clients(pipeline, monkeypatch)
    for _ in range(5):
        with warehouse_turn(pipeline):
            pass
    assert len(calls) == 1
    assert Path(destination_credentials(pipeline).database) == database
    assert (tmp_path / "w.duckdb.kore-lock").exists() and not database.exists()


def test_a_new_destination_is_resolved_again(tmp_path: Path) -> None:
    pipeline = dlt.pipeline(
        "credentials_again",
        destination=dlt.destinations.duckdb(str(tmp_path / "a.duckdb")),
        pipelines_dir=str(tmp_path / "pipelines"),
    )
    assert Path(destination_credentials(pipeline).database) == tmp_path / "a.duckdb"
    pipeline.destination = dlt.destinations.duckdb(str(tmp_path / "b.duckdb"))
    assert Path(destination_credentials(pipeline).database) == tmp_path / "b.duckdb"

