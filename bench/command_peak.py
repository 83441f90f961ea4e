"""Child entry point: ``python -m bench.command_peak RESULT.json COMMAND...``.

Runs a command as a child of this small interpreter and writes its exit code, seconds and peak
RSS as JSON. The peak is the command's own ``ru_maxrss``, as ``/usr/bin/time -v`` reports it: a
command started straight from the benchmark's parent, which holds the sandbox's data set, would
report the parent's (Linux keeps a process's high-water mark across ``execve``).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    """Run ``argv[1:]`` and write its figures to ``argv[0]``; 0 even when the command failed (the
    parent reads its exit code from the file)."""
    result, command = Path(argv[0]), argv[1:]
    began = time.perf_counter()
    completed = subprocess.run(command, check=False)
    seconds = time.perf_counter() - began
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    figures = {"returncode": completed.returncode, "seconds": seconds, "peak_rss_kb": peak_kb}
    result.write_text(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
