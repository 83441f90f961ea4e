"""Requests on worker threads: bots in parallel, a bounded number in flight per bot.

Each bot's limiter lives in the client and is taken by the worker before it sends, so the
pool only decides how many requests of a bot may wait or run at once; results come back to
the caller's thread in the order they complete, and all state is changed there.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Generic, TypeVar

Tag = TypeVar("Tag")


class RequestPool(Generic[Tag]):
    """A queue of calls per owner (bot), run at most `per_owner` at a time each.

    At most `max_workers` calls are started and not yet handed back: more would not run any
    sooner, and each finished call holds its result (a parsed page) until the caller takes it.
    """

    def __init__(self, per_owner: int, max_workers: int) -> None:
        """Set the limits; threads start with the first call."""
        if per_owner < 1 or max_workers < 1:
            raise ValueError("per_owner and max_workers must be at least 1")
        self.per_owner = per_owner
        self.max_workers = max_workers
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="kore")
        self._pending: dict[str, deque[tuple[Tag, Callable[[], Any]]]] = {}
        self._running: dict[Future[Any], tuple[str, Tag]] = {}
        self._served: dict[str, int] = {}  # owner -> when a call of it last started
        self._starts = 0

    def submit(self, owner: str, tag: Tag, call: Callable[[], Any]) -> None:
        """Queue `call` for `owner`; its result comes back from `completed` with `tag`."""
        self._pending.setdefault(owner, deque()).append((tag, call))

    def completed(self) -> Iterator[tuple[str, Tag, Any]]:
        """Run the queued calls and yield `(owner, tag, result)` as each finishes.

        Calls submitted while iterating are run too; iteration ends when nothing is queued or
        running. A call's exception is raised here (the other calls are cancelled).
        """
        while True:
            self._start_what_fits()
            if not self._running:
                return
            done, _ = wait(list(self._running), return_when=FIRST_COMPLETED)
            for future in done:
                owner, tag = self._running.pop(future)
                yield owner, tag, future.result()

    def _start_what_fits(self) -> None:
        """Start queued calls while their owner, and the pool, have room: one call per owner in
        turn, the least busy first and, among those, the one served longest ago, so that every
        bot keeps requests going however many there are."""
        busy: dict[str, int] = {}
        for owner, _ in self._running.values():
            busy[owner] = busy.get(owner, 0) + 1
        while len(self._running) < self.max_workers:
            ready = [
                name for name, queue in self._pending.items() if queue and busy.get(name, 0) < self.per_owner
            ]
            if not ready:
                return
            owner = min(ready, key=lambda name: (busy.get(name, 0), self._served.get(name, -1)))
            tag, call = self._pending[owner].popleft()
            self._running[self._executor.submit(call)] = (owner, tag)
            busy[owner] = busy.get(owner, 0) + 1
            self._served[owner] = self._starts
            self._starts += 1

    def close(self) -> None:
        """Drop what is queued, cancel what has not started, and wait for the rest."""
        self._pending.clear()
        self._executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> RequestPool[Tag]:
        """The pool itself."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close the pool."""
        self.close()
