"""The HTML containment report: figures and tables from counts, a self-contained page, reading the
marts, and the page in headless Chromium on a demo-like warehouse and on one bot and one day."""

from __future__ import annotations

import json
import math
import os
import re
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import dlt
import pytest
from kore_sessions.report import (
    ALL_BOTS,
    Behaviour,
    BotSpan,
    DailyCounts,
    Rates,
    ReportData,
    ReportError,
    SliceCounts,
    TagCounts,
    build_figures,
    read_report_data,
    render_report,
    write_report,
)
from kore_sessions.report.freshness import Freshness, Period
from kore_sessions.report.privacy import looks_personal_name, looks_personal_value
from kore_sessions.runtime.pipeline import make_pipeline
from kore_sessions.sandbox import SandboxServer, generate_sessions
from kore_sessions.warehouse.model_settings import ModelSettings
from kore_sessions.warehouse.models import SETTINGS_TABLE, build_models
from playwright.sync_api import Browser, Page, sync_playwright
from plotly.offline import get_plotlyjs

from .conftest import BOTS, REAL_NOW, make_apps, tag_text

# The system Chromium playwright drives (no browser download).
CHROMIUM = Path("/usr/bin/chromium")
# Set by `.ci/run`; read at import because an autouse fixture clears KORE_* names during tests.
CHROMIUM_REQUIRED = os.environ.get("KORE_TEST_REQUIRE_CHROMIUM") == "1"
# Headless in a container, and nothing that would reach the network on its own.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The two bots of the hand-made rows (ids as the API writes them).
BOT_A = "st-aaaaaaaa-0000-4000-8000-000000000001"
BOT_B = "st-aaaaaaaa-0000-4000-8000-000000000002"
# Channels of the hand-made rows with their weights; the last is a code the report cannot name.
CHANNELS = {"rtm": 5, "msteams": 3, "carrier-pigeon": 2}
# The language each channel's counts stand in for in the hand-made language rows.
LANGUAGE_OF = {"rtm": "en", "msteams": "de", "carrier-pigeon": "xx"}
# The first day of the hand-made rows: a Thursday, so its week starts before the data.
FIRST_DAY = date(2026, 10, 1)
# When the hand-made reports say they were made.
GENERATED_AT = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
# The reporting time zone of the hand-made rows: not UTC, so day edges are tested.
ZONE = "Europe/Berlin"
# The sample is as of 14:30 in Berlin on its last day (2026-10-05): that day is partial.
LOADED_AT = datetime(2026, 10, 5, 12, 30, tzinfo=UTC)
# The four counts of every containment row, in their columns' order.
COUNT_NAMES = ("sessions", "self_service", "drop_off", "agent")
# The outcome each API containment type counts as (closed sessions only).
OUTCOME_OF_CONTAINMENT = {"selfService": "self_service", "dropOff": "drop_off", "agent": "agent"}
# The outcome behind each rate line of the trend.
RATE_OUTCOMES = {
    "Containment rate": "self_service",
    "Drop-off rate": "drop_off",
    "Agent-transfer rate": "agent",
}
# What a reader must see for each channel code the sandbox uses (the vendor's channel names).
CHANNEL_NAMES = {
    "rtm": "Web/Mobile SDK (rtm)",
    "korevg": "Kore Voice Gateway (korevg)",
    "ivrVoice": "IVR voice (ivrVoice)",
    "msteams": "Microsoft Teams (msteams)",
    "slack": "Slack (slack)",
    "sms": "SMS (sms)",
    "email": "Email (email)",
    "facebook": "Facebook Messenger (facebook)",
    "api": "API webhook (api)",
    "carrier-pigeon": "carrier-pigeon",
}
# What a reader must see for each language code (an unknown code as it is).
LANGUAGE_NAMES = {
    "en": "English (en)",
    "es": "Spanish (es)",
    "de": "German (de)",
    "fr": "French (fr)",
    "xx": "xx",
}
# Tag values of the sample that point at a person: none may reach the page.
PERSONAL_VALUES = (
    "+14155550123",
    "+49 30 1234567",
    "jane.doe@example.com",
    "64b7f0c2e4b0a1b2c3d4e5f6",
    "3f2a1b4c-1234-4abc-8def-0123456789ab",
)
# Sections every report with data has, by element id.
SECTIONS = (
    "glance", "trend", "weeks", "months", "bots", "channels", "languages", "tags", "behaviour", "leaving",
)
# Zones the Chromium tests pick from: one where it is day now, so today has sessions.
DAYTIME_ZONES = ("America/New_York", "Europe/Berlin", "Asia/Kolkata", "Asia/Tokyo", "Pacific/Auckland", "UTC")
# Counts of a (day, bot, key) cell the tests work out themselves.
Cell = tuple[date, str, str]


def outcome_counts(day: int, bot: int, weight: int) -> tuple[int, int, int, int]:
    """Distinct, uneven counts (sessions, self-service, drop-off, agent) for a day, bot and weight."""
    self_service = weight * (7 + 3 * day + 11 * bot)
    drop_off = weight * (2 + day % 3 + 4 * bot)
    agent = weight * (1 + (day * 5 + bot) % 4)
    return self_service + drop_off + agent, self_service, drop_off, agent


def hand_rows(days: int, skip: tuple[str, int] | None = None) -> tuple[list[DailyCounts], list[SliceCounts]]:
    """Daily and channel rows of two bots from FIRST_DAY, each daily row the sum of its channels."""
    daily: list[DailyCounts] = []
    channels: list[SliceCounts] = []
    for offset in range(days):
        day = FIRST_DAY + timedelta(days=offset)
        for bot_index, bot in enumerate((BOT_A, BOT_B)):
            if skip == (bot, offset):
                continue
            rows = [
                SliceCounts(day, bot, *outcome_counts(offset, bot_index, weight), key=channel)
                for channel, weight in CHANNELS.items()
            ]
            channels.extend(rows)
            daily.append(DailyCounts(day, bot, *[sum(getattr(r, n) for r in rows) for n in COUNT_NAMES]))
    return daily, channels


def languages_of(channels: list[SliceCounts]) -> list[SliceCounts]:
    """Language rows standing in for the channel rows."""
    return [SliceCounts(r.day, r.bot_id, *counts_of([r]), key=LANGUAGE_OF[r.key]) for r in channels]


def counts_of(rows: Iterable[Any]) -> tuple[int, int, int, int]:
    """The summed four counts of some rows."""
    rows = list(rows)
    return tuple(sum(getattr(row, name) for row in rows) for name in COUNT_NAMES)  # type: ignore[return-value]


def rolled(daily: list[DailyCounts], start: Callable[[date], date]) -> list[DailyCounts]:
    """Daily rows summed per period (`start(day)`) and bot, as the weekly and monthly marts hold."""
    cells: dict[tuple[date, str], list[DailyCounts]] = defaultdict(list)
    for row in daily:
        cells[(start(row.day), row.bot_id)].append(row)
    return [DailyCounts(first, bot, *counts_of(rows)) for (first, bot), rows in sorted(cells.items())]


def monday(day: date) -> date:
    """The Monday of a day's week."""
    return day - timedelta(days=day.weekday())


def first_of_month(day: date) -> date:
    """The first of a day's month."""
    return day.replace(day=1)


def tag(scope: str, name: str, value: str | None, distinct: int, counts: tuple[int, ...]) -> TagCounts:
    """A tag value's period counts."""
    return TagCounts(scope, name, value, distinct, *counts)


def sample_tags() -> list[TagCounts]:
    """Tags of the sample: a category, personal values mixed in, a personal tag, an id-like tag."""
    return [
        tag("session", "intent", "Book Flight", 2, (10, 6, 3, 1)),
        tag("session", "intent", "Pay Bill", 2, (8, 4, 2, 2)),
        tag("session", "callerNumber", PERSONAL_VALUES[0], 2, (1, 1, 0, 0)),
        tag("session", "callerNumber", "+14155550199", 2, (1, 0, 1, 0)),
        tag("user", "segment", "gold", 6, (12, 7, 3, 2)),
        tag("user", "segment", '{"tier":"gold"}', 6, (3, 1, 1, 1)),
        *(tag("user", "segment", value, 6, (2, 1, 1, 0)) for value in PERSONAL_VALUES[1:]),
        tag("user", "loyaltyLevel", "A1", 40, (2, 2, 0, 0)),
    ]


def sample_data(loaded_at: datetime | None = LOADED_AT) -> ReportData:
    """Two bots over five days (Thu 2026-10-01 to Mon 2026-10-05), every view filled."""
    daily, channels = hand_rows(5)
    behaviour = [
        Behaviour(BOT_A, 100, 85, 3, 6.25, 1.5, 95.4, 600.0, 3990.0),
        Behaviour(BOT_B, 50, 40, 0, 4.0, 1.0, 30.0, 59.6, 61.0),
        Behaviour(None, 150, 125, 3, 5.5, 1.33, 70.0, 500.0, 3600.0),
    ]
    bots = [BotSpan(bot, datetime(2026, 9, 30, 22, 5, tzinfo=UTC), LOADED_AT) for bot in (BOT_A, BOT_B)]
    return ReportData(
        dataset="kore_sessions",
        reporting_time_zone=ZONE,
        generated_at=GENERATED_AT,
        daily=daily,
        channels=channels,
        languages=languages_of(channels),
        weekly=rolled(daily, monday),
        monthly=rolled(daily, first_of_month),
        tags=sample_tags(),
        behaviour=behaviour,
        bots=bots,
        last_load_at=loaded_at,
        newest_session_at=LOADED_AT - timedelta(minutes=1),
        first_day=FIRST_DAY,
        first_data_day=FIRST_DAY,
    )


def pct(part: int, whole: int) -> str:
    """A share as the report prints it."""
    return f"{part / whole:.1%}"


def outcome_cells(counts: Any) -> list[str]:
    """The count and rate cells of an outcome row, from anything with the four counts (or a Counter)."""
    get = (lambda name: counts[name]) if isinstance(counts, Counter) else (lambda name: getattr(counts, name))
    sessions, self_service, drop_off, agent = (get(name) for name in COUNT_NAMES)
    numbers = [f"{n:,}" for n in (sessions, self_service, drop_off, agent)]
    return numbers + [pct(n, sessions) for n in (self_service, drop_off, agent)]


def as_counter(rows: Iterable[Any]) -> Counter[str]:
    """The four counts of some rows as a Counter."""
    return Counter(dict(zip(COUNT_NAMES, counts_of(rows), strict=True)))


class TableReader(HTMLParser):
    """The data tables of a page, as `page_tables` in the browser reads them.

    Per table (its second class): rows of tbody and tfoot, each `{"css", "label", "badge",
    "detail", "cells"}`; a group row's label is its text and its note the badge.
    """

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[dict[str, Any]]] = {}
        self.table: str | None = None
        self.in_head = False
        self.row: dict[str, Any] | None = None
        self.cell: str | None = None
        self.spans: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Open a table, row, cell or span."""
        classes = (dict(attrs).get("class") or "").split()
        if tag == "table" and "data" in classes:
            self.table = classes[1]
            self.tables[self.table] = []
        elif tag == "thead":
            self.in_head = True
        elif tag == "tr" and self.table and not self.in_head:
            self.row = {"css": " ".join(classes), "label": "", "badge": "", "detail": "", "cells": []}
        elif tag in ("th", "td") and self.row is not None:
            self.cell = tag
            if tag == "td":
                self.row["cells"].append("")
        elif tag == "span":
            self.spans.append(classes[0] if classes else "")

    def handle_endtag(self, tag: str) -> None:
        """Close what was opened."""
        if tag == "span" and self.spans:
            self.spans.pop()
        elif tag in ("th", "td"):
            self.cell = None
        elif tag == "thead":
            self.in_head = False
        elif tag == "tr" and self.row is not None and self.table:
            self.row = {
                key: value.strip() if isinstance(value, str) else value for key, value in self.row.items()
            }
            self.tables[self.table].append(self.row)
            self.row = None
        elif tag == "table":
            self.table = None

    def handle_data(self, data: str) -> None:
        """Text goes to the cell, or to the heading part its span says."""
        if self.row is None or self.cell is None:
            return
        if self.cell == "td":
            self.row["cells"][-1] += data
            return
        span = self.spans[-1] if self.spans else ""
        part = {"label": "label", "badge": "badge", "group-note": "badge", "detail": "detail"}.get(span)
        if part is None and self.row["css"] == "group":
            part = "label"
        if part:
            self.row[part] += data


def page_tables(page: str) -> dict[str, list[dict[str, Any]]]:
    """The data tables of an HTML page."""
    reader = TableReader()
    reader.feed(page)
    return reader.tables


def rows_of(tables: dict[str, list[dict[str, Any]]], name: str) -> dict[str, dict[str, Any]]:
    """A table's rows by label."""
    return {row["label"]: row for row in tables[name]}


def tiles(page: str) -> list[str]:
    """The figures of the at-a-glance tiles."""
    return re.findall(r'<span class="tile-value">(.*?)</span>', page)


def trace(figure: Any, name: str, series: str = ALL_BOTS) -> Any:
    """The one trace of a figure with this name and series (`meta`)."""
    found = [t for t in figure.data if t.name == name and (t.meta is None or t.meta == series)]
    assert len(found) == 1, (name, series, [(t.name, t.meta) for t in figure.data])
    return found[0]


# ---------------------------------------------------------------------------------------------
# When the data is from: freshness and the partial day
# ---------------------------------------------------------------------------------------------


def berlin(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """An October 2026 instant given in Berlin time (UTC+2 then), as UTC."""
    return datetime(2026, 10, day, hour, minute, second, tzinfo=ZoneInfo(ZONE)).astimezone(UTC)


def test_the_latest_day_is_partial_until_the_data_is_as_of_its_end() -> None:
    last = date(2026, 10, 5)
    before_midnight = Period.of(FIRST_DAY, last, Freshness(ZONE, berlin(5, 23, 59, 59)))
    assert before_midnight.partial_day == last
    assert (before_midnight.totals_last, before_midnight.totals_days) == (date(2026, 10, 4), 4)
    assert not before_midnight.totals_partial
    at_midnight = Period.of(FIRST_DAY, last, Freshness(ZONE, berlin(6, 0)))
    assert at_midnight.partial_day is None and at_midnight.totals_last == last
    # The same instant, 22:30 UTC on the 5th, is already the 6th in Berlin: the 5th is over there.
    late = datetime(2026, 10, 5, 22, 30, tzinfo=UTC)
    assert Freshness(ZONE, late).current_day == date(2026, 10, 6)
    assert Freshness("UTC", late).current_day == date(2026, 10, 5)
    assert Period.of(FIRST_DAY, last, Freshness(ZONE, late)).partial_day is None
    assert Period.of(FIRST_DAY, last, Freshness("UTC", late)).partial_day == last


def test_without_a_load_the_newest_session_says_how_far_the_data_goes() -> None:
    newest = berlin(5, 9, 15)
    freshness = Freshness(ZONE, None, newest)
    assert freshness.as_of == newest and freshness.stamp(freshness.as_of) == "2026-10-05 09:15"
    assert Period.of(FIRST_DAY, date(2026, 10, 5), freshness).partial_day == date(2026, 10, 5)
    unknown = Freshness(ZONE)
    assert unknown.as_of is None and unknown.stamp(None) == "unknown"
    assert Period.of(FIRST_DAY, date(2026, 10, 5), unknown).partial_day is None
    loaded = Freshness(ZONE, berlin(5, 10), newest)
    assert loaded.as_of == berlin(5, 10)


def test_a_single_partial_day_is_its_own_flagged_total() -> None:
    day = date(2026, 10, 5)
    period = Period.of(day, day, Freshness(ZONE, berlin(5, 11)))
    assert (period.partial_day, period.totals_last, period.totals_partial) == (day, day, True)


# ---------------------------------------------------------------------------------------------
# What may be printed: tag values and names
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "+14155550123",
        "4155550123",
        "+49 30 1234567",
        "(415) 555-0123",
        "jane.doe@example.com",
        "sip:+14155550123@pbx.example.com",
        "10.1.22.7",
        "3f2a1b4c-1234-4abc-8def-0123456789ab",
        "u-3f2a1b4c-1234-4abc-8def-0123456789ab",
        "64b7f0c2e4b0a1b2c3d4e5f6",
        "st-aaaaaaaa-0000-4000-8000-000000000001",
        "cs1a2b3c4d5e6f7g8h9",
        "1999-04-12",
    ],
)
def test_values_that_point_at_a_person_are_recognised(value: str) -> None:
    assert looks_personal_value(value)


@pytest.mark.parametrize(
    "value",
    ["gold", "Book Flight", "1", "true", "4.5", "2500", '{"items":3,"total":123.45}', "us-east", None],
)
def test_category_values_are_printable(value: str | None) -> None:
    assert not looks_personal_value(value)


def test_tags_named_like_personal_data_are_recognised() -> None:
    personal = (
        "callerNumber",
        "callId",
        "userId",
        "user_id",
        "phone",
        "Email",
        "customer-id",
        "ani",
        "sessionId",
    )
    assert all(looks_personal_name(name) for name in personal)
    assert not any(
        looks_personal_name(name) for name in ("intent", "segment", "csatScore", "language", "tier")
    )


# ---------------------------------------------------------------------------------------------
# Figures and HTML, no browser
# ---------------------------------------------------------------------------------------------


def test_all_bots_rates_are_summed_counts_divided() -> None:
    data = sample_data()
    trend = build_figures(data)["trend"]
    assert len(trend.data) == 3 * 4  # all bots + 2 bots, each sessions bars + 3 rate lines
    days = [FIRST_DAY + timedelta(days=offset) for offset in range(5)]
    for rate, count in RATE_OUTCOMES.items():
        line = trace(trend, rate)
        assert [date.fromisoformat(str(x)[:10]) for x in line.x] == days
        for index, day in enumerate(days):
            rows = [row for row in data.daily if row.day == day]
            expected = sum(getattr(row, count) for row in rows) / sum(row.sessions for row in rows)
            assert line.y[index] == expected
            assert line.text[index] == f"{expected:.0%}"  # every point labelled: no hovering needed
            averaged = sum(getattr(row, count) / row.sessions for row in rows) / len(rows)
            assert line.y[index] != pytest.approx(averaged, abs=1e-9)
        for bot in (BOT_A, BOT_B):
            own = {row.day: getattr(row, count) / row.sessions for row in data.daily if row.bot_id == bot}
            assert list(trace(trend, rate, bot).y) == [own[day] for day in days]
    sessions = trace(trend, "Sessions")
    assert list(sessions.y) == [sum(r.sessions for r in data.daily if r.day == day) for day in days]


def test_only_the_all_bots_series_is_visible_at_first_and_the_menu_switches_series() -> None:
    trend = build_figures(sample_data())["trend"]
    assert [t.meta for t in trend.data if t.visible] == [ALL_BOTS] * 4
    (menu,) = trend.layout.updatemenus
    assert [button.label for button in menu.buttons] == [ALL_BOTS, BOT_A, BOT_B]
    for button in menu.buttons:
        shown = [t.meta for t, visible in zip(trend.data, button.args[0]["visible"], strict=True) if visible]
        assert shown == [button.label] * 4


def test_the_partial_day_is_hatched_shaded_and_annotated_in_the_trend() -> None:
    trend = build_figures(sample_data())["trend"]
    for series in (ALL_BOTS, BOT_A, BOT_B):
        assert list(trace(trend, "Sessions", series).marker.pattern.shape) == ["", "", "", "", "/"]
        symbols = list(trace(trend, "Containment rate", series).marker.symbol)
        assert symbols == ["circle"] * 4 + ["circle-open"]
    (band,) = trend.layout.shapes
    assert (str(band.x0)[:16], str(band.x1)[:16]) == ("2026-10-04 12:00", "2026-10-05 12:00")
    (note,) = trend.layout.annotations
    assert note.text == "partial day<br>as of 14:30"

    complete = build_figures(sample_data(loaded_at=berlin(6, 0, 5)))["trend"]
    assert not complete.layout.shapes and not complete.layout.annotations
    assert set(trace(complete, "Sessions").marker.pattern.shape) == {""}


def test_report_is_one_self_contained_page() -> None:
    page = render_report(sample_data())
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    tags = Tags()
    tags.feed(page)
    assert page.count(get_plotlyjs()) == 1  # inlined once
    assert not [attrs for name, attrs in tags.found if name == "script" and "src" in attrs]
    assert not [attrs for name, attrs in tags.found if name == "link"]
    assert not [
        (name, attrs)
        for name, attrs in tags.found
        if re.match(r"\s*(https?:)?//", attrs.get("src", "") + attrs.get("href", ""))
    ]
    around_plotly_js = page.replace(get_plotlyjs(), "")
    assert "http://" not in around_plotly_js and "https://" not in around_plotly_js
    assert page.count("Plotly.newPlot(") == 1
    assert [attrs.get("id") for name, attrs in tags.found if name == "section"] == [*SECTIONS, "definitions"]
    for text in (
        "kore_sessions",
        "Europe/Berlin",
        "2026-10-01 to 2026-10-05 (5 days)",
        "2026-11-01 12:00:00",
        "Data as of 2026-10-05 14:30 (Europe/Berlin)",
        "last load; newest session started 2026-10-05 14:29",
        "Mon 2026-10-05 is a partial day",
        "self-service sessions / sessions",
        "closed, interactive sessions, without developer sessions; days in UTC",
    ):
        assert text in page
    assert len(around_plotly_js) < 120_000  # the page itself stays light: no per-session data


class Tags(HTMLParser):
    """The tags of a page (script contents are not parsed as markup)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Record a tag with its attributes."""
        self.found.append((tag, {key: value or "" for key, value in attrs}))


def test_glance_counts_the_complete_days_and_shows_the_partial_day_apart() -> None:
    data = sample_data()
    page = render_report(data)
    complete = [row for row in data.daily if row.day < date(2026, 10, 5)]
    expected = as_counter(complete)
    assert tiles(page) == [f"{expected['sessions']:,}", *outcome_cells(expected)[4:]]
    assert "Complete days Thu 2026-10-01 to Sun 2026-10-04 (4 days), all bots" in page
    assert "the partial day Mon 2026-10-05 is left out" in page
    so_far = as_counter(row for row in data.daily if row.day == date(2026, 10, 5))
    assert f"So far on Mon 2026-10-05 (partial, as of 14:30): {so_far['sessions']:,} sessions" in page

    whole = sample_data(loaded_at=berlin(6, 8))
    everything = as_counter(whole.daily)
    assert tiles(render_report(whole))[0] == f"{everything['sessions']:,}"


def test_daily_table_marks_the_partial_day_and_totals_the_complete_ones() -> None:
    data = sample_data()
    table = page_tables(render_report(data))["totals"]
    days = [FIRST_DAY + timedelta(days=offset) for offset in range(4, -1, -1)]
    body, footer = table[:-1], table[-1]
    assert [row["label"] for row in body] == [day.strftime("%a %Y-%m-%d") for day in days]
    assert [row["css"] for row in body] == ["partial", "", "", "", ""]
    assert body[0]["badge"] == "partial, as of 14:30"
    for row, day in zip(body, days, strict=True):
        assert row["cells"][:7] == outcome_cells(as_counter(r for r in data.daily if r.day == day))
    assert (footer["label"], footer["css"]) == ("4 complete days", "total")
    assert footer["cells"][:7] == outcome_cells(as_counter(r for r in data.daily if r.day < days[0]))


def test_weeks_and_months_are_summed_and_the_current_ones_are_to_date() -> None:
    data = sample_data()
    tables = page_tables(render_report(data))
    weeks = tables["weeks"]
    assert [(row["label"], row["badge"], row["detail"], row["css"]) for row in weeks] == [
        ("Week of Mon 2026-10-05", "to date, as of 2026-10-05 14:30", "", "partial"),
        ("Week of Mon 2026-09-28", "", "data from Thu 2026-10-01", ""),
    ]
    assert weeks[0]["cells"][:7] == outcome_cells(
        as_counter(r for r in data.daily if r.day == date(2026, 10, 5))
    )
    assert weeks[1]["cells"][:7] == outcome_cells(
        as_counter(r for r in data.daily if r.day < date(2026, 10, 5))
    )
    (month,) = tables["months"]
    assert (month["label"], month["badge"]) == ("October 2026", "to date, as of 2026-10-05 14:30")
    assert month["cells"][:7] == outcome_cells(as_counter(data.daily))


def test_bots_channels_and_languages_count_the_complete_days() -> None:
    data = sample_data()
    tables = page_tables(render_report(data))
    complete_days = [row for row in data.daily if row.day < date(2026, 10, 5)]
    sessions = sum(row.sessions for row in complete_days)
    bots = rows_of(tables, "bots")
    by_sessions = sorted(
        (BOT_A, BOT_B), key=lambda b: -sum(r.sessions for r in complete_days if r.bot_id == b)
    )
    assert list(bots) == [*by_sessions, ALL_BOTS]
    for bot in (BOT_A, BOT_B):
        own = as_counter(row for row in complete_days if row.bot_id == bot)
        assert bots[bot]["cells"][:7] == outcome_cells(own)
        assert bots[bot]["cells"][8] == pct(own["sessions"], sessions)
        assert bots[bot]["detail"] == "sessions loaded 2026-10-01 to 2026-10-05"
    assert bots[ALL_BOTS]["cells"][:7] == outcome_cells(as_counter(complete_days))
    for name, rows, names in (
        ("channels", data.channels, CHANNEL_NAMES),
        ("languages", data.languages, LANGUAGE_NAMES),
    ):
        shown = rows_of(tables, name)
        counted = [row for row in rows if row.day < date(2026, 10, 5)]
        keys = sorted(
            {row.key for row in counted},
            key=lambda k: -as_counter(r for r in counted if r.key == k)["sessions"],
        )
        assert list(shown) == [names[key] for key in keys]
        for key in keys:
            own = as_counter(row for row in counted if row.key == key)
            assert shown[names[key]]["cells"][:7] == outcome_cells(own)
            assert shown[names[key]]["cells"][8] == pct(own["sessions"], sessions)


def test_tags_show_category_values_and_never_a_personal_one() -> None:
    page = render_report(sample_data())
    for value in (*PERSONAL_VALUES, "+14155550199"):
        assert value not in page and json.dumps(value)[1:-1] not in page
    rows = page_tables(page)["tags"]
    groups = [(row["label"], row["badge"]) for row in rows if row["css"] == "group"]
    assert groups == [  # most tagged sessions first
        ("segment (user tag)", "6 values; 4 not shown: they look like phone numbers, addresses or ids"),
        ("intent (session tag)", "2 values"),
    ]
    values = {row["label"]: row["cells"][:7] for row in rows if row["css"] != "group"}
    assert values == {
        "Book Flight": outcome_cells(Counter(sessions=10, self_service=6, drop_off=3, agent=1)),
        "Pay Bill": outcome_cells(Counter(sessions=8, self_service=4, drop_off=2, agent=2)),
        "gold": outcome_cells(Counter(sessions=12, self_service=7, drop_off=3, agent=2)),
        '{"tier":"gold"}': outcome_cells(Counter(sessions=3, self_service=1, drop_off=1, agent=1)),
    }
    assert (
        "Values not shown: callerNumber (session tag, 2 values: named like personal data); "
        "loyaltyLevel (user tag, 40 values: too many to slice)." in page
    )


def test_behaviour_table_reads_durations_and_means() -> None:
    rows = rows_of(page_tables(render_report(sample_data())), "behaviour")
    assert list(rows) == [BOT_A, BOT_B, ALL_BOTS]
    assert rows[BOT_A]["cells"] == [
        "100",
        "85.0%",
        "3.0%",
        "6.2",
        "1.5",
        "1 min 35 s",
        "10 min 00 s",
        "1 h 06 min",
    ]
    assert rows[BOT_B]["cells"][5:] == ["30 s", "1 min 00 s", "1 min 01 s"]
    assert rows[ALL_BOTS]["css"] == "total"


def test_empty_data_renders_a_page_saying_so() -> None:
    data = ReportData("kore_sessions", "", GENERATED_AT, [], [])
    assert build_figures(data) == {}
    page = render_report(data)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "No data" in page and "Data as of: unknown" in page
    assert "Plotly.newPlot" not in page
    assert "<table" not in page


def test_names_are_escaped() -> None:
    daily, channels = hand_rows(1)
    odd = [SliceCounts(r.day, r.bot_id, *counts_of([r]), key="<i>x</i>") for r in channels]
    data = ReportData(
        "<b>x</b>", "UTC", GENERATED_AT, daily, odd, tags=[tag("user", "<s>", "<u>v</u>", 1, (1, 1, 0, 0))]
    )
    page = render_report(data)
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
    assert "<i>x</i>" not in page and "&lt;i&gt;x&lt;/i&gt;" in page
    assert "<u>v</u>" not in page and "&lt;u&gt;v&lt;/u&gt;" in page


# ---------------------------------------------------------------------------------------------
# In a real browser
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless system Chromium, once for the module; skips (or fails in CI) without it."""
    if not CHROMIUM.exists():
        reason = f"Chromium not installed at {CHROMIUM}"
        if CHROMIUM_REQUIRED:
            pytest.fail(reason)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class OpenedPage:
    """A report opened in the browser, with what went wrong and what it asked for."""

    def __init__(self, browser: Browser, path: Path) -> None:
        self.context = browser.new_context(viewport={"width": 1200, "height": 900})
        self.page: Page = self.context.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        self.page.on(
            "console",
            lambda message: (
                self.errors.append(f"console: {message.text}") if message.type == "error" else None
            ),
        )
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.goto(path.as_uri(), wait_until="load")

    def wait_for_chart(self) -> None:
        """Wait until plotly has drawn the trend."""
        self.page.wait_for_function("document.querySelectorAll('#trend-chart .main-svg').length >= 1")

    def charts(self) -> dict[str, dict[str, Any]]:
        """What each plotly chart holds and drew, by chart id."""
        return self.page.evaluate(CHARTS_JS)

    def chart_data(self, chart_id: str) -> list[dict[str, Any]]:
        """The traces plotly holds in one chart: name, series (`meta`), x, y, labels, bar patterns."""
        return self.page.evaluate(CHART_DATA_JS, chart_id)

    def tables(self) -> dict[str, list[dict[str, Any]]]:
        """The data tables as the browser shows them (the shape of `page_tables`)."""
        tables = self.page.evaluate(TABLES_JS)
        return {
            name: [{k: v.strip() if isinstance(v, str) else v for k, v in row.items()} for row in rows]
            for name, rows in tables.items()
        }

    def shown_sections(self) -> list[str]:
        """Ids of the sections that are laid out with a size."""
        return self.page.evaluate(
            "() => Array.from(document.querySelectorAll('section[id]'))"
            ".filter(s => s.getBoundingClientRect().height > 20).map(s => s.id)"
        )

    def close(self) -> None:
        """Close the page's context."""
        self.context.close()


# What each plotly chart holds and drew, read in the page.
CHARTS_JS = """() => Object.fromEntries(
  Array.from(document.querySelectorAll('.js-plotly-plot')).map(el => {
    const svg = el.querySelector('svg.main-svg');
    const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
    return [el.id, {
      traces: el.data.length,
      visible: el.data.filter(t => t.visible !== false).map(t => [t.type, t.name, t.meta || null]),
      width: box.width,
      height: box.height,
      lines: Array.from(el.querySelectorAll('.scatterlayer .trace path.js-line'))
        .map(p => p.getAttribute('d')),
      bars: Array.from(el.querySelectorAll('.barlayer .point path'))
        .map(p => p.getBoundingClientRect()).filter(b => b.width > 0 && b.height > 0).length,
      labels: Array.from(el.querySelectorAll('.scatterlayer .textpoint text'))
        .map(t => t.textContent).filter(t => t),
      hatched: Array.from(el.querySelectorAll('.barlayer .point path'))
        .filter(p => (p.style.fill || p.getAttribute('fill') || '').includes('url(')).length,
      shapes: (el.layout.shapes || []).length,
      annotations: Array.from(el.querySelectorAll('.annotation-text')).map(a => a.textContent),
      menus: el.querySelectorAll('.updatemenu-header-group').length,
    }];
  }))"""

# The traces of one chart, read in the page.
CHART_DATA_JS = """id => Array.from(document.getElementById(id).data).map(t => ({
  name: t.name, meta: t.meta === undefined ? null : t.meta, x: Array.from(t.x, String), y: Array.from(t.y),
  text: t.text ? Array.from(t.text) : [],
  patterns: t.marker && t.marker.pattern ? Array.from(t.marker.pattern.shape) : [],
}))"""

# The data tables as the browser shows them, in the shape `page_tables` gives.
TABLES_JS = """() => Object.fromEntries(Array.from(document.querySelectorAll('table.data')).map(t => [
  t.classList[1],
  Array.from(t.querySelectorAll('tbody tr, tfoot tr')).map(r => {
    const th = r.querySelector('th');
    const part = sel => { const e = th && th.querySelector(sel); return e ? e.textContent : ''; };
    const group = r.classList.contains('group');
    return {
      css: r.className,
      label: group ? th.firstChild.textContent : part('.label'),
      badge: group ? part('.group-note') : part('.badge'),
      detail: part('.detail'),
      cells: Array.from(r.querySelectorAll('td')).map(c => c.textContent),
    };
  })]))"""


@pytest.fixture
def opened(browser: Browser, tmp_path: Path) -> Iterator[Any]:
    """Factory: write a report page to a file and open it in the browser."""
    pages: list[OpenedPage] = []

    def open_report(data: ReportData) -> OpenedPage:
        path = tmp_path / f"report{len(pages)}.html"
        path.write_text(render_report(data), encoding="utf-8")
        pages.append(OpenedPage(browser, path))
        return pages[-1]

    yield open_report
    for page in pages:
        page.close()


def only_local(requests: list[str]) -> bool:
    """Whether the page asked for nothing beyond its own file."""
    return all(url.startswith(("file:", "data:", "about:")) for url in requests)


def test_page_renders_in_chromium_offline(opened: Any) -> None:
    data = sample_data()
    report = opened(data)
    report.wait_for_chart()
    assert report.errors == []
    assert only_local(report.requests), report.requests
    trend = report.charts()["trend-chart"]
    assert trend["width"] > 300 and trend["height"] > 200
    assert trend["traces"] == 12
    assert [meta for _, _, meta in trend["visible"]] == [ALL_BOTS] * 4
    assert len(trend["lines"]) == 3 and all(re.match(r"M[\d.]+,[\d.]+L", d or "") for d in trend["lines"])
    assert trend["bars"] == 5 and trend["hatched"] == 1
    assert len(trend["labels"]) == 3 * 5 and all(re.fullmatch(r"\d+%", label) for label in trend["labels"])
    assert trend["shapes"] == 1 and trend["annotations"] == ["partial dayas of 14:30"]
    assert report.shown_sections() == [*SECTIONS, "definitions"]
    assert report.tables() == page_tables(render_report(data))
    assert report.page.locator("table.totals tr.partial .badge").inner_text() == "partial, as of 14:30"


def test_the_bot_menu_switches_the_trend_in_chromium(opened: Any) -> None:
    report = opened(sample_data())
    report.page.wait_for_selector("#trend-chart .updatemenu-header-group")
    report.page.locator("#trend-chart .updatemenu-header-group").click()
    report.page.locator("#trend-chart .updatemenu-dropdown-button", has_text=BOT_B).click()
    report.page.wait_for_function(
        f"document.getElementById('trend-chart').data.filter(t => t.visible !== false)[0].meta === '{BOT_B}'"
    )
    trend = report.charts()["trend-chart"]
    assert [meta for _, _, meta in trend["visible"]] == [BOT_B] * 4
    assert len(trend["lines"]) == 3 and all(trend["lines"])
    assert report.errors == []


def test_empty_report_opens_in_chromium(opened: Any) -> None:
    report = opened(ReportData("kore_sessions", "UTC", GENERATED_AT, [], []))
    assert report.page.get_by_role("heading", name="No data").is_visible()
    assert report.charts() == {}
    assert report.errors == []


# ---------------------------------------------------------------------------------------------
# Reading hand-made marts from a real warehouse (DuckDB and PostgreSQL)
# ---------------------------------------------------------------------------------------------


@pytest.fixture(params=["duckdb", "postgres"])
def report_pipeline(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dlt.Pipeline]:
    """A pipeline on DuckDB (a file) or PostgreSQL (own dataset, dropped afterwards), nothing loaded."""
    if request.param == "duckdb":
        yield make_pipeline("duckdb", pipelines_dir=tmp_path / "p", duckdb_path=tmp_path / "w.duckdb")
        return
    dsn = request.getfixturevalue("postgres_dsn")
    pipeline = make_pipeline(
        dlt.destinations.postgres(credentials=dsn),
        dataset_name=f"kore_report_{uuid.uuid4().hex[:10]}",
        pipelines_dir=tmp_path / "p",
    )
    yield pipeline
    with pipeline.sql_client() as client:
        if client.has_dataset():
            client.drop_dataset()


@dataclass
class HandMarts:
    """Rows for every table the report reads, made by hand (BOT_B has no day 2)."""

    daily: list[DailyCounts]
    channels: list[SliceCounts]
    tags: list[tuple[date, str, str, str, str, tuple[int, ...]]] = field(default_factory=list)
    sessions: list[dict[str, Any]] = field(default_factory=list)
    loads: list[tuple[int, datetime]] = field(default_factory=list)


def hand_marts(days: int) -> HandMarts:
    """`days` days of two bots: containment rows, tags (with caller numbers), sessions, no loads."""
    daily, channels = hand_rows(days, skip=(BOT_B, 2))
    marts = HandMarts(daily, channels)
    for index, row in enumerate(daily):
        offset = (row.day - FIRST_DAY).days
        marts.tags.append((row.day, row.bot_id, "session", "intent", "Pay Bill", (2 + offset, 1, 1, 0)))
        marts.tags.append(
            (row.day, row.bot_id, "session", "callerNumber", f"+1415555{index:04d}", (1, 1, 0, 0))
        )
        for number in range(4):
            marts.sessions.append(
                {
                    "session_id": f"sess-{index:04d}-{number}-9f3c1d7e",
                    "bot_id": row.bot_id,
                    "user_id": f"u-handmade-{index}-{number}",
                    "day": row.day,
                    "is_status_in_scope": number != 3,
                    "is_interactive": number != 2,
                    "is_developer": number == 1,
                    "message_count": 2 + number + offset,
                    "task_count": number % 2,
                    "duration_seconds": 30.0 * (number + 1) + 7 * offset + (index % 3),
                }
            )
    return marts


def sql_literal(value: Any) -> str:
    """A Python value as a SQL literal both warehouses read the same."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, datetime):
        return f"CAST('{value.isoformat()}' AS TIMESTAMP WITH TIME ZONE)"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


# The columns after the keys of every containment mart.
OUTCOME_COLUMNS = (
    "sessions BIGINT, self_service BIGINT, drop_off BIGINT, agent BIGINT, active_sessions BIGINT, "
    "containment_rate DOUBLE PRECISION, drop_off_rate DOUBLE PRECISION, "
    "agent_transfer_rate DOUBLE PRECISION, reporting_time_zone VARCHAR(64)"
)


def containment_row(keys: list[Any], counts: tuple[int, ...]) -> list[Any]:
    """A containment mart's row: keys, counts, active sessions, rates, time zone."""
    sessions = counts[0]
    return [*keys, *counts, 1, *(count / sessions for count in counts[1:]), ZONE]


# The columns of fct_session_behaviour_daily.
BEHAVIOUR_COLUMNS = (
    "day DATE, bot_id VARCHAR(64), sessions BIGINT, interactive_sessions BIGINT, "
    "non_interactive_sessions BIGINT, developer_sessions BIGINT, interactive_share DOUBLE PRECISION, "
    "developer_share DOUBLE PRECISION, messages_per_session DOUBLE PRECISION, "
    "tasks_per_session DOUBLE PRECISION, duration_p50_seconds DOUBLE PRECISION, "
    "duration_p90_seconds DOUBLE PRECISION, duration_p95_seconds DOUBLE PRECISION, "
    "reporting_time_zone VARCHAR(64)"
)


def behaviour_rows(sessions: list[dict[str, Any]]) -> list[list[Any]]:
    """fct_session_behaviour_daily of hand-made sessions: per day and bot, status in scope."""
    cells: dict[tuple[date, str], list[dict[str, Any]]] = defaultdict(list)
    for session in sessions:
        if session["is_status_in_scope"]:
            cells[(session["day"], session["bot_id"])].append(session)
    rows = []
    for (day, bot), own in sorted(cells.items()):
        count, interactive, developer, *measures = behaviour_of(own)
        shares = (interactive / count, developer / count)
        rows.append([day, bot, count, interactive, count - interactive, developer, *shares, *measures, ZONE])
    return rows


def with_rates(rows: Iterable[Any]) -> list[Any]:
    """Hand-made containment rows as a mart gives them: with the rates of their counts."""
    return [
        replace(
            row, rates=Rates(*(count / row.sessions for count in (row.self_service, row.drop_off, row.agent)))
        )
        for row in rows
    ]


def mart_tables(marts: HandMarts) -> dict[str, tuple[str, list[list[Any]]]]:
    """Every table the report reads: its columns and rows."""
    by_slice = [[r.day, r.bot_id, r.key] for r in marts.channels]
    sessions_columns = (
        "session_id VARCHAR(64), bot_id VARCHAR(64), user_id VARCHAR(64), day DATE, "
        "is_status_in_scope BOOLEAN, is_interactive BOOLEAN, is_developer BOOLEAN, message_count BIGINT, "
        "task_count BIGINT, duration_seconds DOUBLE PRECISION"
    )
    spans = {bot: [r.day for r in marts.daily if r.bot_id == bot] for bot in (BOT_A, BOT_B)}
    return {
        "fct_containment_daily": (
            f"day DATE, bot_id VARCHAR(64), {OUTCOME_COLUMNS}",
            [containment_row([r.day, r.bot_id], counts_of([r])) for r in marts.daily],
        ),
        "fct_containment_daily_by_channel": (
            f"day DATE, bot_id VARCHAR(64), channel VARCHAR(64), {OUTCOME_COLUMNS}",
            [containment_row(keys, counts_of([r])) for keys, r in zip(by_slice, marts.channels, strict=True)],
        ),
        "fct_containment_daily_by_language": (
            f"day DATE, bot_id VARCHAR(64), language VARCHAR(64), {OUTCOME_COLUMNS}",
            [containment_row([r.day, r.bot_id, r.key], counts_of([r])) for r in languages_of(marts.channels)],
        ),
        "fct_containment_weekly": (
            f"week_start DATE, bot_id VARCHAR(64), {OUTCOME_COLUMNS}",
            [containment_row([r.day, r.bot_id], counts_of([r])) for r in rolled(marts.daily, monday)],
        ),
        "fct_containment_monthly": (
            f"month_start DATE, bot_id VARCHAR(64), {OUTCOME_COLUMNS}",
            [containment_row([r.day, r.bot_id], counts_of([r])) for r in rolled(marts.daily, first_of_month)],
        ),
        "fct_containment_by_tag": (
            "day DATE, bot_id VARCHAR(64), tag_scope VARCHAR(16), tag_name VARCHAR(64), "
            f"tag_value VARCHAR(200), {OUTCOME_COLUMNS}",
            [containment_row(list(keys), counts) for *keys, counts in marts.tags],
        ),
        "fct_sessions": (sessions_columns, [list(session.values()) for session in marts.sessions]),
        "fct_session_behaviour_daily": (BEHAVIOUR_COLUMNS, behaviour_rows(marts.sessions)),
        "dim_bots": (
            "bot_id VARCHAR(64), first_session_at TIMESTAMP WITH TIME ZONE, last_session_at "
            "TIMESTAMP WITH TIME ZONE, sessions BIGINT, counted_sessions BIGINT, channels BIGINT",
            [
                [bot, berlin(min(days).day, 0, 5), berlin(max(days).day, 9, 45), 1, 1, 3]
                for bot, days in spans.items()
                if days
            ],
        ),
    }


def create_marts(pipeline: dlt.Pipeline, marts: HandMarts, leave_out: str = "") -> None:
    """Create the marts (one left out, if named), the settings and any loads, with these rows."""
    tables = mart_tables(marts)
    tables.pop(leave_out, None)
    if marts.loads:
        rows = [[f"load{n}", "kore_sessions", status, at] for n, (status, at) in enumerate(marts.loads)]
        tables["_dlt_loads"] = (
            "load_id VARCHAR(64), schema_name VARCHAR(64), status BIGINT, "
            "inserted_at TIMESTAMP WITH TIME ZONE",
            rows,
        )
    with pipeline.sql_client() as client:
        if not client.has_dataset():
            client.create_dataset()
        for name, (columns, rows) in tables.items():
            table = client.make_qualified_table_name(name)
            client.execute_sql(f"CREATE TABLE {table} ({columns})")
            if rows:
                values = ", ".join("(" + ", ".join(map(sql_literal, row)) + ")" for row in rows)
                client.execute_sql(f"INSERT INTO {table} VALUES {values}")
        settings = client.make_qualified_table_name(SETTINGS_TABLE)
        client.execute_sql(
            f"CREATE TABLE {settings} AS SELECT '{ZONE}' AS reporting_time_zone, "
            "TRUE AS include_active, FALSE AS include_non_interactive, TRUE AS include_developer"
        )


def percentile_cont(values: list[float], share: float) -> float:
    """A continuous percentile (linear between the two nearest values), as SQL's PERCENTILE_CONT."""
    ordered = sorted(values)
    position = share * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def behaviour_of(sessions: list[dict[str, Any]]) -> tuple[Any, ...]:
    """Count, interactive, developer, mean messages and tasks, duration p50/p90/p95 of some sessions."""
    durations = [s["duration_seconds"] for s in sessions]
    return (
        len(sessions),
        sum(s["is_interactive"] for s in sessions),
        sum(s["is_developer"] for s in sessions),
        sum(s["message_count"] for s in sessions) / len(sessions),
        sum(s["task_count"] for s in sessions) / len(sessions),
        *(percentile_cont(durations, q) for q in (0.5, 0.9, 0.95)),
    )


def expected_behaviour(sessions: list[dict[str, Any]]) -> tuple[Any, ...]:
    """`behaviour_of` some sessions, the means and percentiles as approximate values."""
    count, interactive, developer, *measures = behaviour_of(sessions)
    return (count, interactive, developer, *(pytest.approx(value) for value in measures))


def test_read_report_data_takes_the_last_days_and_counts_complete_ones(report_pipeline: dlt.Pipeline) -> None:
    marts = hand_marts(10)
    # The newest successful load is at 22:00 in Berlin on the 10th; a newer failed one is ignored.
    marts.loads = [(0, berlin(9, 12)), (0, berlin(10, 22)), (1, berlin(11, 10))]
    create_marts(report_pipeline, marts)
    data = read_report_data(report_pipeline, days=3)
    assert (data.dataset, data.reporting_time_zone) == (report_pipeline.dataset_name, ZONE)
    assert (
        data.scope
        == "closed and active, interactive sessions, with developer sessions; days in Europe/Berlin"
    )
    assert data.last_load_at == berlin(10, 22) and data.newest_session_at == berlin(10, 9, 45)
    period = data.period
    assert (period.first_day, period.last_day, period.partial_day) == (
        date(2026, 10, 8),
        date(2026, 10, 10),
        date(2026, 10, 10),
    )
    key = lambda row: (row.day, row.bot_id, getattr(row, "key", ""))  # noqa: E731
    cut_off = date(2026, 10, 8)
    assert sorted(data.daily, key=key) == sorted(
        with_rates(r for r in marts.daily if r.day >= cut_off), key=key
    )
    assert sorted(data.channels, key=key) == sorted(
        with_rates(r for r in marts.channels if r.day >= cut_off), key=key
    )
    assert sorted(data.languages, key=key) == sorted(
        with_rates(r for r in languages_of(marts.channels) if r.day >= cut_off), key=key
    )
    assert sorted(data.weekly, key=key) == with_rates(rolled(marts.daily, monday))
    assert sorted(data.monthly, key=key) == with_rates(rolled(marts.daily, first_of_month))
    assert all(type(value) is int for row in data.channels for value in (row.sessions, row.agent))
    # Tags and behaviour count the complete days only: the 8th and the 9th.
    totals_days = (date(2026, 10, 8), date(2026, 10, 9))
    tagged = [t for t in marts.tags if t[0] in totals_days]
    intent = [t[5] for t in tagged if t[3] == "intent"]
    assert [t for t in data.tags if t.name == "intent"] == [
        TagCounts("session", "intent", "Pay Bill", 1, *(sum(c[i] for c in intent) for i in range(4)))
    ]
    callers = [t for t in data.tags if t.name == "callerNumber"]
    assert len(callers) == len([t for t in tagged if t[3] == "callerNumber"]) == 4
    assert {t.distinct_values for t in callers} == {4}
    in_scope = [s for s in marts.sessions if s["day"] in totals_days and s["is_status_in_scope"]]
    shown = {row.bot_id: row for row in data.behaviour}
    assert list(shown) == [BOT_A, BOT_B, None]
    for bot in (BOT_A, BOT_B, None):
        own = [s for s in in_scope if bot is None or s["bot_id"] == bot]
        row = shown[bot]
        actual = (
            row.sessions,
            row.interactive,
            row.developer,
            row.messages_per_session,
            row.tasks_per_session,
            row.duration_p50,
            row.duration_p90,
            row.duration_p95,
        )
        assert actual == expected_behaviour(own)

    everything = read_report_data(report_pipeline)
    assert len(everything.daily) == len(marts.daily) == 19
    assert everything.period.first_day == FIRST_DAY


def test_write_report_writes_the_page_without_personal_values(
    report_pipeline: dlt.Pipeline, tmp_path: Path
) -> None:
    marts = hand_marts(4)
    create_marts(report_pipeline, marts)
    written = write_report(report_pipeline, Path("out/report.html"), days=2)
    assert written == (tmp_path / "out" / "report.html").resolve()
    page = written.read_text(encoding="utf-8")
    assert "2026-10-03 to 2026-10-04 (2 days)" in page
    # No load recorded: the data is as of the newest session, 09:45 on the 4th, which is partial.
    assert "Data as of 2026-10-04 09:45 (Europe/Berlin)" in page and "no load recorded" in page
    assert page.count("Plotly.newPlot(") == 1
    shown = page_tables(page)["totals"]
    assert [(row["label"], row["css"]) for row in shown] == [
        ("Sun 2026-10-04", "partial"),
        ("Sat 2026-10-03", ""),
    ]
    for row, day in zip(shown, (date(2026, 10, 4), date(2026, 10, 3)), strict=True):
        assert row["cells"][:7] == outcome_cells(as_counter(r for r in marts.daily if r.day == day))
    for session in marts.sessions:
        assert session["user_id"] not in page and session["session_id"] not in page
    assert not [value for *_, value, _ in marts.tags if value.startswith("+") and value in page]


def test_empty_marts_give_an_empty_report(report_pipeline: dlt.Pipeline) -> None:
    create_marts(report_pipeline, HandMarts([], []))
    data = read_report_data(report_pipeline)
    assert (data.daily, data.channels, data.weekly, data.tags, data.behaviour) == ([], [], [], [], [])
    assert "No data" in render_report(data)


@pytest.mark.parametrize(
    "missing", ["fct_containment_daily_by_channel", "fct_session_behaviour_daily", "fct_sessions", "dim_bots"]
)
def test_missing_marts_raise_a_clear_error(report_pipeline: dlt.Pipeline, missing: str) -> None:
    dataset = report_pipeline.dataset_name
    message = f"the containment models are not built in dataset {dataset}: run `kore-sessions models` first"
    with pytest.raises(ReportError) as no_dataset:
        read_report_data(report_pipeline)
    assert str(no_dataset.value) == message
    create_marts(report_pipeline, hand_marts(2), leave_out=missing)
    with pytest.raises(ReportError, match="kore-sessions models"):
        read_report_data(report_pipeline)


def test_days_must_be_positive(report_pipeline: dlt.Pipeline) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        read_report_data(report_pipeline, days=0)


# ---------------------------------------------------------------------------------------------
# Sandbox -> warehouse -> models -> report -> Chromium, numbers counted from the sandbox
# ---------------------------------------------------------------------------------------------


def daytime_zone() -> str:
    """A reporting time zone where it is between 09:00 and 21:00 now, so today has sessions."""
    for name in DAYTIME_ZONES:
        if 9 <= REAL_NOW.astimezone(ZoneInfo(name)).hour < 21:
            return name
    return "UTC"


@dataclass
class Truth:
    """What the sandbox's sessions say the report must show, counted without the product.

    Attributes:
        zone: The reporting time zone.
        counted: The sessions the default scope counts (closed, interactive, not developers'),
            each with its day, bot, channel, languages, tags and outcome.
        closed: The closed sessions (the behaviour's scope), with their measures.
        personal: User ids, caller numbers, call ids and session ids of every session.
        as_of: The newest load, from the warehouse's `_dlt_loads`.
    """

    zone: str
    counted: list[dict[str, Any]] = field(default_factory=list)
    closed: list[dict[str, Any]] = field(default_factory=list)
    personal: set[str] = field(default_factory=set)
    as_of: datetime | None = None

    @property
    def last_day(self) -> date:
        """The latest day with a counted session."""
        return max(s["day"] for s in self.counted)

    @property
    def partial(self) -> bool:
        """Whether the latest day had not ended when the data was loaded."""
        end = datetime.combine(self.last_day + timedelta(days=1), datetime.min.time(), ZoneInfo(self.zone))
        return self.as_of is not None and self.as_of < end

    def period(self, days: int) -> tuple[date, date]:
        """The first day of a `days`-day report and the last day its totals count."""
        first = max(min(s["day"] for s in self.counted), self.last_day - timedelta(days=days - 1))
        last = self.last_day - timedelta(days=1) if self.partial and first < self.last_day else self.last_day
        return first, last


def sandbox_truth(views: list[dict[str, Any]], zone: str, loads: list[tuple[Any, ...]]) -> Truth:
    """Sort the sandbox's sessions into what counts where."""
    truth = Truth(zone, as_of=max(row[0] for row in loads).astimezone(UTC))
    for view in views:
        tags = view["tags"]
        truth.personal |= {view["userId"], view["sessionId"]}
        truth.personal |= {
            str(t["value"]) for t in tags["sessionTags"] if t["name"] in ("callerNumber", "callId")
        }
        if view["sessionStatus"] != "closed":
            continue
        start = datetime.fromisoformat(view["start_time"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(view["end_time"].replace("Z", "+00:00"))
        session = {
            "day": start.astimezone(ZoneInfo(zone)).date(),
            "bot": view["botId"],
            "interactive": view["sessionType"] == "interactive",
            "developer": view["isDeveloper"],
            "messages": view["noOfMessagesExchanged"],
            "tasks": view["noOfTasksExecuted"],
            "duration": (end - start).total_seconds(),
        }
        truth.closed.append(session)
        if session["interactive"] and not session["developer"]:
            values = {
                (scope, t["name"], tag_text(t["value"]))
                for scope, key in (("session", "sessionTags"), ("user", "userTags"))
                for t in tags[key]
            }
            truth.counted.append(
                {
                    **session,
                    "channel": view["channel"],
                    "languages": set(view["session_lang"]) or {"unknown"},
                    "tags": values,
                    "outcome": OUTCOME_OF_CONTAINMENT[view["containmentType"]],
                }
            )
    return truth


def tally(sessions: Iterable[dict[str, Any]]) -> Counter[str]:
    """Sessions and outcome counts of some counted sessions."""
    counts: Counter[str] = Counter({name: 0 for name in COUNT_NAMES})
    for session in sessions:
        counts["sessions"] += 1
        counts[session["outcome"]] += 1
    return counts


def assert_tables_show(tables: dict[str, list[dict[str, Any]]], truth: Truth, days: int) -> None:
    """Every table holds the numbers counted from the sandbox."""
    first, last = truth.period(days)
    counted = [s for s in truth.counted if first <= s["day"] <= last]
    sessions = len(counted)
    day_text = lambda day: day.strftime("%a %Y-%m-%d")  # noqa: E731
    # Last days, newest first, the partial one marked.
    shown_days = sorted({s["day"] for s in truth.counted if s["day"] >= first}, reverse=True)[:7]
    daily = [row for row in tables["totals"] if row["css"] != "total"]
    assert [row["label"] for row in daily] == [day_text(day) for day in shown_days]
    for row, day in zip(daily, shown_days, strict=True):
        assert row["cells"][:7] == outcome_cells(tally(s for s in truth.counted if s["day"] == day))
        partial = truth.partial and day == truth.last_day
        assert (row["css"] == "partial") is partial and row["badge"].startswith("partial, as of ") is partial
    # Weeks and months, newest first, counted from the sessions.
    for name, start in (("weeks", monday), ("months", first_of_month)):
        starts = sorted({start(s["day"]) for s in truth.counted}, reverse=True)[
            : 13 if name == "weeks" else 12
        ]
        rows = tables[name]
        assert len(rows) == len(starts)
        for row, period_start in zip(rows, starts, strict=True):
            assert row["cells"][:7] == outcome_cells(
                tally(s for s in truth.counted if start(s["day"]) == period_start)
            )
        assert ("to date" in rows[0]["badge"]) is truth.partial
    # Bots, channels and languages over the complete days.
    for name, key, names in (
        ("bots", lambda s: [s["bot"]], None),
        ("channels", lambda s: [s["channel"]], CHANNEL_NAMES),
        ("languages", lambda s: sorted(s["languages"]), LANGUAGE_NAMES),
    ):
        per_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for session in counted:
            for value in key(session):
                per_key[value].append(session)
        rows = rows_of(tables, name)
        for value, own in per_key.items():
            row = rows[names[value] if names else value]
            assert row["cells"][:7] == outcome_cells(tally(own)), (name, value)
            assert row["cells"][8] == pct(len(own), sessions)
        assert len([r for r in rows.values() if r["css"] != "total"]) == len(per_key)
    # Tag values: whichever the tag mart slices, counted right; no personal value among them.
    group = ""
    for row in tables["tags"]:
        if row["css"] == "group":
            group = row["label"]
            continue
        name, scope = re.fullmatch(r"(.+) \((session|user) tag\)", group).groups()
        value = None if row["label"] == "(no value)" else row["label"]
        assert row["cells"][:7] == outcome_cells(
            tally(s for s in counted if (scope, name, value) in s["tags"])
        )
        assert value not in truth.personal


def parse_duration(text: str) -> float:
    """A duration cell (`42 s`, `2 min 05 s`, `1 h 05 min`) in seconds."""
    units = {"h": 3600, "min": 60, "s": 1}
    return sum(int(number) * units[unit] for number, unit in re.findall(r"(\d+) (h|min|s)\b", text))


def assert_behaviour_shows(rows: dict[str, dict[str, Any]], truth: Truth, days: int) -> None:
    """The behaviour table holds the measures of the closed sessions of the complete days."""
    first, last = truth.period(days)
    closed = [s for s in truth.closed if first <= s["day"] <= last]
    bots = sorted({s["bot"] for s in closed})
    shown = [*bots, ALL_BOTS] if len(bots) > 1 else bots  # one bot: no all-bots row repeating it
    assert list(rows) == shown
    for bot in shown:
        own = [s for s in closed if bot == ALL_BOTS or s["bot"] == bot]
        cells = rows[bot]["cells"]
        assert cells[:3] == [
            f"{len(own):,}",
            pct(sum(s["interactive"] for s in own), len(own)),
            pct(sum(s["developer"] for s in own), len(own)),
        ]
        assert float(cells[3]) == pytest.approx(sum(s["messages"] for s in own) / len(own), abs=0.051)
        assert float(cells[4]) == pytest.approx(sum(s["tasks"] for s in own) / len(own), abs=0.051)
        durations = [s["duration"] for s in own]
        for cell, share in zip(cells[5:], (0.5, 0.9, 0.95), strict=True):
            expected = percentile_cont(durations, share)
            assert parse_duration(cell) == pytest.approx(expected, abs=0.51 if expected < 3600 else 30.01), (
                bot,
                share,
            )


def assert_trend_shows(trend: list[dict[str, Any]], truth: Truth, days: int) -> None:
    """Each series of the trend holds the counted sessions and labelled rates; the partial day hatched."""
    first, _ = truth.period(days)
    shown = [first + timedelta(days=n) for n in range((truth.last_day - first).days + 1)]
    counted = [s for s in truth.counted if s["day"] >= first]
    bots = sorted({s["bot"] for s in counted})
    series = [ALL_BOTS, *bots] if len(bots) > 1 else [ALL_BOTS]
    assert sorted(str(t["meta"]) for t in trend) == sorted(name for name in series for _ in range(4))
    for line in trend:
        own = [s for s in counted if line["meta"] == ALL_BOTS or s["bot"] == line["meta"]]
        per_day = {day: tally(s for s in own if s["day"] == day) for day in shown}
        assert line["x"] == [day.isoformat() for day in shown]
        if line["name"] == "Sessions":
            assert line["y"] == [per_day[day]["sessions"] for day in shown]
            assert line["patterns"] == [
                "/" if truth.partial and day == truth.last_day else "" for day in shown
            ]
            continue
        outcome = RATE_OUTCOMES[line["name"]]
        rates = [
            per_day[d][outcome] / per_day[d]["sessions"] if per_day[d]["sessions"] else None for d in shown
        ]
        assert line["y"] == [pytest.approx(rate) for rate in rates]
        assert len([label for label in line["text"] if label]) == len([r for r in rates if r is not None])


def load_and_report(
    server: SandboxServer,
    make_loader: Any,
    warehouse: str,
    tmp_path: Path,
    zone: str,
    days: int,
    bots: list[str],
) -> tuple[Path, Truth]:
    """Load the sandbox into the warehouse, build the models, write the report; with the truth."""
    loader = make_loader(server, warehouse)
    start = min(
        datetime.fromisoformat(v["start_time"].replace("Z", "+00:00")) for v in server.visible_sessions()
    )
    loader.run(bot_ids=bots, start_date=(start - timedelta(minutes=1)).isoformat())
    build_models(loader.pipeline, ModelSettings(reporting_time_zone=zone))
    path = write_report(loader.pipeline, tmp_path / "report.html", days=days)
    loads = loader.query("SELECT inserted_at FROM _dlt_loads WHERE status = 0")
    return path, sandbox_truth(server.visible_sessions(), zone, loads)


def check_in_chromium(browser: Browser, path: Path, truth: Truth, days: int, screenshot: Path) -> OpenedPage:
    """Open the report, check every section against the truth, save a screenshot; the opened page."""
    report = OpenedPage(browser, path)
    report.wait_for_chart()
    assert report.errors == []
    assert only_local(report.requests), report.requests
    assert report.shown_sections() == [*SECTIONS, "definitions"]
    assert_tables_show(report.tables(), truth, days)
    assert_behaviour_shows(rows_of(report.tables(), "behaviour"), truth, days)
    assert_trend_shows(report.chart_data("trend-chart"), truth, days)
    trend = report.charts()["trend-chart"]
    assert truth.partial and trend["shapes"] == 1 and trend["annotations"][0].startswith("partial day")
    as_of = truth.as_of.astimezone(ZoneInfo(truth.zone)).strftime("%Y-%m-%d %H:%M")
    assert f"Data as of {as_of} ({truth.zone})" in report.page.inner_text(".as-of")
    assert f"{truth.last_day.strftime('%a %Y-%m-%d')} is a partial day" in report.page.inner_text(".as-of")
    page = path.read_text(encoding="utf-8")
    assert not [value for value in truth.personal if value in page]  # no user id, caller number, call id
    report.page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 50_000
    return report


def test_demo_like_report_in_chromium(
    browser: Browser, make_loader: Any, warehouse: str, tmp_path: Path
) -> None:
    """Three bots, three weeks up to now: every section shows what the sandbox's sessions say."""
    zone, days = daytime_zone(), 14
    bots = [*BOTS, "st-aaaaaaaa-0000-4000-8000-000000000003"]
    sessions = generate_sessions(
        bots, REAL_NOW - timedelta(days=21), REAL_NOW, per_day=30, seed=31, active_share=0.5
    )
    with SandboxServer(sessions, apps=make_apps(), now=REAL_NOW, page_cap=250) as server:
        path, truth = load_and_report(server, make_loader, warehouse, tmp_path, zone, days, bots)
    assert len({s["day"] for s in truth.counted}) >= 20 and truth.partial
    report = check_in_chromium(browser, path, truth, days, tmp_path / "demo-like.png")
    try:
        assert report.charts()["trend-chart"]["menus"] == 1
        first, last = truth.period(days)
        note = report.page.inner_text("#glance .note")
        assert note.startswith(
            f"Complete days {first.strftime('%a %Y-%m-%d')} to {last.strftime('%a %Y-%m-%d')}"
        )
        assert path.stat().st_size < 6_000_000
    finally:
        report.close()


def test_one_bot_one_day_report_in_chromium(
    browser: Browser, make_loader: Any, warehouse: str, tmp_path: Path
) -> None:
    """One bot, sessions only since midnight today: a partial day alone, still a clean page."""
    zone = daytime_zone()
    midnight = datetime.combine(
        REAL_NOW.astimezone(ZoneInfo(zone)).date(), datetime.min.time(), ZoneInfo(zone)
    )
    sessions = generate_sessions(BOTS[:1], midnight.astimezone(UTC), REAL_NOW, per_day=300, seed=41)
    with SandboxServer(sessions, apps=make_apps(), now=REAL_NOW, page_cap=250) as server:
        path, truth = load_and_report(server, make_loader, warehouse, tmp_path, zone, 30, BOTS[:1])
    assert {s["day"] for s in truth.counted} == {midnight.date()}
    report = check_in_chromium(browser, path, truth, 30, tmp_path / "one-bot-one-day.png")
    try:
        trend = report.charts()["trend-chart"]
        assert (trend["traces"], trend["menus"], trend["bars"], trend["hatched"]) == (4, 0, 1, 1)
        note = report.page.inner_text("#glance .note")
        assert note.startswith(f"Only {midnight.strftime('%a %Y-%m-%d')} so far, a partial day (as of ")
        tables = report.tables()
        assert [row["css"] for row in tables["totals"]] == ["partial"]  # no total of complete days
        assert [row["css"] for row in tables["weeks"] + tables["months"]] == ["partial", "partial"]
        assert [row["label"] for row in tables["bots"]] == [BOTS[0]]  # one bot: no all-bots row
    finally:
        report.close()
