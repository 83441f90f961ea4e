"""Benchmark the kore_sessions pipeline against the sandbox API.

Usage (from the repository root)::

    python -m bench.run_bench [--part a|p|b|c|r|l|all] [--quick] [--sessions N] [--bots N] [--days N]

Parts:
    a: full backfill into DuckDB without rate limits (default 500,000 sessions, 5 bots, 120 days,
       page cap 1000): sessions/s, requests made against the minimum, peak RSS of the pipeline
       process; dlt alone loading the same tables ready-made (appended, as the pipeline's first
       backfill does: the bound x1.4; and merged); the floor (plain httpx paging with the
       pipeline's concurrency + one Arrow insert into DuckDB).
    p: the same backfill into PostgreSQL, with its time over the DuckDB load of the same run.
    r: the pipeline's peak RSS at 0.4 and 2 times part a's sessions (200k and 1M): at most
       400 MB, and the larger within 10% of the smaller.
    b: 200 ms latency per request: concurrent (max_in_flight=4) against sequential (1) fetching.
    c: rate limits scaled down to 60 per 2 s (1800 per 120 s) per bot: the achieved share of the
       allowed rate and the number of 429 answers.
    l: `kore-sessions load` itself (models built after the load, rate limits lifted) at part a's
       sessions, over a floor like the independent check's (4 workers, the standard library's
       json), the two run in turn three times (the median pair's ratio), and its peak RSS there
       and at part r's two sizes.

``--quick`` runs small sizes (< 1 minute) as a smoke test. The pipeline and the floor each run
in a child process, so their peak RSS is their own; the server (the sandbox with pre-serialized
pages, `bench.fast_server`) serves from this one.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

from bench.backfill import Backfill, part_a, part_p, part_r
from bench.command_load import part_l
from bench.parts import FULL, QUICK, Figure, Sizes, part_b, part_c

# Each part, in the order `all` runs them (a and p share one data set and one DuckDB load).
PARTS: dict[str, Callable[[Backfill], list[Figure]]] = {
    "a": part_a,
    "p": part_p,
    "b": lambda backfill: part_b(backfill.sizes, backfill.tmp),
    "c": lambda backfill: part_c(backfill.sizes, backfill.tmp),
    "r": part_r,
    "l": part_l,
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.run_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=[*PARTS, "all"], default="all", help="part to run (default all)")
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke test under a minute")
    parser.add_argument("--sessions", type=int, help="sessions of parts a, p (default 500000; quick 20000)")
    parser.add_argument("--bots", type=int, help="bots of parts a, p (default 5; quick 2)")
    parser.add_argument("--days", type=int, help="days of sessions of parts a, p (default 120; quick 30)")
    return parser.parse_args(argv)


def sizes_from(args: argparse.Namespace) -> Sizes:
    """The sizes of the mode, with part a's overrides."""
    sizes = QUICK if args.quick else FULL
    overrides = {"sessions": args.sessions, "bots": args.bots, "days": args.days}
    given = {name: value for name, value in overrides.items() if value is not None}
    return replace(sizes, a=replace(sizes.a, **given))


def print_table(figures: Sequence[Figure]) -> None:
    """The closing table: part, figure, value."""
    width = max((len(name) for _, name, _ in figures), default=10)
    print("\n== figures (all measured in this run)")
    print(f"{'part':<5}{'figure':<{width + 2}}value")
    for part, name, value in figures:
        print(f"{part:<5}{name:<{width + 2}}{value}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen parts and print their figures; 1 if a load's row check failed."""
    args = parse_args(argv)
    sizes = sizes_from(args)
    chosen = list(PARTS) if args.part == "all" else [args.part]
    started = time.perf_counter()
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="kore-bench-") as folder, ExitStack() as stack:
        backfill = Backfill(sizes, Path(folder), stack)
        for part in chosen:
            figures += PARTS[part](backfill)
    figures.append(("", "benchmark wall time", f"{time.perf_counter() - started:.0f} s"))
    print_table(figures)
    failed = any(value.startswith("MISMATCH") for _, _, value in figures)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
