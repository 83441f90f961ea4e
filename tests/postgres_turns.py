"""Tests take the PostgreSQL server in turns with the one test that stops it.

`tests/test_destination_faults.py::test_postgres_stopped_before_the_load_step` stops and restarts
the server that every test process on this machine shares (the pytest-xdist workers of a run,
and any other run against the same server). Through two lock files beside the server's DSN,
every test but a `unit` one holds a shared lock while it runs, and a test that asks for the
`stoppable_postgres` fixture holds an exclusive one. A test waiting for the exclusive lock
first takes the gate, which every other test passes on its way in: new tests wait behind it
instead of starving it, and it waits only for the tests already running.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# The DSN as conftest reads it (before its autouse fixture clears KORE_* names).
DSN = os.environ.get("KORE_TEST_POSTGRES_DSN", "postgresql://kore:kore@127.0.0.1:5432/kore_test")
LOCKS = Path(tempfile.gettempdir()) / f"kore-tests-postgres-{hashlib.sha256(DSN.encode()).hexdigest()[:12]}"


@contextlib.contextmanager
def postgres_turn(exclusive: bool) -> Iterator[None]:
    """Hold the server shared (it keeps running) or exclusively (it may stop)."""
    with open(f"{LOCKS}.gate", "a") as gate, open(f"{LOCKS}.lock", "a") as lock:
        fcntl.flock(gate, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        finally:
            if not exclusive:
                fcntl.flock(gate, fcntl.LOCK_UN)
        yield


@pytest.fixture(autouse=True)
def postgres_running(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test runs while no other stops PostgreSQL; one that stops it runs alone."""
    if request.node.get_closest_marker("unit"):
        yield
        return
    with postgres_turn(exclusive="stoppable_postgres" in request.fixturenames):
        yield
