"""Fetching overlaps loading: the next package of sessions is fetched while dlt loads the last,
into a copy of the state and a bounded queue; a failed load stops it and moves no state."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from kore_sessions.runtime import pipeline as runtime_pipeline
from kore_sessions.sandbox import SandboxServer
from kore_sessions.source.package_ahead import PackageFetch, StateMovedError

from .conftest import BOTS, Loader, assert_matches_sandbox

# Day windows, one a bot per package: the twenty days of history load in many packages.
PACKAGES = {"window_hours": 24, "windows_per_package": 1, "appended_windows_per_package": 1}


def counting_producer(made: list[int], count: int, fail_at: int | None = None) -> Any:
    """A producer of `count` one-row batches that notes each it made and writes its state."""

    def produce(state: dict[str, Any]) -> Iterator[tuple[str, pa.Table]]:
        for number in range(count):
            if number == fail_at:
                raise ValueError("the API failed")
            made.append(number)
            state["last"] = number
            yield "t", pa.table({"n": [number]})

    return produce


@pytest.mark.unit
def test_a_package_ahead_works_on_a_copy_and_hands_its_state_over() -> None:
    state: dict[str, Any] = {"bots": {"a": 1}}
    made: list[int] = []
    fetch = PackageFetch.ahead(counting_producer(made, 3), state, max_batches=8, name="t")
    numbers = [table.column("n")[0].as_py() for _, table in fetch.batches()]
    assert numbers == [0, 1, 2]
    assert state == {"bots": {"a": 1}}, "dlt's state is left alone until the package is taken"
    fetch.check_began_from({"bots": {"a": 1}})
    fetch.adopt_into(state)
    assert state == {"bots": {"a": 1}, "last": 2}
    with pytest.raises(StateMovedError):
        fetch.check_began_from({"bots": {"a": 2}})


@pytest.mark.unit
def test_the_queue_bounds_what_is_fetched_ahead_and_stop_ends_the_producer() -> None:
    made: list[int] = []
    fetch = PackageFetch.ahead(counting_producer(made, 1000), {}, max_batches=3, name="bounded")
    time.sleep(0.3)
    assert len(made) <= 4, "the producer waits once the queue is full (3 queued, 1 in hand)"
    fetch.stop()
    assert not any(t.name == "bounded" and t.is_alive() for t in threading.enumerate())
    assert len(made) <= 5


@pytest.mark.unit
def test_the_producers_error_is_raised_where_the_package_is_taken() -> None:
    made: list[int] = []
    fetch = PackageFetch(counting_producer(made, 5, fail_at=2), {}, max_batches=8, name="failing")
    taken = []
    with pytest.raises(ValueError, match="the API failed"):
        for _, table in fetch.batches():
            taken.append(table)
    assert len(taken) == 2


def load_steps_timed(
    monkeypatch: pytest.MonkeyPatch, fail_at: int | None = None
) -> list[tuple[datetime, datetime]]:
    """Record when each load step ran (the `fail_at`-th one fails before loading)."""
    spans: list[tuple[datetime, datetime]] = []
    original = runtime_pipeline.load_step

    def load_step(pipeline: Any, end: Any = None) -> None:
        if fail_at is not None and len(spans) == fail_at:
            raise RuntimeError("the warehouse went away")
        began = datetime.now(UTC)
        original(pipeline, end)
        time.sleep(0.1)  # a warehouse a little slower than this one
        spans.append((began, datetime.now(UTC)))

    monkeypatch.setattr(runtime_pipeline, "load_step", load_step)
    return spans


def test_the_next_package_is_fetched_while_the_last_one_loads(
    server: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loader = Loader(server, tmp_path)
    spans = load_steps_timed(monkeypatch)
    summary = loader.run(**PACKAGES)
    assert summary.packages > 5
    # When the k-th load step ends, k windows a bot were asked without fetching ahead; with
    # it, the next package's window too (its fetch began as the k-th package's extract ended).
    ahead = 0
    for number, (_, ended) in enumerate(spans[:-1], start=1):
        asked = {
            (r.bot_id, r.body["dateFrom"])
            for r in server.requests
            if r.body and "dateFrom" in r.body and r.at <= ended
        }
        ahead += all(sum(bot == b for b, _ in asked) > number for bot in BOTS)
    assert ahead == len(spans) - 1, "each package but the first was fetched while the one before it loaded"
    assert_matches_sandbox(loader, server)
    assert not runtime_alive("sessions")


def runtime_alive(name: str) -> bool:
    """Whether a package thread of that name still runs."""
    return any(t.name == name and t.is_alive() for t in threading.enumerate())


def test_a_failed_load_stops_the_fetch_ahead_and_moves_no_state(
    server: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loader = Loader(server, tmp_path)
    load_steps_timed(monkeypatch, fail_at=2)
    with pytest.raises(RuntimeError, match="the warehouse went away"):
        loader.run(**PACKAGES)
    assert not runtime_alive("sessions"), "the package fetched ahead was stopped"
    state = loader.state()
    loaded = loader.query("SELECT MAX(start_time) FROM sessions")[0][0]
    for bot_state in state["bots"].values():
        # the state is that of the package whose load failed (dlt finishes it first next
        # time), a day beyond what is loaded, and not of the package fetched ahead (two days)
        cursor = datetime.fromisoformat(bot_state["cursor"].replace("Z", "+00:00"))
        assert cursor - loaded <= timedelta(hours=30)
    monkeypatch.undo()
    loader.run(**PACKAGES)
    assert_matches_sandbox(loader, server)


@pytest.mark.unit
def test_a_package_made_on_dlts_own_state_has_nothing_to_check() -> None:
    state: dict[str, Any] = {}
    fetch = PackageFetch(counting_producer([], 3), state, max_batches=8, name="own")
    assert len(list(fetch.batches())) == 3
    fetch.check_began_from(state)  # the producer changed it, as it should
    fetch.adopt_into(state)
    assert state == {"last": 2}
