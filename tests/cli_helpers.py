"""Running the `kore-sessions` command in a subprocess, configured only the documented ways."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from sandbox import SandboxServer

from .conftest import BOTS, CLIENT_ID, CLIENT_SECRET, REAL_NOW

DATABASE = "kore_warehouse.duckdb"


def cli_env(server: SandboxServer, tmp_path: Path, **extra: str) -> dict[str, str]:
    """Environment of a configured command: host, bots, start date, credentials."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "DESTINATION__"))}
    env.update(
        {
            "DLT_DATA_DIR": str(tmp_path / "dlt_home"),
            "RUNTIME__DLTHUB_TELEMETRY": "false",
            "SOURCES__KORE_SESSIONS__HOST": server.url,
            "SOURCES__KORE_SESSIONS__BOT_IDS": ",".join(BOTS),
            "SOURCES__KORE_SESSIONS__START_DATE": (REAL_NOW - timedelta(days=6)).isoformat(),
            "SOURCES__KORE_SESSIONS__BACKOFF_INITIAL": "0.01",
            "SOURCES__KORE_SESSIONS__BACKOFF_MAX": "0.05",
            "SOURCES__KORE_SESSIONS__CREDENTIALS__CLIENT_ID": CLIENT_ID,
            "SOURCES__KORE_SESSIONS__CREDENTIALS__CLIENT_SECRET": CLIENT_SECRET,
        }
    )
    env.update(extra)
    return env


def kore(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run `kore-sessions` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def loaded(cwd: Path) -> dict[str, tuple]:
    """Sessions in the command's DuckDB file, by id (and no id twice)."""
    with duckdb.connect(str(cwd / DATABASE), read_only=True) as con:
        rows = con.sql(
            "SELECT session_id, session_status, end_time, no_of_messages_exchanged "
            "FROM kore_sessions.sessions"
        ).fetchall()
    by_id = {row[0]: row for row in rows}
    assert len(by_id) == len(rows), "duplicate sessions in the warehouse"
    return by_id


def expected(server: SandboxServer) -> dict[str, tuple]:
    """The sandbox's sessions in the same form as `loaded`."""
    return {
        v["sessionId"]: (
            v["sessionId"],
            v["sessionStatus"],
            datetime.fromisoformat(v["end_time"].replace("Z", "+00:00")),
            v["noOfMessagesExchanged"],
        )
        for v in server.visible_sessions()
    }


def normalized(rows: dict[str, tuple]) -> dict[str, tuple]:
    """Timestamps in UTC, for comparison."""
    return {
        key: tuple(v.astimezone(UTC) if isinstance(v, datetime) else v for v in row)
        for key, row in rows.items()
    }
