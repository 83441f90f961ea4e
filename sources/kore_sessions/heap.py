"""The process's heap: fewer malloc arenas and no caching Arrow pool for the whole program, and
fewer garbage collections during an extraction, whose freed memory goes back to the system
before the load step.

Parsing a page makes tens of thousands of dicts and lists on worker threads. At Python's
collector thresholds every 700 of them start a collection (and each full one walks every object
dlt and the libraries hold); glibc gives each busy thread an arena of its own that keeps what it
freed, and Arrow's default pool (mimalloc in pyarrow's wheels) keeps what it freed too.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import pyarrow as pa

from kore_sessions.source.settings import COLLECTOR_THRESHOLDS, MALLOC_ARENAS

# `lean_heap` blocks open (threads may overlap them) and what the first one found.
_LEAN_LOCK = threading.Lock()
_LEAN_DEPTH = [0]
_LEAN_SAVED: list[Any] = []
# glibc's mallopt parameter of the most arenas (malloc.h).
M_ARENA_MAX = -8


def tune_process_heap() -> None:
    """At a program's start, before it starts threads: malloc arenas limited to MALLOC_ARENAS
    (unless MALLOC_ARENA_MAX is set; glibc fixes the limit once threads have made arenas),
    pyarrow's own allocations on the system allocator (unless ARROW_DEFAULT_MEMORY_POOL names
    another; Arrow's C++ code took its pool from that variable as pyarrow was imported:
    `kore_sessions.cli` sets it before pyarrow loads), and
    the objects alive once the program's modules are imported (hundreds of thousands: modules,
    classes, functions of dlt, pyarrow, DuckDB and the project) frozen for good, so no collection
    walks them again: a full one at the end of every package took ~25 ms, and a 7-package load
    spent ~8% less CPU. Objects made later are collected as before (`lean_heap` then leaves the
    freezing to the program)."""
    gc.collect()
    gc.freeze()
    libc = _glibc()
    if libc is not None and "MALLOC_ARENA_MAX" not in os.environ:
        libc.mallopt(M_ARENA_MAX, MALLOC_ARENAS)
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL", "system") == "system":
        pa.set_memory_pool(pa.system_memory_pool())


@contextmanager
def lean_heap() -> Iterator[None]:
    """Run the block with fewer garbage collections, and hand back what it freed.

    On entry the objects alive are frozen (left out of collections, unless the program froze
    some itself) and the thresholds raised; on exit both are put back, cyclic garbage is
    collected and the free memory of the heap is returned to the system (glibc), so that the
    load step starts from less.
    """
    with _LEAN_LOCK:
        _LEAN_DEPTH[0] += 1
        if _LEAN_DEPTH[0] == 1:  # the first of blocks that may overlap (threads) sets, the last puts back
            _LEAN_SAVED[:] = [gc.get_threshold(), gc.get_freeze_count() == 0]
            if _LEAN_SAVED[1]:  # a program that froze objects itself keeps them so
                gc.freeze()
            gc.set_threshold(*COLLECTOR_THRESHOLDS)
    try:
        yield
    finally:
        with _LEAN_LOCK:
            _LEAN_DEPTH[0] -= 1
            last = _LEAN_DEPTH[0] == 0
            if last:
                thresholds, froze = _LEAN_SAVED
                gc.set_threshold(*thresholds)
                if froze:
                    gc.unfreeze()
        if last:
            gc.collect()
            libc = _glibc()
            if libc is not None:
                libc.malloc_trim(0)


@cache
def _glibc() -> Any | None:
    """The C library when it is glibc (it has mallopt and malloc_trim), else None."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    if libc is None or not hasattr(libc, "malloc_trim") or not hasattr(libc, "mallopt"):
        return None
    return libc
