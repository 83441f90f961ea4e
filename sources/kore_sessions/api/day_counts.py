"""Completeness counts against the API's own totals, with the fewest requests the API allows.

Every listing answers with `total`, the number of records of the whole window. So a stretch of
up to 7 days costs one request (`limit` 1) however many records it holds. Days are checked in
such stretches; only where a stretch's total differs from the warehouse's count is it split in
two, one half asked and the other inferred from the difference, down to single days (and, for
a repair, down to the smaller ranges whose reload is worth a request of its own).

It knows no resource: the counts come in as functions (`Counter`), and a resource's counter
(`SpanCounter`) brings its own request; everything here is pure but `SpanCounter.count`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from kore_sessions.source.api.answers import KoreApiError, Page
from kore_sessions.source.api.rules import MAX_WINDOW_SPAN

# The smallest step of the API's timestamps: a range's inclusive end is the next start less it.
TICK = timedelta(milliseconds=1)
# A range whose reload needs at most this many pages is reloaded whole, not split further.
RELOAD_PAGES_WORTH_A_SPLIT = 2
# Seven whole days span 1 ms under the API's limit. A server that rounds dateTo up to the
# second refuses that (400); stretches at least this long are then asked for in two halves.
SPAN_A_SERVER_MAY_ROUND_UP = timedelta(days=6)

# How many records fall in [start, end] (both inclusive), by whoever counts.
Counter = Callable[[datetime, datetime], int]
# One page of a window's listing: (skip, limit) -> the page.
PageFetch = Callable[[int, int], Page]


@dataclass(frozen=True)
class DaySlice:
    """The part of one UTC day that is checked: [start, end], both inclusive."""

    day: date
    start: datetime
    end: datetime


def day_slices(start: datetime, end: datetime) -> list[DaySlice]:
    """The UTC days from `start` to `end` (inclusive), the first and last cut to them."""
    slices: list[DaySlice] = []
    day = start.astimezone(UTC).date()
    while True:
        day_start = datetime.combine(day, time(), UTC)
        low, high = max(day_start, start), min(day_start + timedelta(days=1) - TICK, end)
        if low > end:
            return slices
        if low <= high:
            slices.append(DaySlice(day, low, high))
        day += timedelta(days=1)


def stretches(slices: Sequence[DaySlice]) -> list[list[DaySlice]]:
    """Consecutive days grouped so that each group fits one request (under 7 days)."""
    groups: list[list[DaySlice]] = []
    for piece in slices:
        group = groups[-1] if groups else None
        follows = group is not None and piece.day == group[-1].day + timedelta(days=1)
        if group and follows and piece.end - group[0].start < MAX_WINDOW_SPAN:
            group.append(piece)
        else:
            groups.append([piece])
    return groups


def api_day_counts(
    group: Sequence[DaySlice], held: dict[date, int], api_count: Counter, total: int | None = None
) -> dict[date, int]:
    """The API's count of each day of a group: one request for the group, and a split only
    where its total differs from what the warehouse holds (`held`).

    Args:
        group: Consecutive days spanning under 7 days.
        held: The warehouse's count of each day.
        api_count: Asks the API (one request) for a range's total.
        total: The group's total when already known (inferred by the caller).

    Returns:
        The API's count of every day of the group.
    """
    if total is None:
        total = api_count(group[0].start, group[-1].end)
    if total == sum(held[piece.day] for piece in group):
        return {piece.day: held[piece.day] for piece in group}
    if len(group) == 1:
        return {group[0].day: total}
    left, right = group[: len(group) // 2], group[len(group) // 2 :]
    left_total = api_count(left[0].start, left[-1].end)
    counts = api_day_counts(left, held, api_count, left_total)
    counts.update(api_day_counts(right, held, api_count, total - left_total))
    return counts


def ranges_to_reload(
    start: datetime,
    end: datetime,
    api_total: int,
    api_count: Counter,
    held_count: Counter,
    page_size: int,
) -> list[tuple[datetime, datetime]]:
    """The smallest ranges of [start, end] whose counts differ and whose reload is worth it.

    A range is split in half (one half asked, the other inferred) while its reload would take
    more than RELOAD_PAGES_WORTH_A_SPLIT pages; halves whose counts agree are left alone.
    """
    if api_total == held_count(start, end):
        return []
    middle = _middle(start, end)
    if api_total <= RELOAD_PAGES_WORTH_A_SPLIT * page_size or middle <= start or middle >= end:
        return [(start, end)]
    left_total = api_count(start, middle)
    return [
        *ranges_to_reload(start, middle, left_total, api_count, held_count, page_size),
        *ranges_to_reload(middle + TICK, end, api_total - left_total, api_count, held_count, page_size),
    ]


class SpanCounter(ABC):
    """Counts a bot's records in a range through a resource's own request (`count_once`);
    learns whether the server refuses a stretch of 7 whole days (then such stretches are asked
    for in two halves)."""

    def __init__(self) -> None:
        """Start trusting the server with spans of 7 whole days."""
        self.halve_long_spans = False

    @abstractmethod
    def count_once(self, bot_key: str, start: datetime, end: datetime) -> int:
        """The API's count of a bot's records in [start, end] (under 7 days), as asked for."""

    def count(self, bot_key: str, start: datetime, end: datetime) -> int:
        """The API's count of a bot's records in [start, end] (under 7 days)."""
        if self.halve_long_spans and end - start >= SPAN_A_SERVER_MAY_ROUND_UP:
            return self._halves(bot_key, start, end)
        try:
            return self.count_once(bot_key, start, end)
        except KoreApiError as exc:
            if exc.status != 400 or end - start < SPAN_A_SERVER_MAY_ROUND_UP:
                raise
            self.halve_long_spans = True
            return self._halves(bot_key, start, end)

    def counter(self, bot_key: str) -> Counter:
        """`count` for one bot."""
        return lambda start, end: self.count(bot_key, start, end)

    def _halves(self, bot_key: str, start: datetime, end: datetime) -> int:
        """The count of [start, end] asked in two requests."""
        middle = _middle(start, end)
        return self.count(bot_key, start, middle) + self.count(bot_key, middle + TICK, end)


def listing_total(fetch: PageFetch, id_key: str, page_size: int) -> int:
    """The number of records a window lists: the `total` of one request (`limit` 1); a server
    that sends no total is paged through instead, its records counted by `id_key`."""
    page = fetch(0, 1)
    if page.total is not None:
        return page.total
    seen = {raw.get(id_key) for raw in page.records}
    skip = len(page.records)
    while page.more_available and page.records:
        page = fetch(skip, page_size)
        seen.update(raw.get(id_key) for raw in page.records)
        skip += len(page.records)
    return len(seen)


def _middle(start: datetime, end: datetime) -> datetime:
    """The middle of a range, to the API's millisecond."""
    middle = start + (end - start) / 2
    return middle.replace(microsecond=middle.microsecond // 1000 * 1000)
