"""`python -m kore_sessions.sandbox`: the sandbox served on its own, configured for `kore-sessions` by the
lines it prints."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from .cli_helpers import kore, loaded

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_the_printed_configuration_loads_what_the_sandbox_serves(tmp_path: Path) -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "kore_sessions.sandbox", "--port", "0", "--days", "2", "--per-day", "20"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        first = server.stdout.readline()
        served = int(re.search(r"(\d+) sessions so far", first).group(1))
        exports = [server.stdout.readline() for _ in range(5)]
        config = dict(re.fullmatch(r"export (\w+)=(\S+)\n", line).groups() for line in exports)
        outside = ("SOURCES__", "DESTINATION__", "MODELS__")
        env = {k: v for k, v in os.environ.items() if not k.startswith(outside)}
        env.update(config, DLT_DATA_DIR=str(tmp_path / "dlt_home"), RUNTIME__DLTHUB_TELEMETRY="false")
        result = kore(["load"], env, tmp_path)
        assert result.returncode == 0, result.stderr
        assert served > 0 and len(loaded(tmp_path)) >= served, "every session served at start is loaded"
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0, "SIGTERM stops it cleanly"
