"""A package cut at its size keeps the windows that end the bot's walk when they are a short tail
(`windows.kept_with_tail`): a package of their own would cost a load step and a checkpoint."""

from __future__ import annotations

from datetime import timedelta

import pytest
from kore_sessions.source.api.answers import Page
from kore_sessions.source.api.run import SourceRun
from kore_sessions.source.api.timestamps import format_api_timestamp
from kore_sessions.source.config import build_run_config
from kore_sessions.source.options import KoreSessionsOptions
from kore_sessions.source.sessions.extract import BotExtractor

from .conftest import BOTS, NOW

pytestmark = pytest.mark.unit

# Four windows of a day before the clock, and the fifth: the hour past it (the skew allowance).
DAYS = 4


def four_days_extractor(most_records: int, more_beyond: bool) -> BotExtractor:
    """A bot's walk of the last four days and the hour past the clock, in one package, cut at
    `most_records` sessions; `more_beyond`: the bot's walk goes on after these windows."""
    options = KoreSessionsOptions(
        host="http://127.0.0.1:9",
        bot_ids=[BOTS[0]],
        start_date=NOW - timedelta(days=DAYS),
        window_hours=24,
        windows_per_package=10,
    )
    extractor = BotExtractor(None, BOTS[0], {}, build_run_config(options, clock=lambda: NOW), SourceRun())  # type: ignore[arg-type]
    assert [w.end - (w.owned_after or w.start) for w in extractor.windows] == [timedelta(days=1)] * DAYS + [
        timedelta(hours=1)
    ]
    extractor.most_records = most_records
    extractor.state.bot.more_to_fetch = more_beyond
    return extractor


def first_window_answer(count: int) -> Page:
    """The first window's only page: `count` sessions in the middle of its day."""
    start = format_api_timestamp(NOW - timedelta(days=DAYS) + timedelta(hours=12))
    records = [{"sessionId": f"s-{i}", "start_time": start, "sessionStatus": "closed"} for i in range(count)]
    return Page(records=records, more_available=False, total=count, invalid_ids=[])


# Sessions the package may hold and whether the walk goes on after its windows: the windows it
# keeps (5 a day in the first window), and whether the bot has more to fetch after them.
CUTS = {
    "the hour past the clock joins four days": (20, False, 5, False),
    "a day and the hour stay out of two days": (10, False, 2, True),
    "no tail while the walk goes on": (20, True, 4, True),
    "uncut": (100, False, 5, False),
}


@pytest.mark.parametrize("cut", list(CUTS))
def test_a_short_tail_that_ends_the_walk_stays_in_the_package(cut: str) -> None:
    most_records, more_beyond, kept, more_after = CUTS[cut]
    extractor = four_days_extractor(most_records, more_beyond)
    (first,) = extractor.plan()
    rows, follow_ups = extractor.handle(first, first_window_answer(5))
    assert len(rows) == 5
    assert len(extractor.windows) == kept
    assert sorted(request.window_index for request in follow_ups) == list(range(1, kept))
    assert extractor.state.bot.more_to_fetch is more_after
