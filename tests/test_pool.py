"""The request pool: per-bot and whole-pool limits, fairness between bots, errors."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from kore_sessions.source.api.pool import RequestPool

pytestmark = pytest.mark.unit


class Gauge:
    """Counts calls running at once, per owner and in all."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now: Counter[str] = Counter()
        self.most: Counter[str] = Counter()

    def call(self, owner: str, value: int, seconds: float = 0.02):
        def run() -> int:
            with self.lock:
                self.now[owner] += 1
                self.now["*"] += 1
                self.most[owner] = max(self.most[owner], self.now[owner])
                self.most["*"] = max(self.most["*"], self.now["*"])
            time.sleep(seconds)
            with self.lock:
                self.now[owner] -= 1
                self.now["*"] -= 1
            return value

        return run


def start_order(owners: str, calls_each: int, per_owner: int, max_workers: int, seconds: float) -> list[str]:
    """The owners of the calls in the order the pool started them."""
    started: list[str] = []
    lock = threading.Lock()

    def call(owner: str):
        def run() -> None:
            with lock:
                started.append(owner)
            time.sleep(seconds)

        return run

    with RequestPool[int](per_owner=per_owner, max_workers=max_workers) as pool:
        for owner in owners:
            for index in range(calls_each):
                pool.submit(owner, index, call(owner))
        list(pool.completed())
    return started


def test_results_held_never_exceed_the_workers_while_the_caller_is_slow() -> None:
    gauge = Gauge()
    pool = RequestPool[int](per_owner=4, max_workers=3)
    outstanding = []
    with pool:
        for owner in ("a", "b", "c", "d", "e"):
            for index in range(6):
                pool.submit(owner, index, gauge.call(owner, index, 0.005))
        results = []
        for owner, tag, value in pool.completed():
            outstanding.append(len(pool._running) + 1)  # the one just handed back
            time.sleep(0.01)  # a caller slower than the calls: finished results wait for it
            results.append((owner, tag, value))
    assert sorted(results) == sorted((o, i, i) for o in "abcde" for i in range(6))
    assert max(outstanding) <= 3
    assert gauge.most["*"] <= 3


def test_a_bot_never_runs_more_than_its_share() -> None:
    gauge = Gauge()
    with RequestPool[int](per_owner=2, max_workers=8) as pool:
        for index in range(10):
            pool.submit("a", index, gauge.call("a", index))
        assert [tag for _, tag, _ in pool.completed()] != []
    assert gauge.most["a"] == 2


def test_every_bot_gets_a_turn_when_the_pool_is_smaller_than_their_shares() -> None:
    started = start_order("abcd", calls_each=8, per_owner=4, max_workers=4, seconds=0.01)
    assert sorted(started[:4]) == ["a", "b", "c", "d"], started[:8]


def test_a_failed_call_raises_to_the_caller() -> None:
    def boom() -> None:
        raise RuntimeError("no answer")

    with RequestPool[int](per_owner=1, max_workers=2) as pool:
        pool.submit("a", 0, boom)
        with pytest.raises(RuntimeError, match="no answer"):
            list(pool.completed())


def test_more_bots_than_workers_all_keep_moving() -> None:
    """With more bots than workers, no bot waits for another to run out of calls."""
    started = start_order("abc", calls_each=5, per_owner=1, max_workers=2, seconds=0.005)
    assert len(started) == 15
    assert set(started[:6]) == {"a", "b", "c"}, "".join(started)
    assert Counter(started[:9]) == {"a": 3, "b": 3, "c": 3}, "".join(started)
