"""Outcome counts of the containment marts and the rates computed from their sums.

A rate over several bots, channels or days is always the summed count divided by the summed
sessions, never an average of rates.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import TypeVar


@dataclass(frozen=True)
class DailyCounts:
    """Session outcomes of one bot on one day."""

    day: date
    bot_id: str
    sessions: int
    self_service: int
    drop_off: int
    agent: int


@dataclass(frozen=True)
class ChannelCounts:
    """Session outcomes of one bot on one channel on one day."""

    day: date
    bot_id: str
    channel: str
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

    def __add__(self, other: Totals | DailyCounts | ChannelCounts) -> Totals:
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


# What `sum_by` groups: daily or channel counts.
Row = TypeVar("Row", DailyCounts, ChannelCounts)
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


def total(rows: Iterable[Totals | DailyCounts | ChannelCounts]) -> Totals:
    """Sum the counts of `rows`.

    Args:
        rows: Daily or channel counts (or totals) to add up.

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
        rows: Daily or channel counts of any bots.
        key: What to group by, from a row.

    Returns:
        The summed counts of each key present in `rows`, in the order keys first appear.
    """
    sums: dict[Key, Totals] = defaultdict(Totals)
    for row in rows:
        sums[key(row)] = sums[key(row)] + row
    return sums
