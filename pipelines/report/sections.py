"""The report's breakdown sections: weeks and months, bots, channels, languages, tags, behaviour.

Each returns one `<section>` (or "" when it has nothing to show). Totals over the period
count its complete days only (`Period.in_totals`); `totals_note` says which days those are.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from datetime import date

from kore_sessions.report.counts import SliceCounts, Totals, by_sessions, sum_by, total
from kore_sessions.report.figures import ALL_BOTS
from kore_sessions.report.freshness import Freshness, Period, period_end
from kore_sessions.report.leaving import MESSAGES_SHOWN
from kore_sessions.report.names import channel_label, language_label
from kore_sessions.report.privacy import TagSlice, select_tags
from kore_sessions.report.report_data import BotSpan, ReportData
from kore_sessions.report.tables import (
    GroupRow,
    TableRow,
    behaviour_table,
    leaving_table,
    outcome_table,
    percent,
)

# How a day is written in headings and notes.
DAY_FORMAT = "%a %Y-%m-%d"
# How a tag value without a value reads.
NO_TAG_VALUE = "(no value)"


def day_text(day: date) -> str:
    """A day as `Tue 2026-12-01`."""
    return day.strftime(DAY_FORMAT)


def plural(count: int, word: str) -> str:
    """`1 day`, `2 days`: a count with its noun."""
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def section(element_id: str, title: str, note: str, content: str) -> str:
    """A `<section>` with a heading, a note under it (both plain text) and HTML content."""
    heading = f'<h2>{html.escape(title)}</h2><p class="note">{html.escape(note)}</p>'
    return f'<section id="{element_id}">{heading}\n{content}\n</section>'


def totals_note(period: Period, freshness: Freshness) -> str:
    """Which days the period totals count, and what happens to the partial day."""
    first = day_text(period.first_day)
    if period.totals_partial:
        day = period.totals_last
        as_of = freshness.as_of_on(day)
        return f"Only {day_text(day)} so far, a partial day (as of {as_of}): numbers will change."
    span = f"{first} to {day_text(period.totals_last)} ({plural(period.totals_days, 'day')})"
    if period.partial_day is None:
        return f"{span}, all bots."
    return f"Complete days {span}, all bots; the partial day {day_text(period.partial_day)} is left out."


def periods_section(data: ReportData, grain: str) -> str:
    """Weeks or months (`grain`), newest first, the one not over yet marked "to date"."""
    rows = data.weekly if grain == "week" else data.monthly
    if not rows:
        return ""
    per_start = sum_by(rows, lambda row: row.day)
    table_rows = [
        _period_row(start, per_start[start], grain, data.freshness, data.first_data_day)
        for start in sorted(per_start, reverse=True)
    ]
    title, heading = ("Weeks", "Week") if grain == "week" else ("Months", "Month")
    note = f"All bots, {plural(len(table_rows), grain)} with data up to the latest"
    if grain == "week":
        note += "; weeks start on Monday"
    note += f", days in {data.reporting_time_zone}. Counted from the sessions, not averaged from days."
    return section(f"{grain}s", title, note, outcome_table(f"{grain}s", heading, table_rows))


def _period_row(
    start: date, totals: Totals, grain: str, freshness: Freshness, first: date | None
) -> TableRow:
    """A week's or month's row, with a badge when it is not over, a line when the data starts in it."""
    label = f"Week of {day_text(start)}" if grain == "week" else start.strftime("%B %Y")
    end = period_end(start, grain)
    detail = f"data from {day_text(first)}" if first is not None and start < first < end else ""
    if not freshness.ends_later(end):
        return TableRow(label, totals, detail=detail)
    note = f"to date, as of {freshness.stamp(freshness.as_of)}"
    return TableRow(label, totals, note=note, css="partial", detail=detail)


def bots_section(data: ReportData, period: Period) -> str:
    """Each bot side by side over the period totals' days, with the span of its sessions."""
    rows = [row for row in data.daily if period.in_totals(row.day)]
    per_bot = by_sessions(sum_by(rows, lambda row: row.bot_id))
    everything = total(totals for _, totals in per_bot)
    spans = {bot.bot_id: bot for bot in data.bots}
    table_rows = []
    for bot, totals in per_bot:
        share = percent(totals.sessions / everything.sessions if everything.sessions else None)
        table_rows.append(
            TableRow(bot, totals, extra=(share,), detail=_loaded(data.freshness, spans.get(bot)))
        )
    footer = TableRow(ALL_BOTS, everything, extra=("100.0%",), css="total") if len(per_bot) > 1 else None
    headings = ("Share of sessions",)
    table = outcome_table("bots", "Bot", table_rows, headings, footer)
    note = f"{totals_note(period, data.freshness)} Under each bot: the days of its first and newest session."
    return section("bots", "By bot", note, table)


def _loaded(freshness: Freshness, span: BotSpan | None) -> str:
    """The days of a bot's first and newest loaded session, in the reporting time zone."""
    if span is None or span.first_session_at is None or span.last_session_at is None:
        return ""
    first, last = freshness.local(span.first_session_at), freshness.local(span.last_session_at)
    return f"sessions loaded {first:%Y-%m-%d} to {last:%Y-%m-%d}"


def slices_section(
    element_id: str,
    title: str,
    rows: Sequence[SliceCounts],
    period: Period,
    sessions: int,
    label: Callable[[str], str],
    note: str,
) -> str:
    """A channel or language split over the period totals' days, most sessions first.

    `sessions` are the period totals' sessions, which each slice's share is of.
    """
    counted = [row for row in rows if period.in_totals(row.day)]
    if not counted or not sessions:
        return ""
    per_key = by_sessions(sum_by(counted, lambda row: row.key))
    table_rows = [
        TableRow(label(key), totals, extra=(percent(totals.sessions / sessions),)) for key, totals in per_key
    ]
    heading = title.removeprefix("By ").capitalize()
    return section(
        element_id, title, note, outcome_table(element_id, heading, table_rows, ("Share of sessions",))
    )


def channels_section(data: ReportData, period: Period) -> str:
    """The split by channel, with names a person reads."""
    note = f"{totals_note(period, data.freshness)} Channel names with the API's code in brackets."
    sessions = _period_sessions(data, period)
    return slices_section("channels", "By channel", data.channels, period, sessions, channel_label, note)


def languages_section(data: ReportData, period: Period) -> str:
    """The split by language of the conversation."""
    note = (
        f"{totals_note(period, data.freshness)} A session that used several languages counts under "
        "each, so the shares can add up to more than 100%."
    )
    sessions = _period_sessions(data, period)
    return slices_section("languages", "By language", data.languages, period, sessions, language_label, note)


def tags_section(data: ReportData, period: Period) -> str:
    """Containment per value of the tags the tag mart slices, personal values never shown."""
    selection = select_tags(data.tags)
    note = (
        f"{totals_note(period, data.freshness)} Sessions carrying each value of the tags that "
        "fct_containment_by_tag slices. Values that look like phone numbers, e-mail or IP "
        "addresses or ids are never shown, nor the values of tags named like personal data."
    )
    if selection.left_out:
        note += f" {plural(selection.left_out, 'more tag')} with fewer sessions not listed."
    rows: list[TableRow | GroupRow] = []
    for tag in selection.listed:
        rows.append(GroupRow(f"{tag.name} ({tag.scope} tag)", _tag_note(tag)))
        rows.extend(TableRow(value.value or NO_TAG_VALUE, total([value])) for value in tag.shown)
    content = outcome_table("tags", "Tag value", rows) if rows else ""
    if selection.withheld:
        items = "; ".join(
            f"{tag.name} ({tag.scope} tag, {plural(tag.distinct_values, 'value')}: {tag.withheld})"
            for tag in selection.withheld
        )
        content += f'<p class="withheld">Values not shown: {html.escape(items)}.</p>'
    if not content:
        content = '<p class="empty-note">No tagged sessions in these days.</p>'
    return section("tags", "By tag", note, content)


def _tag_note(tag: TagSlice) -> str:
    """What a tag's heading says about its values."""
    parts = [plural(tag.distinct_values, "value")]
    if tag.personal:
        parts.append(f"{tag.personal} not shown: they look like phone numbers, addresses or ids")
    if tag.more:
        parts.append(f"{tag.more} more with fewer sessions not shown")
    return "; ".join(parts)


def behaviour_section(data: ReportData, period: Period) -> str:
    """Duration percentiles, messages and tasks per session, per bot and for all bots."""
    if not data.behaviour:
        return ""
    note = (
        f"{totals_note(period, data.freshness)} Every session whose status is counted, interactive "
        "or not, developers' included (as fct_session_behaviour_daily). Durations are percentiles "
        "of the sessions of all these days (p50: half the sessions were shorter)."
    )
    return section("behaviour", "Session behaviour", note, behaviour_table(data.behaviour, ALL_BOTS))


def leaving_section(data: ReportData, period: Period) -> str:
    """The last bot messages of the drop-off and agent sessions, per bot: where users leave."""
    leaving = data.leaving
    note = (
        f"{totals_note(period, data.freshness)} The last thing the bot said in the counted sessions "
        f"that ended in a drop-off or an agent transfer, the {MESSAGES_SHOWN} most frequent per bot "
        "and outcome (fct_dropoff_points): numbers, e-mail addresses and ids masked, the user's own "
        "words never shown. Share: of the bot's sessions with that outcome in these days."
    )
    if not leaving.built:
        line = "Not built yet: run `kore-sessions models` to build fct_dropoff_points."
    elif not leaving.messages_loaded:
        line = "No messages loaded: enable the messages resource to see where users leave."
    elif not leaving.points:
        line = "No drop-off or agent transfer in these days."
    else:
        return section("leaving", "Where users leave", note, leaving_table(leaving.points))
    return section("leaving", "Where users leave", "", f'<p class="empty-note">{html.escape(line)}</p>')


def _period_sessions(data: ReportData, period: Period) -> int:
    """The sessions of the period totals' days, all bots (each session once)."""
    return sum(row.sessions for row in data.daily if period.in_totals(row.day))
