"""Where users leave: the last bot messages of drop-off and agent sessions, from `fct_dropoff_points`.

The mart has one row per day, bot, outcome and last bot message (normalised: numbers, e-mail
addresses and ids masked). The report shows, per bot and outcome, the messages most sessions
ended on over the period totals' days:

- Sessions are the mart's counts, summed over the days (they add up).
- A share is of the bot's sessions of that outcome over the days: the summed sessions of the
  message over the summed sessions of the outcome, as the mart's own share is its counts'. When
  the days hold one mart day of that bot and outcome, each message is one mart row, and its
  share is the mart's.

Only the bot's words are in the mart (the user's never are); a message that still looks
personal by the rule of `kore_sessions.warehouse.personal_data` is not printed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from kore_sessions.report.counts import ratio
from kore_sessions.warehouse.personal_data import looks_personal_value

# The mart of one row per day, bot, outcome and last bot message.
DROPOFF_TABLE = "fct_dropoff_points"
# The outcomes the mart holds, in the order the report shows them, with their names.
OUTCOME_NAMES = {"drop_off": "drop-off", "agent": "agent transfer"}
# Messages listed per bot and outcome, most sessions first.
MESSAGES_SHOWN = 5
# How a message that looks personal is shown instead.
WITHHELD_MESSAGE = "(not shown: it looks like personal data)"
# Per bot, outcome and last bot message over the days: summed sessions, the rank among the
# outcome's messages; with the outcome's summed sessions and how many mart days it spans, and
# the mart's share (MAX of one value, read only when the outcome spans one day). Only the top
# messages come back.
LEAVING_SQL = """
WITH per_message AS (
    SELECT bot_id, outcome, last_bot_message, SUM(sessions) AS sessions, MAX(share) AS share
    FROM {table} WHERE day >= %s AND day <= %s
    GROUP BY bot_id, outcome, last_bot_message
),
per_outcome AS (
    SELECT bot_id, outcome, SUM(sessions) AS sessions, COUNT(DISTINCT day) AS days
    FROM {table} WHERE day >= %s AND day <= %s
    GROUP BY bot_id, outcome
),
ranked AS (
    SELECT per_message.*,
        ROW_NUMBER() OVER (
            PARTITION BY bot_id, outcome ORDER BY sessions DESC, last_bot_message
        ) AS message_rank
    FROM per_message
)
SELECT ranked.bot_id, ranked.outcome, ranked.last_bot_message, ranked.sessions, ranked.share,
    per_outcome.sessions AS outcome_sessions, per_outcome.days
FROM ranked
INNER JOIN per_outcome ON per_outcome.bot_id = ranked.bot_id AND per_outcome.outcome = ranked.outcome
WHERE ranked.message_rank <= %s
ORDER BY ranked.bot_id, ranked.outcome, ranked.message_rank
"""
# Whether any session of the days has its messages loaded.
LOADED_SQL = "SELECT COUNT(*) FROM {table} WHERE day >= %s AND day <= %s AND messages_loaded"


@dataclass(frozen=True)
class LeavingPoint:
    """One last bot message of one bot and outcome, over the period totals' days.

    Attributes:
        bot_id: The bot.
        outcome: `drop_off` or `agent`.
        message: The last bot message, normalised by the mart (or one of its fixed labels).
        sessions: Sessions that ended on it, summed over the days.
        outcome_sessions: The bot's sessions of that outcome over the days, every message's.
        mart_share: The mart's share when the message is one mart row (one day), else None.
    """

    bot_id: str
    outcome: str
    message: str
    sessions: int
    outcome_sessions: int
    mart_share: float | None = None

    @property
    def share(self) -> float | None:
        """Of the bot's sessions of that outcome: the mart's for one mart row, else the sums'."""
        if self.mart_share is not None:
            return self.mart_share
        return ratio(self.sessions, self.outcome_sessions)

    @property
    def shown_message(self) -> str:
        """The message as the page may print it: never one that looks personal."""
        return WITHHELD_MESSAGE if looks_personal_value(self.message) else self.message


@dataclass(frozen=True)
class WhereUsersLeave:
    """What the "Where users leave" section shows.

    Attributes:
        built: Whether `fct_dropoff_points` is in the dataset (models built by an older version
            lack it).
        messages_loaded: Whether any session of the days has its messages loaded.
        points: The top messages per bot and outcome, bots sorted, drop-off first.
    """

    built: bool = False
    messages_loaded: bool = False
    points: list[LeavingPoint] = field(default_factory=list)


def read_leaving(client: Any, first: date, last: date) -> WhereUsersLeave:
    """The last bot messages of the days `first` to `last` (both included), per bot and outcome.

    Args:
        client: An open dlt SQL client of the dataset holding `fct_dropoff_points`.
        first: The first day.
        last: The last day.

    Returns:
        The top messages of each bot and outcome, and whether any message was loaded.
    """
    table = client.make_qualified_table_name(DROPOFF_TABLE)
    loaded = client.execute_sql(LOADED_SQL.format(table=table), first, last) or [(0,)]
    rows = client.execute_sql(LEAVING_SQL.format(table=table), first, last, first, last, MESSAGES_SHOWN)
    points = [_point(row) for row in rows or []]
    order = list(OUTCOME_NAMES)
    points.sort(key=lambda point: (point.bot_id, order.index(point.outcome) if point.outcome in order else 9))
    return WhereUsersLeave(built=True, messages_loaded=bool(loaded[0][0]), points=points)


def _point(row: Sequence[Any]) -> LeavingPoint:
    """A row of `LEAVING_SQL`."""
    bot, outcome, message, sessions, share, outcome_sessions, days = row
    mart_share = None if share is None or int(days) != 1 else float(share)
    return LeavingPoint(
        str(bot), str(outcome), str(message), int(sessions or 0), int(outcome_sessions or 0), mart_share
    )
