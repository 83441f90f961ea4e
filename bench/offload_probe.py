"""What the loading process would keep of a page's parse and build if a second process did them.

The pipeline is bound by the GIL on two cores: its page parsing (orjson) and columnar build
(`session_columns`) run in the same interpreter as dlt's steps. This probe times both for pages
of generated sessions, in this process and handed to a pool of processes (the page's bytes
sent, the built tables returned pickled), and prints the CPU seconds this process spends on
them either way, with the wall time. Nothing of the pipeline uses a pool yet: this measures
the lever before it is built.

Usage (from the repository root)::

    python -m bench.offload_probe [--sessions 50000] [--workers 2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import pickle
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta

import orjson
from kore_sessions.sandbox.generator import generate_sessions, make_bot_ids
from kore_sessions.source.api.page_columns import ColumnarPage
from kore_sessions.source.sessions.columnar_sessions import session_columns

from bench.harness import NOW, freeze_heap

# Sessions on one page: the API's cap of getSessions.
PAGE_SIZE = 1_000
# Generated days of the two bots' sessions; a day's count follows from the sessions asked for.
DAYS = 20


def page_bodies(sessions: int) -> list[bytes]:
    """Answers of `sessions` generated sessions, `PAGE_SIZE` each, as the server encodes them."""
    start = NOW - timedelta(days=DAYS)
    generated = generate_sessions(make_bot_ids(2, 3), start, NOW, max(1, sessions // (2 * DAYS)), 3)
    views = [view for session in generated if (view := session.view(NOW)) is not None][:sessions]
    pages = [views[first : first + PAGE_SIZE] for first in range(0, len(views), PAGE_SIZE)]
    return [orjson.dumps({"total": len(page), "moreAvailable": False, "sessions": page}) for page in pages]


def build(body: bytes) -> ColumnarPage | None:
    """A page's tables from its bytes (None: it takes the record transform)."""
    return session_columns(orjson.loads(body)["sessions"], None)


def main(argv: Sequence[str] | None = None) -> int:
    """Print this process's CPU seconds for the pages' parse and build, here and offloaded."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    bodies = page_bodies(args.sessions)
    freeze_heap()
    cpu, wall = time.process_time(), time.perf_counter()
    here = [build(body) for body in bodies]
    here_cpu, here_wall = time.process_time() - cpu, time.perf_counter() - wall
    if any(page is None for page in here):
        raise SystemExit("a generated page left the columnar path: nothing to compare")
    pickled = sum(len(pickle.dumps(page)) for page in here) / len(here) / 1024
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(args.workers, mp_context=context) as pool:
        list(pool.map(build, bodies[: args.workers]))  # the workers started and their imports done
        cpu, wall = time.process_time(), time.perf_counter()
        offloaded = list(pool.map(build, bodies))
        pool_cpu, pool_wall = time.process_time() - cpu, time.perf_counter() - wall
    pairs = zip(here, offloaded, strict=True)
    if not all(a is not None and b is not None and a.root.equals(b.root) for a, b in pairs):
        raise SystemExit("the offloaded tables differ from this process's")
    sessions = sum(len(page) for page in here if page is not None)
    print(f"{sessions:,} sessions in {len(bodies)} pages of up to {PAGE_SIZE:,}", end="; ")
    print(f"a built page pickled: {pickled:,.0f} KB")
    print(f"in this process:   {here_cpu:.3f} CPU s, {here_wall:.3f} s")
    print(f"{args.workers} worker processes: {pool_cpu:.3f} CPU s of this process, {pool_wall:.3f} s")
    print(f"this process's CPU offloaded / here: x{pool_cpu / here_cpu:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
