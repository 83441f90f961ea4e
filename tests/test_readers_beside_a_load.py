"""Commands that read or write the warehouse beside a load take their turn: they neither fail the
load nor fail themselves."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

from kore_sessions.sandbox import SandboxServer
from kore_sessions.source.api.timestamps import format_api_timestamp

from .cli_helpers import cli_env, expected, kore, loaded, normalized
from .conftest import REAL_NOW

# What a BI user or an operator runs while the schedule loads.
READERS = (
    ["report", "--output", "report.html"],
    ["export", "--format", "csv", "exported"],
    ["export", "--format", "parquet", "exported_parquet"],
    ["models", "--days", "1"],
    # Two days, not one: in a UTC day's first hours (the audit's grace) nothing of today is
    # settled yet, and an audit that checked nothing rightly exits 3.
    ["audit", "--days", "2", "--quiet"],
)


def test_readers_in_a_loop_beside_a_load_neither_fail_it_nor_fail_themselves(
    live_server: SandboxServer, tmp_path: Path
) -> None:
    """A long load (a backfill of five days, one package a day, then its models) runs while
    two workers run `report`, `export`, `models` and `audit` in a loop: every command exits 0,
    and the warehouse ends equal to the sandbox."""
    env = cli_env(live_server, tmp_path)
    assert kore(["load"], env, tmp_path).returncode == 0
    live_server.set_latency(0.3)
    start = format_api_timestamp(REAL_NOW - timedelta(days=5, hours=1))
    backfill = ["load", "--start", start, "--end", format_api_timestamp(REAL_NOW), "--window-hours", "24"]
    load = subprocess.Popen(
        [sys.executable, "-m", "kore_sessions.cli", *backfill, "--windows-per-package", "1"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    results: list[tuple[list[str], subprocess.CompletedProcess[str], bool]] = []
    lock = threading.Lock()

    def read_in_a_loop(offset: int) -> None:
        turn = offset
        while load.poll() is None:
            args = READERS[turn % len(READERS)]
            result = kore(args, env, tmp_path)
            with lock:
                results.append((args, result, load.poll() is None))
            turn += 1

    workers = [threading.Thread(target=read_in_a_loop, args=(offset,)) for offset in (0, 2)]
    for worker in workers:
        worker.start()
    _, load_err = load.communicate(timeout=600)
    for worker in workers:
        worker.join(timeout=600)
    assert load.returncode == 0, load_err
    failed = [(args, r.returncode, r.stderr[-500:]) for args, r, _ in results if r.returncode != 0]
    assert not failed, failed
    beside = {args[0] for args, _, during in results if during}
    assert {"report", "export"} <= beside, f"readers ran beside the load: {beside}"
    live_server.set_latency(0)
    assert normalized(loaded(tmp_path)) == expected(live_server)
