"""The report's "Where users leave" section: the last bot messages of drop-off and agent sessions
per bot, read from fct_dropoff_points (counts summed, shares of the summed counts; one mart row's
own share), one line when no message is loaded, and never a user's words."""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest
from kore_sessions.report import read_report_data, render_report
from kore_sessions.report.leaving import MESSAGES_SHOWN, WITHHELD_MESSAGE, LeavingPoint, WhereUsersLeave
from kore_sessions.warehouse.model_settings import ModelSettings
from kore_sessions.warehouse.models import build_models

from .message_rows import HandData, HandWarehouse, expected_dropoffs, generated_data
from .test_report import BOT_A, BOT_B, page_tables, sample_data

# The section's one line when the messages resource is off.
NO_MESSAGES_LINE = "No messages loaded: enable the messages resource to see where users leave."
# How the report names each outcome in its group rows.
OUTCOME_NAMES = {"drop_off": "drop-off", "agent": "agent transfer"}


def leaving_rows(page: str) -> list[dict]:
    """The rows of the section's table (group rows included)."""
    return page_tables(page).get("leaving", [])


def section_text(page: str) -> str:
    """The text of the section, tags removed."""
    match = re.search(r'<section id="leaving">(.*?)</section>', page, re.DOTALL)
    assert match, "the section is missing"
    return html.unescape(re.sub(r"<[^>]+>", " ", match.group(1)))


def test_messages_per_bot_and_outcome_with_their_shares() -> None:
    points = [
        LeavingPoint(BOT_A, "drop_off", "Please type the <n>-digit code", 6, 10),
        LeavingPoint(BOT_A, "drop_off", "(no bot message)", 4, 10),
        LeavingPoint(BOT_A, "agent", "Let me connect you to an agent.", 3, 3),
        LeavingPoint(BOT_B, "drop_off", "Your ticket TK-<n> is open", 2, 8, mart_share=0.25),
        LeavingPoint(BOT_B, "drop_off", "Reach me @jane_doe <b>now</b>", 1, 8),
    ]
    data = replace(sample_data(), leaving=WhereUsersLeave(True, True, points))
    page = render_report(data)
    rows = [(r["css"], r["label"], r["badge"], r["cells"]) for r in leaving_rows(page)]
    assert rows == [
        ("group", f"{BOT_A}: drop-off", "10 sessions", []),
        ("", "Please type the <n>-digit code", "", ["6", "60.0%"]),
        ("", "(no bot message)", "", ["4", "40.0%"]),
        ("group", f"{BOT_A}: agent transfer", "3 sessions", []),
        ("", "Let me connect you to an agent.", "", ["3", "100.0%"]),
        ("group", f"{BOT_B}: drop-off", "8 sessions", []),
        ("", "Your ticket TK-<n> is open", "", ["2", "25.0%"]),  # one mart row: the mart's share
        ("", WITHHELD_MESSAGE, "", ["1", "12.5%"]),  # an "@" looks personal: not printed
    ]
    assert "@jane_doe" not in page and "<b>now" not in page
    assert f"the {MESSAGES_SHOWN} most frequent" in section_text(page)


@pytest.mark.parametrize(
    ("leaving", "line"),
    [
        (WhereUsersLeave(), "Not built yet: run `kore-sessions models` to build fct_dropoff_points."),
        (WhereUsersLeave(built=True), NO_MESSAGES_LINE),
        (WhereUsersLeave(built=True, messages_loaded=True), "No drop-off or agent transfer in these days."),
    ],
    ids=["not-built", "no-messages", "no-drop-off"],
)
def test_without_messages_the_section_says_so_in_one_line(leaving: WhereUsersLeave, line: str) -> None:
    page = render_report(replace(sample_data(), leaving=leaving))
    assert " ".join(section_text(page).split()) == f"Where users leave {line}"
    assert "leaving" not in page_tables(page)
    assert page.count('<p class="empty-note">') == 1


@pytest.fixture
def hand(warehouse: str, tmp_path: Path) -> Iterator[HandWarehouse]:
    """An empty dataset on DuckDB or PostgreSQL, dropped afterwards."""
    made = HandWarehouse(warehouse, tmp_path)
    yield made
    made.drop()


def expected_points(data: HandData, days: set[date]) -> dict[tuple[str, str], tuple[int, Counter]]:
    """Per bot and outcome over `days`: the outcome's sessions and the sessions per message."""
    found: dict[tuple[str, str], tuple[int, Counter]] = {}
    for (day, bot, outcome, label), (sessions, _, _) in expected_dropoffs(data, ModelSettings()).items():
        if day not in days:
            continue
        total, labels = found.get((bot, outcome), (0, Counter()))
        labels[label] += sessions
        found[(bot, outcome)] = (total + sessions, labels)
    return found


def test_the_report_shows_the_marts_counts_summed(hand: HandWarehouse) -> None:
    """Over several days: each bot's and outcome's top messages, sessions summed, shares of the
    summed counts, the order of the mart's counts; no user's words anywhere on the page."""
    data = generated_data(seed=23, sessions=240)
    hand.load(data)
    build_models(hand.pipeline, ModelSettings())
    report = read_report_data(hand.pipeline, days=30)
    period = report.period
    assert period is not None and period.totals_days >= 2
    days = {period.first_day + timedelta(days=n) for n in range(period.totals_days)}
    expected = expected_points(data, days)
    leaving = report.leaving
    assert leaving.built and leaving.messages_loaded
    groups = {(p.bot_id, p.outcome) for p in leaving.points}
    assert groups == set(expected)
    for (bot, outcome), (total, labels) in expected.items():
        shown = [p for p in leaving.points if (p.bot_id, p.outcome) == (bot, outcome)]
        top = sorted(labels.values(), reverse=True)[:MESSAGES_SHOWN]
        assert [p.sessions for p in shown] == top, (bot, outcome)
        for point in shown:
            assert labels[point.message] == point.sessions and point.outcome_sessions == total
            assert point.share == pytest.approx(point.sessions / total)
    page = render_report(report)
    assert len([r for r in leaving_rows(page) if r["css"] == "group"]) == len(expected)
    assert "marmalade" not in page and "u-person-" not in page


def test_one_mart_row_shows_the_marts_share(hand: HandWarehouse) -> None:
    """A share the mart holds (one day) is the mart's; over several days it is the counts'."""
    data = generated_data(seed=23, sessions=240)
    hand.load(data)
    build_models(hand.pipeline, ModelSettings())
    with hand.pipeline.sql_client() as client:
        table = client.make_qualified_table_name("fct_dropoff_points")
        client.execute_sql(f"UPDATE {table} SET share = 0.777")
    one_day = read_report_data(hand.pipeline, days=1).leaving
    assert one_day.points and {p.share for p in one_day.points} == {0.777}
    several = read_report_data(hand.pipeline, days=30).leaving
    assert 0.777 not in {p.share for p in several.points}


def test_without_messages_the_report_says_so(hand: HandWarehouse) -> None:
    data = generated_data(seed=23, sessions=60)
    hand.load(data, with_messages=False)
    build_models(hand.pipeline, ModelSettings())
    report = read_report_data(hand.pipeline, days=30)
    assert report.leaving.built and not report.leaving.messages_loaded
    page = render_report(report)
    assert NO_MESSAGES_LINE in section_text(page) and "leaving" not in page_tables(page)
