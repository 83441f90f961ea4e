"""What the report shows, as read from the marts: `ReportData` and its behaviour and bot rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from kore_sessions.report.counts import DailyCounts, SliceCounts, TagCounts, mart_or_sum
from kore_sessions.report.freshness import Freshness, Period
from kore_sessions.report.leaving import WhereUsersLeave
from kore_sessions.warehouse.model_settings import ModelSettings

# What the marts count unless kore_model_settings says otherwise (the models' defaults).
DEFAULT_SCOPE = ModelSettings().describe()


@dataclass(frozen=True)
class Shares:
    """The interactive and developer shares of one `fct_session_behaviour_daily` row."""

    interactive_share: float | None
    developer_share: float | None


@dataclass(frozen=True)
class Behaviour:
    """How the sessions of one bot (or all bots) behaved over the period totals' days.

    Read from `fct_session_behaviour_daily` (the sessions whose status is in scope, whatever
    their interactive or developer flags); durations are continuous percentiles, in seconds.
    The counts are the mart's, summed over the days (and bots); a row that is one mart row
    (one bot, one day) shows the mart's shares, means and percentiles.

    Attributes:
        bot_id: The bot, or None for all bots together.
        sessions: Sessions whose status is in scope.
        interactive: Those in which the user wrote something.
        developer: Those the bot's developers started.
        messages_per_session: Mean messages exchanged per session.
        tasks_per_session: Mean tasks executed per session.
        duration_p50: Median duration.
        duration_p90: 90th percentile of the duration.
        duration_p95: 95th percentile of the duration.
        shares: The mart's shares when the row is one mart row; None: computed from the counts.
    """

    bot_id: str | None
    sessions: int
    interactive: int
    developer: int
    messages_per_session: float | None
    tasks_per_session: float | None
    duration_p50: float | None
    duration_p90: float | None
    duration_p95: float | None
    shares: Shares | None = None

    interactive_share = mart_or_sum("shares", "interactive_share", "interactive", "Interactive share.")
    developer_share = mart_or_sum("shares", "developer_share", "developer", "Share of developers' sessions.")


@dataclass(frozen=True)
class BotSpan:
    """When a bot's loaded sessions start and end (from `dim_bots`), UTC."""

    bot_id: str
    first_session_at: datetime | None
    last_session_at: datetime | None


@dataclass(frozen=True)
class ReportData:
    """Everything the report shows.

    Attributes:
        dataset: The dataset holding the marts.
        reporting_time_zone: The zone of the marts' days.
        generated_at: When the report was made (UTC).
        daily: Per day and bot, the period's days (`fct_containment_daily`).
        channels: Per day, bot and channel, the period's days.
        scope: What the marts count, in words.
        languages: Per day, bot and language, the period's days.
        weekly: Per week (`day` is the Monday) and bot, the last weeks.
        monthly: Per month (`day` is the 1st) and bot, the last months.
        tags: Per tag value, summed over the period totals' days and bots.
        behaviour: Per bot and for all bots (`bot_id` None), the period totals' days.
        bots: Every bot with loaded sessions.
        last_load_at: The newest successful load (UTC), None when none is recorded.
        newest_session_at: The newest session start (UTC), None without sessions.
        first_day: The period's first day; None: the first day of `daily`.
        first_data_day: The first day of any data in the marts, None when unknown.
        leaving: The last bot messages of drop-off and agent sessions, the period totals' days.
    """

    dataset: str
    reporting_time_zone: str
    generated_at: datetime
    daily: list[DailyCounts]
    channels: list[SliceCounts]
    scope: str = DEFAULT_SCOPE
    languages: list[SliceCounts] = field(default_factory=list)
    weekly: list[DailyCounts] = field(default_factory=list)
    monthly: list[DailyCounts] = field(default_factory=list)
    tags: list[TagCounts] = field(default_factory=list)
    behaviour: list[Behaviour] = field(default_factory=list)
    bots: list[BotSpan] = field(default_factory=list)
    last_load_at: datetime | None = None
    newest_session_at: datetime | None = None
    first_day: date | None = None
    first_data_day: date | None = None
    leaving: WhereUsersLeave = field(default_factory=WhereUsersLeave)

    @property
    def freshness(self) -> Freshness:
        """How recent the data is, in the reporting time zone."""
        return Freshness(self.reporting_time_zone, self.last_load_at, self.newest_session_at)

    @property
    def period(self) -> Period | None:
        """The days of `daily`, with the partial one; None without daily rows."""
        if not self.daily:
            return None
        last = max(row.day for row in self.daily)
        first = self.first_day or min(row.day for row in self.daily)
        return Period.of(min(first, last), last, self.freshness)

    @property
    def bot_ids(self) -> list[str]:
        """The bots of the period, sorted."""
        return sorted({row.bot_id for row in self.daily})
