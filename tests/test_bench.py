"""The benchmark's backfill part runs end to end at its smallest size, and its three loads (the
pipeline, the floor, dlt alone) each hold exactly the sandbox's visible sessions."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_quick_backfill_part_loads_every_session_three_ways(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.run_bench", "--quick", "--part", "a"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TMPDIR": str(tmp_path)},
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    table = dict(re.findall(r"^a\s+(.+?)\s{2,}(.+)$", result.stdout, re.MULTILINE))
    for load in ("pipeline", "floor", "dlt alone"):
        assert table[f"{load} rows check"] == "ok"
    assert re.fullmatch(r"x\d+\.\d\d \(<= x1\.5: (yes|NO)\)", table["time dlt alone/floor"])
    assert re.fullmatch(r"\d+%", table["dlt alone share of pipeline time"])
