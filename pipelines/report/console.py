"""What the commands print about the built models: the last days of containment, per bot."""

from __future__ import annotations

from datetime import date

import dlt
from kore_sessions.report.queries import DAILY_TABLE

# Its columns, in the order the table prints them.
COLUMNS = ("day", "bot_id", "sessions", "containment_rate", "drop_off_rate", "agent_transfer_rate")
# The table's column titles, one per column above.
TITLES = ("day", "bot", "sessions", "contained", "drop-off", "agent")
# What the table says when the mart has no row yet.
NO_ROWS = "(no counted sessions yet)"


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
