"""Unit tests of window planning."""

import itertools
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from kore_sessions.source.api.rules import MAX_WINDOW_SPAN
from kore_sessions.source.api.windows import WINDOW_OVERLAP, incremental_start, plan_windows

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
