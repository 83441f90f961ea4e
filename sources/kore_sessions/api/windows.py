"""Which windows of start_time to ask for, from the cursor, lookback, start and end."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from kore_sessions.source.api.rules import MAX_WINDOW_SPAN, SHORT_TAIL_SHARE

# Adjacent windows overlap by this much, so a session on an edge is never lost to rounding;
# the source drops the duplicate by sessionId.
WINDOW_OVERLAP = timedelta(seconds=1)


@dataclass(frozen=True)
class Window:
    """Sessions that started in [start, end], both ends inclusive.

    A window after the first overlaps its predecessor; the sessions of the overlap belong to
    the predecessor, so each window keeps only those that started after `owned_after`.
    """

    start: datetime
    end: datetime
    owned_after: datetime | None = None

    def owns(self, started: datetime) -> bool:
        """Whether a session that started then is this window's: not its predecessor's, and not
        after its end (a server that rounds `dateTo` up may list it; the next window owns it)."""
        return (self.owned_after is None or started > self.owned_after) and started <= self.end

    def __str__(self) -> str:
        return f"{self.start:%Y-%m-%d %H:%M:%S}..{self.end:%Y-%m-%d %H:%M:%S}"


def check_span(span: timedelta) -> None:
    """Reject a window span the API would refuse (7 days or more with the overlap)."""
    if span <= timedelta(0):
        raise ValueError(f"window span must be positive, got {span}")
    if span + WINDOW_OVERLAP >= MAX_WINDOW_SPAN:
        raise ValueError(
            f"window span {span} is too long: each request must span under 7 days "
            f"(at most {MAX_WINDOW_SPAN - WINDOW_OVERLAP - timedelta(seconds=1)})"
        )


def plan_windows(start: datetime, end: datetime, span: timedelta) -> list[Window]:
    """Split [start, end] into consecutive windows, oldest first, each under 7 days.

    Args:
        start: First instant to cover.
        end: Last instant to cover (usually now).
        span: Length of a window before the overlap with its predecessor is added.

    Returns:
        Windows covering [start, end]; each after the first begins WINDOW_OVERLAP before its
        predecessor ends. Empty when end is before start.
    """
    check_span(span)
    if end < start:
        return []
    windows: list[Window] = []
    edge = start
    while True:
        window_end = min(edge + span, end)
        if windows:
            windows.append(Window(edge - WINDOW_OVERLAP, window_end, owned_after=edge))
        else:
            windows.append(Window(edge, window_end))
        if window_end >= end:
            return windows
        edge = window_end


def windows_of_ranges(ranges: Sequence[tuple[datetime, datetime]], span: timedelta) -> list[Window]:
    """The windows of several ranges (a repair), each range planned on its own."""
    return [window for start, end in ranges for window in plan_windows(start, end, span)]


def first_windows(start: datetime, end: datetime, span: timedelta, most: int) -> tuple[list[Window], bool]:
    """The first `most` windows of [start, end] (all of them when those left are a short tail,
    `kept_with_tail`), and whether more are left after them."""
    windows = plan_windows(start, end, span)
    kept = kept_with_tail(windows, most)
    return windows[:kept], len(windows) > kept


def kept_with_tail(windows: Sequence[Window], keep: int) -> int:
    """How many of `windows` (the last of a walk) a package keeps where it would keep `keep`:
    every one when those after `keep` own at most SHORT_TAIL_SHARE of the time the kept ones own."""
    tail = windows[keep:]
    if tail and owned_time(tail) <= owned_time(windows[:keep]) * SHORT_TAIL_SHARE:
        return len(windows)
    return min(keep, len(windows))


def owned_time(windows: Sequence[Window]) -> timedelta:
    """The time the windows own together (each from where its predecessor's ends)."""
    return sum((window.end - (window.owned_after or window.start) for window in windows), timedelta(0))


def incremental_start(
    cursor: datetime | None,
    start_date: datetime,
    lookback: timedelta,
    resume_from: datetime | None = None,
) -> datetime:
    """Where a run (or the next package of a run) begins.

    The first backfill begins at `start_date`; later runs at `cursor - lookback`, where the
    cursor is the newest `start_time` the server has shown (not the loader's clock), so
    sessions the server shows later with an older `start_time` are still read. The lookback is
    taken from the cursor, not bounded by `start_date`, so it keeps working after the first
    run. Within one run, a later package resumes where the previous one stopped walking
    (`resume_from`), whether or not its windows held sessions.
    """
    start = start_date if cursor is None else cursor - lookback
    if resume_from is not None and resume_from > start:
        return resume_from
    return start
