"""Reading the session behaviour of the report's days from `fct_session_behaviour_daily`.

The mart has one row a day and bot. The report shows one row a bot, and one for all bots, over
the period totals' days, so each of its rows is one or several mart rows:

- Sessions, interactive and developer sessions are the mart's counts, summed (they add up).
- A row that is one mart row (one bot, one day) shows that row's shares, means and percentiles.
- A row of several mart rows shows the summed counts' shares (summed interactive / summed
  sessions, as one mart row's share is its counts'). Its means and duration percentiles cannot
  be had from the mart: a mean of days is not the days' mean, a percentile of days not the
  days' percentile, the mart holds no total of messages or tasks, and the report's days are
  any `--days`, which no daily mart can hold the percentiles of. For those rows only, the five
  measures are computed over the same sessions of `fct_sessions` (`DISTRIBUTION_SQL`), with
  the mart's definitions; the one place the report still aggregates sessions itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from kore_sessions.report.report_data import Behaviour, Shares

# The mart of one row per day and bot: the behaviour view reads it.
BEHAVIOUR_TABLE = "fct_session_behaviour_daily"
# The mart of one row per session: the means and percentiles over several days or bots.
SESSIONS_MART = "fct_sessions"
# The mart's rows of the days per bot and for all bots (GROUPING = 1): how many, their summed
# counts, and their measures, which are the row's own when the group is one row (MAX of one
# value); with more rows they are not read.
MART_SQL = """
SELECT GROUPING(bot_id) AS all_bots, bot_id, COUNT(*) AS mart_rows, SUM(sessions) AS sessions,
    SUM(interactive_sessions) AS interactive, SUM(developer_sessions) AS developer,
    MAX(interactive_share) AS interactive_share, MAX(developer_share) AS developer_share,
    MAX(messages_per_session) AS messages_per_session, MAX(tasks_per_session) AS tasks_per_session,
    MAX(duration_p50_seconds) AS p50, MAX(duration_p90_seconds) AS p90, MAX(duration_p95_seconds) AS p95
FROM {table} WHERE day >= %s AND day <= %s
GROUP BY ROLLUP (bot_id) ORDER BY all_bots, bot_id
"""
# What no mart has: the means and percentiles of the sessions of several days or bots, per bot
# and for all bots, over the sessions the mart counts (status in scope), with its definitions.
DISTRIBUTION_SQL = """
SELECT GROUPING(bot_id) AS all_bots, bot_id,
    AVG(CAST(message_count AS DOUBLE PRECISION)) AS messages_per_session,
    AVG(CAST(task_count AS DOUBLE PRECISION)) AS tasks_per_session,
    PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY duration_seconds) AS p50,
    PERCENTILE_CONT(0.9) WITHIN GROUP (ORDER BY duration_seconds) AS p90,
    PERCENTILE_CONT(0.95) WITHIN GROUP (ORDER BY duration_seconds) AS p95
FROM {table} WHERE is_status_in_scope AND day >= %s AND day <= %s
GROUP BY ROLLUP (bot_id) ORDER BY all_bots, bot_id
"""
# The measures of a behaviour row, in Behaviour's order: two means, three percentiles.
Measures = tuple[float | None, float | None, float | None, float | None, float | None]


@dataclass(frozen=True)
class MartGroup:
    """The mart's rows of one bot (or all bots, `bot_id` None) over the days, summed.

    Attributes:
        bot_id: The bot, or None for all bots.
        mart_rows: How many mart rows (days and bots) the group holds.
        counts: Sessions, interactive and developer sessions, summed.
        shares: The interactive and developer shares of the one row (not read for several).
        measures: The means and percentiles of the one row (not read for several).
    """

    bot_id: str | None
    mart_rows: int
    counts: tuple[int, int, int]
    shares: Shares
    measures: Measures

    def behaviour(self, measures: Measures | None) -> Behaviour:
        """The report's row of this group.

        Args:
            measures: The means and percentiles of the group's sessions (`DISTRIBUTION_SQL`),
                used when the group holds several mart rows; None when not read.

        Returns:
            The summed counts, with the mart's own shares, means and percentiles for one row,
            else the summed counts' shares and `measures`.
        """
        if self.mart_rows == 1:
            return Behaviour(self.bot_id, *self.counts, *self.measures, shares=self.shares)
        return Behaviour(self.bot_id, *self.counts, *(measures or (None,) * 5))


def read_behaviour(client: Any, first: date, last: date) -> list[Behaviour]:
    """Session behaviour per bot and for all bots (bot_id None) over the days `first` to `last`.

    Args:
        client: An open dlt SQL client of the dataset holding the marts.
        first: The first day.
        last: The last day (both included).

    Returns:
        One row per bot with sessions, bots sorted, then the all-bots row.
    """
    table = client.make_qualified_table_name(BEHAVIOUR_TABLE)
    groups = [_group(row) for row in client.execute_sql(MART_SQL.format(table=table), first, last) or []]
    groups = [group for group in groups if group.counts[0]]
    distribution: dict[str | None, Measures] = {}
    if any(group.mart_rows > 1 for group in groups):
        distribution = _distribution(client, first, last)
    return [group.behaviour(distribution.get(group.bot_id)) for group in groups]


def _group(row: Sequence[Any]) -> MartGroup:
    """A row of `MART_SQL`."""
    all_bots, bot, mart_rows, sessions, interactive, developer, *values = row
    interactive_share, developer_share = _floats(values[:2])
    counts = (int(sessions or 0), int(interactive or 0), int(developer or 0))
    shares = Shares(interactive_share, developer_share)
    return MartGroup(None if all_bots else str(bot), int(mart_rows), counts, shares, _measures(values[2:]))


def _distribution(client: Any, first: date, last: date) -> dict[str | None, Measures]:
    """Means and percentiles of the sessions of the days, per bot and for all bots (key None)."""
    table = client.make_qualified_table_name(SESSIONS_MART)
    rows = client.execute_sql(DISTRIBUTION_SQL.format(table=table), first, last) or []
    return {None if all_bots else str(bot): _measures(values) for all_bots, bot, *values in rows}


def _measures(values: Sequence[Any]) -> Measures:
    """Two means and three percentiles of a row, as floats (NULL stays None)."""
    messages, tasks, p50, p90, p95 = _floats(values)
    return messages, tasks, p50, p90, p95


def _floats(values: Sequence[Any]) -> tuple[float | None, ...]:
    """Numbers of a row as floats (NULL stays None)."""
    return tuple(None if value is None else float(value) for value in values)
