"""When the data is from: the "data as of" instant, the partial current day and the periods.

The data is *as of* the newest successful load (`_dlt_loads.inserted_at`, status 0); without
any recorded load, as of its newest session start (the data reaches at least that far). The
*current day* is the day, in the reporting time zone, that contains that instant. A day, week
or month is *partial* when the data is as of a time before it ends: only the latest day of the
report can be, and the week and month holding it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# The zone used when the marts do not say (an empty warehouse): the models' default.
DEFAULT_ZONE = "UTC"
# Months in a year, to step months back and forth.
MONTHS_PER_YEAR = 12


def as_utc(value: datetime | None) -> datetime | None:
    """A driver's timestamp as an aware UTC datetime (a naive one is taken as UTC).

    Args:
        value: A timestamp from any SQL client, or None.

    Returns:
        The same instant in UTC, or None.
    """
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


@dataclass(frozen=True)
class Freshness:
    """How recent the data is, in the reporting time zone.

    Attributes:
        time_zone: The reporting time zone (IANA name) of the marts.
        last_load_at: The newest successful load, UTC, or None when none is recorded.
        newest_session_at: The newest session start the warehouse holds, UTC, or None.
    """

    time_zone: str = DEFAULT_ZONE
    last_load_at: datetime | None = None
    newest_session_at: datetime | None = None

    @property
    def zone(self) -> ZoneInfo:
        """The reporting time zone."""
        return ZoneInfo(self.time_zone or DEFAULT_ZONE)

    @property
    def as_of(self) -> datetime | None:
        """The instant the data is as of: the newest load, else the newest session."""
        return self.last_load_at or self.newest_session_at

    @property
    def current_day(self) -> date | None:
        """The day (reporting time zone) that contains the as-of instant."""
        return None if self.as_of is None else self.local(self.as_of).date()

    def local(self, instant: datetime) -> datetime:
        """An instant in the reporting time zone."""
        return instant.astimezone(self.zone)

    def stamp(self, instant: datetime | None) -> str:
        """An instant as `YYYY-MM-DD HH:MM` in the reporting time zone, or `unknown`."""
        return "unknown" if instant is None else self.local(instant).strftime("%Y-%m-%d %H:%M")

    def as_of_on(self, day: date) -> str:
        """The as-of instant seen from `day`: `HH:MM` on that day, else the full stamp."""
        if self.as_of is None:
            return "unknown"
        local = self.local(self.as_of)
        return local.strftime("%H:%M") if local.date() == day else self.stamp(self.as_of)

    def ends_later(self, end: date) -> bool:
        """Whether the data is as of a time before `end` begins (False when unknown).

        Args:
            end: The first day after a day, week or month.

        Returns:
            True when that day, week or month was not over when the data was taken.
        """
        if self.as_of is None:
            return False
        return self.as_of < datetime.combine(end, time(), tzinfo=self.zone)


@dataclass(frozen=True)
class Period:
    """The days a report covers, and which of them period totals count.

    Attributes:
        first_day: The first day of the period.
        last_day: The latest day with data.
        partial_day: `last_day` when the data is as of a time before it ends, else None.
    """

    first_day: date
    last_day: date
    partial_day: date | None = None

    @classmethod
    def of(cls, first_day: date, last_day: date, freshness: Freshness) -> Period:
        """The period from `first_day` to `last_day`, its last day partial if not over yet."""
        partial = freshness.ends_later(last_day + timedelta(days=1))
        return cls(first_day, last_day, last_day if partial else None)

    @property
    def days(self) -> int:
        """Calendar days from the first to the last day."""
        return (self.last_day - self.first_day).days + 1

    @property
    def totals_last(self) -> date:
        """The last day period totals count: the last complete day (the partial one if alone)."""
        if self.partial_day is None or self.first_day == self.last_day:
            return self.last_day
        return self.last_day - timedelta(days=1)

    @property
    def totals_partial(self) -> bool:
        """Whether the period totals are of a partial day (no complete day to count)."""
        return self.partial_day is not None and self.totals_last == self.partial_day

    @property
    def totals_days(self) -> int:
        """Days the period totals count."""
        return (self.totals_last - self.first_day).days + 1

    def in_totals(self, day: date) -> bool:
        """Whether the period totals count `day`."""
        return self.first_day <= day <= self.totals_last


def week_start(day: date) -> date:
    """The Monday of a day's week (weeks start on Monday, as in the models)."""
    return day - timedelta(days=day.weekday())


def month_start(day: date) -> date:
    """The first of a day's month."""
    return day.replace(day=1)


def add_months(first: date, months: int) -> date:
    """The first of the month `months` after (or before, when negative) a month's first."""
    index = first.year * MONTHS_PER_YEAR + first.month - 1 + months
    return date(index // MONTHS_PER_YEAR, index % MONTHS_PER_YEAR + 1, 1)


def period_end(start: date, grain: str) -> date:
    """The first day after the week or month starting on `start`."""
    if grain == "week":
        return start + timedelta(days=7)
    return add_months(start, 1)
