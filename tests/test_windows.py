"""Unit tests of window planning."""

import itertools
from datetime import UTC, datetime, timedelta

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
