"""The CPU cost of a page's tables: the pipeline's columnar build against the floor's flat rows.

`bench.dlt_only` times both over its pages while it prepares them, untimed itself: the least
time two cores allow (`bench.backfill.cores_bound`) then puts the build the pipeline cannot
leave out (its tables come from its pages) in place of the floor's flat rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kore_sessions.source.sessions.columnar_sessions import session_columns

from bench.reference import to_batch


class BuildClocks:
    """CPU seconds of the pages' builds on the thread that times them, nothing else running.

    Attributes:
        load_id: The `_dlt_load_id` the timed tables are given (its value changes nothing of
            the cost).
        seconds: CPU seconds by build: `columnar` (`session_columns` and its tables, as the
            pipeline builds a page) and `flat` (the floor's `to_batch`).
        not_columnar: Pages the columnar build left to the record transform (their columnar
            time is only the check that refused them).
    """

    def __init__(self, load_id: str) -> None:
        self.load_id = load_id
        self.seconds = {"columnar": 0.0, "flat": 0.0}
        self.not_columnar = 0

    def timed(self, kept: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Time a page's flat rows, then its columnar build (the second to run finds the page
        in the CPU's caches: the columnar build, if either); give the page back unchanged."""
        if not kept:
            return kept
        self._clocked("flat", lambda: to_batch(kept))
        columnar = self._clocked("columnar", lambda: session_columns(kept, None))
        if columnar is None:
            self.not_columnar += 1
        else:
            self._clocked("columnar", lambda: columnar.tables(self.load_id))
        return kept

    def _clocked(self, kind: str, build: Callable[[], Any]) -> Any:
        """Run `build`, adding its CPU time on this thread to `kind`."""
        began = time.thread_time()
        built = build()
        self.seconds[kind] += time.thread_time() - began
        return built
