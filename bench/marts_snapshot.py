"""Every model of a fixed data set, as text: compare two checkouts' marts row for row.

Loads a fixed history (2 bots, 21 days, seed 7, the server's clock stopped at
2026-11-20 12:00 UTC) from the sandbox with the installed `kore-sessions load`, then writes
every model table, rows sorted, one JSON line per table, and prints one digest per table.

    .venv/bin/python bench/marts_snapshot.py /tmp/before.jsonl
    (change the code)
    .venv/bin/python bench/marts_snapshot.py /tmp/after.jsonl && diff /tmp/before.jsonl /tmp/after.jsonl
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

try:  # the installed package's name for the sandbox, or the repository's folder
    from kore_sessions.sandbox import SandboxApp, SandboxServer, generate_sessions
except ImportError:  # pragma: no cover - before the package had one name
    from kore_sessions.sandbox import SandboxApp, SandboxServer, generate_sessions

# A stopped clock and a seed: the same sessions, the same answers, on any day.
SERVER_NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
BOTS = ("st-snapshot-bot-1", "st-snapshot-bot-2")
CLIENT = ("cs-snapshot", "snapshot-secret-of-thirty-two-bytes")


def main(output: str) -> int:
    """Load the fixed history and write its models to `output`."""
    sessions = generate_sessions(BOTS, SERVER_NOW - timedelta(days=21), SERVER_NOW, 40, seed=7)
    app = SandboxApp(client_id=CLIENT[0], client_secret=CLIENT[1], kind="bot")
    with (
        tempfile.TemporaryDirectory() as folder,
        SandboxServer(sessions, apps=[app], now=SERVER_NOW, page_cap=50) as server,
    ):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "DESTINATION__"))}
        env.update(
            {
                "DLT_DATA_DIR": str(Path(folder) / "dlt_home"),
                "RUNTIME__DLTHUB_TELEMETRY": "false",
                "SOURCES__KORE_SESSIONS__HOST": server.url,
                "SOURCES__KORE_SESSIONS__BOT_IDS": ",".join(BOTS),
                "SOURCES__KORE_SESSIONS__START_DATE": (SERVER_NOW - timedelta(days=22)).isoformat(),
                "SOURCES__KORE_SESSIONS__CREDENTIALS__CLIENT_ID": CLIENT[0],
                "SOURCES__KORE_SESSIONS__CREDENTIALS__CLIENT_SECRET": CLIENT[1],
            }
        )
        command = Path(sys.executable).parent / "kore-sessions"
        subprocess.run([str(command), "load"], env=env, cwd=folder, check=True, capture_output=True)
        lines = _models(Path(folder) / "kore_warehouse.duckdb")
    Path(output).write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return 0


def _models(database: Path) -> list[str]:
    """One JSON line per model table (views and tables outside dlt's own), rows sorted."""
    lines = []
    with duckdb.connect(str(database), read_only=True) as con:
        names = con.sql(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'kore_sessions' "
            "AND (table_name LIKE 'fct_%' OR table_name LIKE 'dim_%' OR table_name LIKE 'int_%' "
            "OR table_name LIKE 'stg_%') ORDER BY table_name"
        ).fetchall()
        for (name,) in names:
            rows = sorted(repr(row) for row in con.sql(f'SELECT * FROM kore_sessions."{name}"').fetchall())
            digest = hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16]
            print(f"{name:45} {len(rows):6} rows  {digest}")
            lines.append(json.dumps({"table": name, "rows": rows}))
    return lines


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
