"""Unit tests of window planning."""

import itertools
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from kore_sessions.source.api.rules import MAX_WINDOW_SPAN
from kore_sessions.source.api.windows import (
    WINDOW_OVERLAP,
    first_windows,
    incremental_start,
    kept_with_tail,
    plan_windows,
)

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_windows_cover_the_range_each_under_seven_days() -> None:
    span = timedelta(days=6)
    windows = plan_windows(T0, T0 + timedelta(days=20, hours=5), span)
    assert windows[0].start == T0
    assert windows[-1].end == T0 + timedelta(days=20, hours=5)
    assert all(w.end - w.start < MAX_WINDOW_SPAN for w in windows)
    for before, after in itertools.pairwise(windows):
        assert after.start == before.end - WINDOW_OVERLAP, "adjacent windows overlap at edges"
    assert len(windows) == 4


def test_empty_and_point_ranges() -> None:
    assert plan_windows(T0, T0 - timedelta(seconds=1), timedelta(days=1)) == []
    assert len(plan_windows(T0, T0, timedelta(days=1))) == 1


@pytest.mark.parametrize("span", [timedelta(0), timedelta(days=7), timedelta(days=7) - WINDOW_OVERLAP])
def test_spans_the_api_refuses_are_rejected(span: timedelta) -> None:
    with pytest.raises(ValueError):
        plan_windows(T0, T0 + timedelta(days=1), span)


# Ten windows of a day a package, and the range's rest after them: (its hours, windows listed,
# more left). A rest that owns up to a quarter of the ten days (60 h) goes in the package.
SHORT_TAILS = {
    "none": (0, 10, False),
    "an hour": (1, 11, False),
    "two days": (48, 12, False),
    "two and a half days": (60, 13, False),
    "just over": (61, 10, True),
    "a week": (7 * 24, 10, True),
}


@pytest.mark.parametrize("tail", list(SHORT_TAILS))
def test_a_package_takes_the_windows_left_when_they_are_a_short_tail(tail: str) -> None:
    hours, listed, more = SHORT_TAILS[tail]
    end = T0 + timedelta(days=10, hours=hours)
    windows, more_left = first_windows(T0, end, timedelta(days=1), 10)
    assert (len(windows), more_left) == (listed, more)
    assert windows == plan_windows(T0, end, timedelta(days=1))[:listed]


def test_a_tail_is_weighed_by_the_time_its_windows_own() -> None:
    """The tail is weighed against the time the kept windows own (each after the first from its
    predecessor's end: the quarter exactly, in SHORT_TAILS, tells that from their spans)."""
    windows = plan_windows(T0, T0 + timedelta(days=4, hours=12), timedelta(days=1))
    assert len(windows) == 5
    assert kept_with_tail(windows, 4) == 5, "12 h after 4 days: under a quarter"
    assert kept_with_tail(windows, 2) == 2, "2.5 days after 2 days: more than a quarter"
    assert kept_with_tail(windows, 5) == 5
    assert kept_with_tail(windows, 9) == 5


def test_lookback_applies_from_the_cursor_not_bounded_by_start_date() -> None:
    lookback = timedelta(hours=1)
    assert incremental_start(None, T0, lookback) == T0
    cursor = T0 + timedelta(minutes=10)
    assert incremental_start(cursor, T0, lookback) == cursor - lookback


@pytest.mark.unit
def test_a_record_listed_after_a_windows_end_is_given_by_the_next_window_only() -> None:
    """A server that rounds `dateTo` up lists a session past the window's end: the next window
    owns it, so it is given once (an appended first backfill would load it twice) and no
    window's newest time passes its end."""
    from kore_sessions.source.api.columns import TIMESTAMP
    from kore_sessions.source.api.run import ServerClock
    from kore_sessions.source.api.walk import WindowLedger

    first, second = plan_windows(
        datetime(2026, 1, 1, 0, 0, 0, 250000, tzinfo=UTC),
        datetime(2026, 1, 12, tzinfo=UTC),
        timedelta(days=6),
    )
    late = first.end + timedelta(milliseconds=500)
    assert not first.owns(late) and second.owns(late)
    ledger = WindowLedger([first, second], "session_id", "start_time")
    for index, wanted in ((0, False), (1, True)):
        given = ledger.take_page(index, ["s"], pa.array([late], TIMESTAMP), ServerClock())
        assert given.to_pylist() == [wanted]
        assert ledger.take(index, {"session_id": "r", "start_time": late}) is wanted
    assert ledger.close(0) == (0, None)
