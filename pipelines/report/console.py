"""What the commands print about the built models: the last days of containment, per bot, and
the bot messages users left on."""

from __future__ import annotations

from datetime import date

import dlt
from kore_sessions.report.leaving import DROPOFF_TABLE, read_leaving
from kore_sessions.report.queries import DAILY_TABLE

# Its columns, in the order the table prints them.
COLUMNS = ("day", "bot_id", "sessions", "containment_rate", "drop_off_rate", "agent_transfer_rate")
# The table's column titles, one per column above.
TITLES = ("day", "bot", "sessions", "contained", "drop-off", "agent")
# What the table says when the mart has no row yet.
NO_ROWS = "(no counted sessions yet)"
# What the drop-off list says when no session's messages are loaded.
NO_MESSAGES = "(no messages loaded: add messages to the resources option)"
# Last bot messages listed per bot.
DROPOFF_SHOWN = 3


def recent_containment_lines(pipeline: dlt.Pipeline, days: int = 7) -> list[str]:
    """A compact table of the last `days` days of fct_containment_daily, per bot.

    Args:
        pipeline: A pipeline whose dataset holds the built models.
        days: How many days to show, ending with the latest day of any bot.

    Returns:
        The table's lines, a title line first; one line when nothing is counted yet.
    """
    rows = _recent_rows(pipeline, days)
    if not rows:
        return [NO_ROWS]
    width = max(len(row[1]) for row in rows)
    lines = ["{:<10}  {:<{w}}  {:>8}  {:>9}  {:>8}  {:>6}".format(*TITLES, w=width)]
    for day, bot, sessions, contained, drop_off, agent in rows:
        lines.append(
            f"{day.isoformat():<10}  {bot:<{width}}  {sessions:>8}  "
            f"{contained:>9.1%}  {drop_off:>8.1%}  {agent:>6.1%}"
        )
    return lines


def _recent_rows(pipeline: dlt.Pipeline, days: int) -> list[tuple]:
    """Rows of the daily mart from the last `days` days up to its latest day, by bot and day."""
    with pipeline.sql_client() as client:
        daily = client.make_qualified_table_name(DAILY_TABLE)
        latest: date | None = client.execute_sql(f"SELECT MAX(day) FROM {daily}")[0][0]
        if latest is None:
            return []
        since = latest.toordinal() - days + 1
        rows = client.execute_sql(f"SELECT {', '.join(COLUMNS)} FROM {daily} ORDER BY bot_id, day")
    return [row for row in rows if row[0].toordinal() >= since]


def top_dropoff_lines(pipeline: dlt.Pipeline, days: int = 7, outcome: str = "drop_off") -> list[str]:
    """Per bot, the last bot messages most drop-off sessions (or `outcome`'s) of the last `days`
    days ended on, with their sessions and share (from fct_dropoff_points).

    Returns:
        A line per bot and message; one line when no session's messages are loaded.
    """
    with pipeline.sql_client() as client:
        table = client.make_qualified_table_name(DROPOFF_TABLE)
        latest: date | None = client.execute_sql(f"SELECT MAX(day) FROM {table}")[0][0]
        if latest is None:
            return [NO_MESSAGES]
        leaving = read_leaving(client, date.fromordinal(latest.toordinal() - days + 1), latest)
    if not leaving.messages_loaded:
        return [NO_MESSAGES]
    lines: list[str] = []
    for bot in sorted({point.bot_id for point in leaving.points}):
        points = [p for p in leaving.points if p.bot_id == bot and p.outcome == outcome][:DROPOFF_SHOWN]
        for rank, point in enumerate(points, 1):
            share = f"{point.share:>6.1%}" if point.share is not None else "     -"
            message = point.shown_message[:70]
            lines.append(f"{bot}  {rank}. {share} of {point.outcome_sessions:>4}  {message!r}")
    return lines or ["(no drop-off session in these days)"]
