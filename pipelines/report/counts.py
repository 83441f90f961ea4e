"""Outcome counts of the containment marts, with the marts' rates or the rates of their sums.

A row that is one mart row shows the rates the mart computed (`Rates`, read with its counts).
A rate over several bots, channels, days or tag values, which no mart holds, is the summed
count divided by the summed sessions (the counts add up, the rates do not), never an average
of rates.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol, TypeVar


@dataclass(frozen=True)
class Rates:
    """The three rates of one containment mart row, as the mart computed them."""

    containment_rate: float | None
    drop_off_rate: float | None
    agent_transfer_rate: float | None


class Outcomes(Protocol):
    """Anything carrying the four outcome counts, and the mart's rates when it is one mart row."""

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

    @property
    def rates(self) -> Rates | None:
        """The mart's rates of these counts, None when they are a sum of several rows."""


@dataclass(frozen=True)
class DailyCounts:
    """Session outcomes of one bot on one day (or in the week or month starting on `day`).

    Attributes:
        rates: The mart row's rates (None when made without them: computed from the counts).
    """

    day: date
    bot_id: str
    sessions: int
    self_service: int
    drop_off: int
    agent: int
    rates: Rates | None = None


@dataclass(frozen=True)
class SliceCounts(DailyCounts):
    """Session outcomes of one bot on one day in one slice: a channel or a language code.

    Attributes:
        key: The slice (given by name: `key=...`).
    """

    key: str = field(default="", kw_only=True)


@dataclass(frozen=True)
class TagCounts:
    """Session outcomes of the sessions carrying one tag value, summed over bots and days.

    Attributes:
        scope: `session` or `user`.
        name: The tag's name.
        value: The tag's value as text (None when the tag had none).
        distinct_values: How many values the tag had in the same days, this one included.
        rates: The mart's rates when the value is one mart row (one bot, one day), else None.
    """

    scope: str
    name: str
    value: str | None
    distinct_values: int
    sessions: int
    self_service: int
    drop_off: int
    agent: int
    rates: Rates | None = None


def mart_or_sum(holder: str, name: str, count: str, doc: str) -> property:
    """A share of the sessions: the mart's own value when the row is one mart row (its
    `holder` attribute holds the mart's values), else the summed `count` over the summed
    sessions (None without sessions)."""

    def read(row: Any) -> float | None:
        mart = getattr(row, holder)
        return getattr(mart, name) if mart is not None else ratio(getattr(row, count), row.sessions)

    return property(read, doc=f"{doc} The mart's for one mart row; None without sessions.")


@dataclass(frozen=True)
class Totals:
    """Outcome counts: one mart row's, with its rates, or a sum of rows, with the sums' rates.

    Attributes:
        rates: The mart's rates when the counts are one mart row; None for a sum of several
            rows (or nothing), whose rates are the summed counts divided by the summed sessions.
    """

    sessions: int = 0
    self_service: int = 0
    drop_off: int = 0
    agent: int = 0
    rates: Rates | None = None

    def __add__(self, other: Outcomes) -> Totals:
        """The sum of two sets of counts (adding to nothing keeps the other's mart rates)."""
        if _empty(self):
            return Totals(other.sessions, other.self_service, other.drop_off, other.agent, other.rates)
        if _empty(other):
            return self
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

    containment_rate = mart_or_sum("rates", "containment_rate", "self_service", "Self-service share.")
    drop_off_rate = mart_or_sum("rates", "drop_off_rate", "drop_off", "Drop-off share.")
    agent_transfer_rate = mart_or_sum("rates", "agent_transfer_rate", "agent", "Agent-transfer share.")

    @property
    def other_share(self) -> float | None:
        """Share of the sessions with none of the three outcomes, None without sessions."""
        return ratio(self.other, self.sessions)


def _empty(counts: Outcomes) -> bool:
    """Whether some counts are nothing at all: no sessions, no outcome, no mart rates."""
    return (
        counts.rates is None
        and counts.sessions == 0
        and counts.self_service == counts.drop_off == counts.agent == 0
    )


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
        The summed counts, their rates computed from the sums; one mart row alone keeps the
        mart's rates.
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
