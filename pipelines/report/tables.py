"""The report's HTML tables: counts, rates and a labelled outcome bar a row, readable printed.

Every text put into a table is escaped here; callers pass plain text.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

from kore_sessions.report.counts import Totals
from kore_sessions.report.leaving import OUTCOME_NAMES, LeavingPoint
from kore_sessions.report.report_data import Behaviour

# What a value without sessions shows: an en dash.
NO_VALUE = "\u2013"
# The columns of every outcome table after its first one.
OUTCOME_HEADINGS = (
    "Sessions",
    "Self-service",
    "Drop-off",
    "Agent",
    "Containment",
    "Drop-off rate",
    "Agent-transfer rate",
    "Outcome mix",
)
# The segments of the outcome bar: share attribute of `Totals` (the three rates, then the rest),
# CSS class, name (colours in page.html).
MIX_PARTS = (
    ("containment_rate", "ss", "self-service"),
    ("drop_off_rate", "do", "drop-off"),
    ("agent_transfer_rate", "ag", "agent transfer"),
    ("other_share", "ot", "other"),
)
# A segment narrower than this carries no label: the text would not fit (the columns say it).
MIX_LABEL_MIN = 0.08
# The columns of the behaviour table after its first one.
BEHAVIOUR_HEADINGS = (
    "Sessions",
    "Interactive",
    "Developer",
    "Messages / session",
    "Tasks / session",
    "Duration p50",
    "Duration p90",
    "Duration p95",
)
# The columns of the where-users-leave table.
LEAVING_HEADINGS = ("Last bot message", "Sessions", "Share")
# Seconds in a minute and an hour, to write durations.
MINUTE, HOUR = 60, 3600


@dataclass(frozen=True)
class TableRow:
    """One row of an outcome table.

    Attributes:
        label: The row's heading (plain text).
        totals: Its counts.
        note: A badge after the heading, e.g. `partial, as of 14:05` (plain text).
        extra: Cells after the outcome columns (plain text).
        css: The row's class (`partial`, `total`, ...).
        detail: A small line under the heading (plain text).
    """

    label: str
    totals: Totals
    note: str = ""
    extra: tuple[str, ...] = ()
    css: str = ""
    detail: str = ""


@dataclass(frozen=True)
class GroupRow:
    """A heading row spanning the table, e.g. a tag's name, with a note (plain text)."""

    label: str
    note: str = ""


def percent(value: float | None) -> str:
    """A rate as a percentage with one decimal, or a dash."""
    return NO_VALUE if value is None else f"{value:.1%}"


def duration(seconds: float | None) -> str:
    """A duration in seconds as `42 s`, `2 min 05 s` or `1 h 05 min`, or a dash."""
    if seconds is None:
        return NO_VALUE
    whole = round(seconds)
    if whole < MINUTE:
        return f"{whole} s"
    if whole < HOUR:
        return f"{whole // MINUTE} min {whole % MINUTE:02d} s"
    return f"{whole // HOUR} h {whole % HOUR // MINUTE:02d} min"


def mix_bar(totals: Totals) -> str:
    """The outcomes of some sessions as one bar of labelled segments (an image for readers)."""
    if not totals.sessions:
        return NO_VALUE
    segments, described = [], []
    for attribute, css, name in MIX_PARTS:
        share = getattr(totals, attribute)
        if share is None or share <= 0:
            continue
        label = f"{share:.0%}" if share >= MIX_LABEL_MIN else ""
        segments.append(f'<span class="{css}" style="width:{share:.2%}">{label}</span>')
        described.append(f"{name} {share:.1%}")
    return f'<div class="mix" role="img" aria-label="{", ".join(described)}">{"".join(segments)}</div>'


def outcome_table(
    css: str,
    first_heading: str,
    rows: Sequence[TableRow | GroupRow],
    extra_headings: Sequence[str] = (),
    footer: TableRow | None = None,
) -> str:
    """A table of outcome counts and rates, one row a day, period, bot, channel or value.

    Args:
        css: The table's own class (besides `data`), e.g. `channels`.
        first_heading: The heading of the row-label column.
        rows: The rows, with heading rows between groups.
        extra_headings: Headings of the rows' extra cells.
        footer: A totals row, if any.

    Returns:
        The `<table>` element.
    """
    headings = (first_heading, *OUTCOME_HEADINGS, *extra_headings)
    head = "".join(f'<th scope="col">{html.escape(heading)}</th>' for heading in headings)
    body = "".join(
        _group_row(row, len(headings)) if isinstance(row, GroupRow) else _outcome_row(row) for row in rows
    )
    foot = f"<tfoot>{_outcome_row(footer)}</tfoot>" if footer else ""
    return (
        f'<table class="data {html.escape(css)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody>{foot}</table>"
    )


def _outcome_row(row: TableRow) -> str:
    """One row: heading (with its badge), counts, rates, the outcome bar and extra cells."""
    totals = row.totals
    cells = [
        f"{totals.sessions:,}",
        f"{totals.self_service:,}",
        f"{totals.drop_off:,}",
        f"{totals.agent:,}",
        percent(totals.containment_rate),
        percent(totals.drop_off_rate),
        percent(totals.agent_transfer_rate),
    ]
    numbers = "".join(f"<td>{cell}</td>" for cell in cells)
    extra = "".join(f"<td>{html.escape(cell)}</td>" for cell in row.extra)
    badge = f' <span class="badge">{html.escape(row.note)}</span>' if row.note else ""
    detail = f'<span class="detail">{html.escape(row.detail)}</span>' if row.detail else ""
    css = f' class="{html.escape(row.css)}"' if row.css else ""
    label = f'<span class="label">{html.escape(row.label)}</span>'
    return (
        f'<tr{css}><th scope="row">{label}{badge}{detail}</th>{numbers}'
        f'<td class="mix-cell">{mix_bar(totals)}</td>{extra}</tr>'
    )


def _group_row(row: GroupRow, columns: int) -> str:
    """A heading row across the table."""
    note = f' <span class="group-note">{html.escape(row.note)}</span>' if row.note else ""
    return (
        f'<tr class="group"><th scope="rowgroup" colspan="{columns}">{html.escape(row.label)}{note}</th></tr>'
    )


def behaviour_table(rows: Sequence[Behaviour], all_bots: str) -> str:
    """Session behaviour per bot, then all bots together.

    Args:
        rows: Behaviour per bot and for all bots (`bot_id` None).
        all_bots: The label of the all-bots row.

    Returns:
        The `<table>` element.
    """
    head = "".join(f'<th scope="col">{h}</th>' for h in ("Bot", *BEHAVIOUR_HEADINGS))
    bots = [row for row in rows if row.bot_id is not None]
    # With one bot, the all-bots row would only repeat it.
    ordered = bots + [row for row in rows if row.bot_id is None and len(bots) != 1]
    body = "".join(_behaviour_row(row, all_bots) for row in ordered)
    return f'<table class="data behaviour"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _behaviour_row(row: Behaviour, all_bots: str) -> str:
    """One bot's (or all bots') behaviour."""
    cells = [
        f"{row.sessions:,}",
        percent(row.interactive_share),
        percent(row.developer_share),
        _decimal(row.messages_per_session),
        _decimal(row.tasks_per_session),
        duration(row.duration_p50),
        duration(row.duration_p90),
        duration(row.duration_p95),
    ]
    label, css = (all_bots, ' class="total"') if row.bot_id is None else (row.bot_id, "")
    numbers = "".join(f"<td>{cell}</td>" for cell in cells)
    return f'<tr{css}><th scope="row"><span class="label">{html.escape(label)}</span></th>{numbers}</tr>'


def _decimal(value: float | None) -> str:
    """A mean with one decimal, or a dash."""
    return NO_VALUE if value is None else f"{value:.1f}"


def leaving_table(points: Sequence[LeavingPoint]) -> str:
    """The last bot messages per bot and outcome: a heading row for each, then its messages.

    Args:
        points: The messages, grouped by bot and outcome in the order to show.

    Returns:
        The `<table>` element.
    """
    head = "".join(f'<th scope="col">{html.escape(heading)}</th>' for heading in LEAVING_HEADINGS)
    body, group = [], None
    for point in points:
        if (point.bot_id, point.outcome) != group:
            group = (point.bot_id, point.outcome)
            outcome = OUTCOME_NAMES.get(point.outcome, point.outcome)
            note = f"{point.outcome_sessions:,} session{'' if point.outcome_sessions == 1 else 's'}"
            body.append(_group_row(GroupRow(f"{point.bot_id}: {outcome}", note), len(LEAVING_HEADINGS)))
        label = f'<span class="label">{html.escape(point.shown_message)}</span>'
        cells = f"<td>{point.sessions:,}</td><td>{percent(point.share)}</td>"
        body.append(f'<tr><th scope="row">{label}</th>{cells}</tr>')
    return (
        f'<table class="data leaving"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
    )
