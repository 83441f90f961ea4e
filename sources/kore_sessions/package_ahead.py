"""A resource's load package made in a thread of its own, and the next one begun while dlt loads
the last: fetching overlaps loading.

dlt runs a package's steps one after another: extract (the source's fetching), normalize, load.
While a package loads (DuckDB's or PostgreSQL's work, which releases the GIL) the source would
sit idle. So a resource whose next package depends only on its own state begins fetching it
as soon as its extract of the last one ends (`SourceRun.ahead`): on a copy of its state, into a
bounded queue, so memory stays bounded (at most `max_batches` Arrow batches wait). The next
extract takes the batches and adopts the state the fetch left, after checking that the state
dlt hands it is the one the fetch began from. A fetch that failed raises in the extract that
takes it, before any state moves; a run that fails first stops the fetch ahead, whose copy of
the state is then dropped unseen.
"""

from __future__ import annotations

import copy
import json
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

# What the producing thread hands on: `(table name, Arrow table)` batches.
Batch = tuple[str, pa.Table]
# Makes one package's batches from a resource's state (changed in place).
Produce = Callable[[dict[str, Any]], Iterator[Batch]]
# How often a producer waiting for room in the queue looks whether it was stopped (seconds).
STOP_POLL_SECONDS = 0.1
# How long stopping waits for the producer (an HTTP request in flight ends within its timeout;
# the thread is a daemon, and what it still does reaches no state).
STOP_WAIT_SECONDS = 5.0


class StateMovedError(RuntimeError):
    """The state a package fetched ahead began from is not the state its extract found."""


@dataclass(frozen=True)
class _Failed:
    """The error the producer ended with."""

    error: BaseException


_DONE = object()


class PackageFetch:
    """One package of a resource, produced in a thread of its own into a bounded queue.

    Attributes:
        state: The resource's state the package works on: dlt's own, or a copy when the
            package is fetched ahead of its extract.
        began_from: The state as the fetch began, as JSON (to check it against dlt's later).
    """

    def __init__(self, produce: Produce, state: dict[str, Any], max_batches: int, name: str) -> None:
        """Start producing the package's batches from `state` (changed in place)."""
        self.state = state
        self.began_from = state_fingerprint(state)
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_batches)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, args=(produce,), name=name, daemon=True)
        self._thread.start()

    @classmethod
    def ahead(cls, produce: Produce, state: dict[str, Any], max_batches: int, name: str) -> PackageFetch:
        """Start the next package on a copy of `state` (dlt's own stays as its extract left it)."""
        return cls(produce, copy.deepcopy(state), max_batches, name)

    def batches(self) -> Iterator[Batch]:
        """The package's batches as they come; raises the error the producer ended with."""
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item

    def adopt_into(self, state: dict[str, Any]) -> None:
        """Put the state the fetch left into dlt's `state` (nothing to do when it worked on it)."""
        if self.state is not state:
            state.clear()
            state.update(self.state)

    def check_began_from(self, state: dict[str, Any]) -> None:
        """Raise StateMovedError unless `state` is the state the fetch began from (a fetch
        working on dlt's own state has nothing to check)."""
        if self.state is not state and state_fingerprint(state) != self.began_from:
            raise StateMovedError(
                f"{self._thread.name}: the state changed between the fetch of the next package and its "
                "extract; the package was not loaded, run the load again"
            )

    def stop(self) -> None:
        """Stop producing (a run that failed, or a package taken whole) and drop what waits."""
        self._stop.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(STOP_WAIT_SECONDS)

    def _produce(self, produce: Produce) -> None:
        """The thread: every batch into the queue, then the end (or the error)."""
        batches = produce(self.state)
        try:
            for batch in batches:
                if not self._put(batch):
                    return
            self._put(_DONE)
        except BaseException as error:  # handed to the extract that takes the package
            self._put(_Failed(error))
        finally:
            batches.close()  # type: ignore[attr-defined]

    def _put(self, item: Any) -> bool:
        """Wait for room in the queue; False once stopped."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=STOP_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False


def state_fingerprint(state: dict[str, Any]) -> str:
    """The state as canonical JSON (dlt stores it as JSON: tuples come back as lists)."""
    return json.dumps(state, sort_keys=True, default=str)
