"""A bot's state rules that need no server: where the loaded range begins."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from kore_sessions.source.api.cursor import BotState
from kore_sessions.source.api.run import SourceRun

pytestmark = pytest.mark.unit

LOADED_FROM = "2026-06-10T00:00:00.000Z"


def day(n: int) -> datetime:
    return datetime(2026, 6, n, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "end", "loaded_from"),
    [
        (day(1), day(10), "2026-06-01T00:00:00.000Z"),  # ends where the loaded range begins
        (day(1), day(20), "2026-06-01T00:00:00.000Z"),  # overlaps it
        (day(1), day(9), LOADED_FROM),  # leaves a gap: never loaded, the range stays
        (day(10), day(20), LOADED_FROM),  # inside it already
        (day(12), day(20), LOADED_FROM),
    ],
)
def test_a_bounded_backfill_widens_the_loaded_range_only_when_it_reaches_it(
    start: datetime, end: datetime, loaded_from: str
) -> None:
    state = {"cursor": "2026-06-30T00:00:00.000Z", "loaded_from": LOADED_FROM}
    BotState(state, "sessions", "st-bot", SourceRun()).bounded_backfill_loaded(start, end)
    assert state["loaded_from"] == loaded_from
    assert state["cursor"] == "2026-06-30T00:00:00.000Z", "the cursor is left alone"


def test_a_state_without_a_loaded_range_gets_none_from_a_bounded_backfill() -> None:
    state: dict[str, str] = {}
    BotState(state, "sessions", "st-bot", SourceRun()).bounded_backfill_loaded(day(1), day(20))
    assert "loaded_from" not in state
