"""Outcome counts of the containment marts and the rates computed from their sums.

A rate over several bots, channels, days or tag values is always the summed count divided by
the summed sessions, never an average of rates.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Protocol, TypeVar


class Outcomes(Protocol):
    """Anything carrying the four outcome counts."""

    @property
    def sessions(self) -> int:
        """Sessions counted."""

    @property
    def self_service(self) -> int:
        """Sessions the bot contained."""

    @property
    def drop_off(self) -> int:
        """Sessions the user left midway."""

    @property
    def agent(self) -> int:
        """Sessions handed over to a human."""


@dataclass(frozen=True)
class DailyCounts:
    """Session outcomes of one bot on one day (or in the week or month starting on `day`)."""

    day: date
    bot_id: str
    sessions: int
    self_service: int
    drop_off: int
    agent: int


@dataclass(frozen=True)
class SliceCounts:
    """Session outcomes of one bot on one day in one slice: a channel or a language code."""

    day: date
    bot_id: str
    key: str
    sessions: int
    self_service: int
    drop_off: int
    agent: int


@dataclass(frozen=True)
class TagCounts:
    """Session outcomes of the sessions carrying one tag value, summed over bots and days.

    Attributes:
        scope: `session` or `user`.
        name: The tag's name.
        value: The tag's value as text (None when the tag had none).
        distinct_values: How many values the tag had in the same days, this one included.
    """

    scope: str
    name: str
    value: str | None
    distinct_values: int
    sessions: int
    self_service: int
    drop_off: int
    agent: int


@dataclass(frozen=True)
class Totals:
    """Summed outcome counts, with the rates computed from them."""

    sessions: int = 0
    self_service: int = 0
    drop_off: int = 0
    agent: int = 0

    def __add__(self, other: Outcomes) -> Totals:
        """The sum of two sets of counts."""
        return Totals(
            self.sessions + other.sessions,
            self.self_service + other.self_service,
            self.drop_off + other.drop_off,
            self.agent + other.agent,
        )

    @property
    def other(self) -> int:
        """Sessions with none of the three outcomes."""
        return self.sessions - self.self_service - self.drop_off - self.agent

    @property
    def containment_rate(self) -> float | None:
        """Self-service share of the sessions, None without sessions."""
        return ratio(self.self_service, self.sessions)

    @property
    def drop_off_rate(self) -> float | None:
        """Drop-off share of the sessions, None without sessions."""
        return ratio(self.drop_off, self.sessions)

    @property
    def agent_transfer_rate(self) -> float | None:
        """Agent-transfer share of the sessions, None without sessions."""
        return ratio(self.agent, self.sessions)


# What `sum_by` groups: any rows with outcome counts.
Row = TypeVar("Row", DailyCounts, SliceCounts, TagCounts)
# What `sum_by` groups them by: a day, a channel, a bot.
Key = TypeVar("Key", bound=Hashable)


def ratio(part: int, whole: int) -> float | None:
    """Divide, leaving out what has no sessions.

    Args:
        part: The count of one outcome.
        whole: The sessions it is a share of.

    Returns:
        part / whole, or None when whole is zero.
    """
    return part / whole if whole else None


def total(rows: Iterable[Outcomes]) -> Totals:
    """Sum the counts of `rows`.

    Args:
        rows: Daily, slice or tag counts (or totals) to add up.

    Returns:
        The summed counts; their rates are computed from the sums.
    """
    result = Totals()
    for row in rows:
        result = result + row
    return result


def sum_by(rows: Iterable[Row], key: Callable[[Row], Key]) -> dict[Key, Totals]:
    """Sum counts per key, e.g. per day or per channel.

    Args:
        rows: Counts of any bots.
        key: What to group by, from a row.

    Returns:
        The summed counts of each key present in `rows`, in the order keys first appear.
    """
    sums: dict[Key, Totals] = defaultdict(Totals)
    for row in rows:
        sums[key(row)] = sums[key(row)] + row
    return dict(sums)


def by_sessions(sums: dict[Key, Totals]) -> list[tuple[Key, Totals]]:
    """The sums, most sessions first (ties in key order).

    Args:
        sums: Summed counts per key (keys of one type, sortable).

    Returns:
        (key, totals) pairs, most sessions first.
    """
    return sorted(sums.items(), key=lambda item: (-item[1].sessions, str(item[0])))
