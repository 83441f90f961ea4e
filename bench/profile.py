"""Where a profiled child's time goes: py-spy's collapsed stacks summed by function and by area.

Usage (from the repository root)::

    KORE_BENCH_PROFILE=/tmp/prof python -m bench.run_bench --part a --sessions 200000
    python -m bench.profile /tmp/prof/a-pipeline.txt [--top 25]

"Inclusive" counts a function once per sample in which it is on the stack; "self" counts the
frame that was running. Areas sort the running frame by the file it is in, so they add up to
the samples of the child. py-spy samples every thread but, by default, not those idle (waiting
on a lock or a socket), so a sample is a thread at work, and threads at work at once add up.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

# Area of a running frame, by the first pattern its file matches (order matters).
AREAS = [
    ("kore_sessions source", r"(^|/)kore_sessions/"),
    ("kore_sessions pipeline", r"pipelines/"),
    ("dlt extract", r"dlt/extract/"),
    ("dlt normalize", r"dlt/normalize/"),
    ("dlt load / destinations", r"dlt/(load|destinations)/"),
    ("dlt other", r"dlt/"),
    ("httpx / httpcore / h11", r"(httpx|httpcore|h11)/"),
    ("json", r"json/|orjson"),
    ("pyarrow", r"pyarrow/"),
    ("duckdb", r"duckdb"),
    ("jwt / cryptography", r"(jwt|cryptography)/"),
    ("threads, queues, sockets", r"(threading|queue|selectors|socket|ssl)\.py|concurrent/"),
]
FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>.*?)(?::\d+)?\)$")


def read_stacks(path: Path) -> list[tuple[list[str], int]]:
    """The stacks of a raw py-spy file: frames from the outermost, and their sample count."""
    stacks = []
    for line in path.read_text().splitlines():
        frames, _, count = line.rpartition(" ")
        if frames and count.isdigit():
            stacks.append((frames.split(";"), int(count)))
    return stacks


def area(frame: str) -> str:
    """The area of a frame, by its file."""
    match = FRAME.match(frame)
    file = match.group("file") if match else frame
    for name, pattern in AREAS:
        if re.search(pattern, file):
            return name
    return "python / other"


def summarize(stacks: Sequence[tuple[list[str], int]], top: int) -> list[str]:
    """Lines of the summary: areas, then the top functions inclusive and self."""
    total = sum(count for _, count in stacks) or 1
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    for frames, count in stacks:
        for frame in set(frames):
            inclusive[frame] += count
        own[frames[-1]] += count
        areas[area(frames[-1])] += count
    lines = [f"{total} samples", "", "by area (running frame):"]
    lines += [f"  {share(count, total)}  {name}" for name, count in areas.most_common()]
    lines += ["", f"top {top} inclusive:"]
    lines += [f"  {share(count, total)}  {frame}" for frame, count in inclusive.most_common(top)]
    lines += ["", f"top {top} self:"]
    lines += [f"  {share(count, total)}  {frame}" for frame, count in own.most_common(top)]
    return lines


def share(count: int, total: int) -> str:
    """A count as a percentage of the total, right-aligned."""
    return f"{100 * count / total:5.1f}%"


def main(argv: Sequence[str] | None = None) -> None:
    """Print the summary of one profile."""
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path, help="a raw py-spy file (KORE_BENCH_PROFILE)")
    parser.add_argument("--top", type=int, default=25, help="functions to list (default 25)")
    args = parser.parse_args(argv)
    print("\n".join(summarize(read_stacks(args.profile), args.top)))


if __name__ == "__main__":
    main()
