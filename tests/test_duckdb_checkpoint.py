"""A load step keeps its DuckDB file open and checkpoints it once, at its end: dlt's client
closes the database (and so checkpoints the whole write-ahead log) each time its last
connection is handed back (`kore_sessions.source.dlt_compat.duckdb_kept_open`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest
from dlt.destinations.impl.duckdb.configuration import DuckDbConnectionPool
from kore_sessions.sandbox import SandboxServer
from kore_sessions.source.dlt_compat import duckdb_kept_open

from .conftest import Loader, assert_matches_sandbox


def wal(database: Path) -> Path:
    """DuckDB's write-ahead log of a database file."""
    return Path(f"{database}.wal")


def test_a_connection_closed_inside_leaves_the_log_and_the_end_checkpoints(tmp_path: Path) -> None:
    database = tmp_path / "w.duckdb"
    with duckdb_kept_open(database):
        con = duckdb.connect(str(database))
        con.execute("PRAGMA enable_checkpoint_on_shutdown")
        con.execute("SET GLOBAL checkpoint_threshold = '1gb'")
        con.execute("CREATE TABLE t AS SELECT range AS i FROM range(50000)")
        con.close()
        assert wal(database).exists() and wal(database).stat().st_size > 0, "closing did not checkpoint"
    assert not wal(database).exists(), "checkpointed once, at the end"
    with duckdb.connect(str(database), read_only=True) as con:
        assert con.sql("SELECT COUNT(*) FROM t").fetchall() == [(50000,)]


def test_a_failed_block_closes_the_file_without_losing_what_was_committed(tmp_path: Path) -> None:
    database = tmp_path / "w.duckdb"
    with pytest.raises(RuntimeError), duckdb_kept_open(database):
        duckdb.connect(str(database)).execute("CREATE TABLE t AS SELECT 1 AS i").close()
        raise RuntimeError("the load failed")
    with duckdb.connect(str(database)) as con:  # the file is free again, and holds the table
        assert con.sql("SELECT i FROM t").fetchall() == [(1,)]


def test_a_load_step_checkpoints_once(
    server: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dlt hands its connections back several times in a load step; the log survives each
    (no checkpoint), and is gone once the step ends."""
    loader = Loader(server, tmp_path)
    database = tmp_path / "w.duckdb"
    logs: list[bool] = []
    original = DuckDbConnectionPool.return_conn

    def return_conn(self: Any, borrowed: Any) -> int:
        left = original(self, borrowed)
        if left == 0:
            logs.append(wal(database).exists())
        return left

    monkeypatch.setattr(DuckDbConnectionPool, "return_conn", return_conn)
    loader.run(windows_per_package=2, appended_windows_per_package=2)
    assert len(logs) > 3 and any(logs), "dlt closed its connection with the log left"
    assert not wal(database).exists()


def test_a_setting_dlt_gives_duckdb_at_connect_time_does_not_fail_the_load(
    server: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DuckDB refuses a second connection to a file with other connect-time settings: with
    `custom_user_agent` configured (dlt passes it to `duckdb.connect`), the kept connection must
    be opened with it, or every load step fails."""
    settings = '{"custom_user_agent": "kore-test"}'
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG", settings)
    loader = Loader(server, tmp_path)
    summary = loader.run(windows_per_package=2, appended_windows_per_package=2)
    assert summary.packages > 1
    assert_matches_sandbox(loader, server)
