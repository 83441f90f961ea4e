"""The walk of built pages keeps what the walk of rows keeps: the ledger's records and newest
time per window, and the sessions' open ones, channels and marks."""

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kore_sessions.sandbox.generator import generate_sessions, make_bot_ids
from kore_sessions.source.api.run import ServerClock, SourceRun
from kore_sessions.source.api.walk import WindowLedger
from kore_sessions.source.api.windows import Window
from kore_sessions.source.sessions.columnar_sessions import session_columns
from kore_sessions.source.sessions.open_sessions import SessionsBotState
from kore_sessions.source.sessions.records import to_row

pytestmark = pytest.mark.unit

START = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def records() -> list[dict[str, Any]]:
    """Sessions of two days seen shortly after: open and closed ones, on several channels."""
    sessions = generate_sessions(make_bot_ids(1, 3), START, START + timedelta(days=2), 700, 3)
    now = START + timedelta(days=2, minutes=5)
    return [view for session in sessions if (view := session.view(now, legacy=False)) is not None]


def pages_of(records: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Pages that overlap, repeat and shift, as a moving list gives them."""
    return [
        records[0:300],
        records[250:600],
        records[250:600],
        records[590:1000],
        records[100:200],
        records[900:],
    ]


def test_the_ledger_keeps_the_same_records_and_newest_time(records: list[dict[str, Any]]) -> None:
    middle = to_row(records[len(records) // 2])["start_time"]
    windows = [
        Window(START, middle),
        Window(middle - timedelta(seconds=1), START + timedelta(days=3), middle),
    ]
    by_row, by_page = (WindowLedger(windows, "session_id", "start_time") for _ in range(2))
    clock = ServerClock()
    for page in pages_of(records):
        for index in range(len(windows)):
            rows = [to_row(raw) for raw in page]
            expected = [by_row.take(index, row) for row in rows]
            built = session_columns(page, None)
            assert built is not None
            ids = built.column("session_id").to_pylist()
            assert by_page.take_page(index, ids, built.column("start_time"), clock).to_pylist() == expected
            assert by_page.given == by_row.given and by_page.newest == by_row.newest
    assert all(moment.tzinfo is UTC for moment in by_page.newest.values())
    assert clock.latest == max(to_row(raw)["start_time"] for raw in records) and clock.latest.tzinfo is UTC
    assert [by_page.close(index) for index in range(2)] == [by_row.close(index) for index in range(2)]


def test_open_sessions_are_tracked_alike(records: list[dict[str, Any]]) -> None:
    rows = [to_row(raw) for raw in records]
    opened = [row["session_id"] for row in rows if row["session_status"] == "active"]
    closed = [row["session_id"] for row in rows if row["session_status"] == "closed"]
    assert opened and closed
    state = {
        "open_sessions": {session_id: "2026-06-01T00:00:00.000Z" for session_id in [*closed[:5], "gone"]},
        "unresolved": {closed[0]: ["2026-06-01T00:00:00.000Z", 1], "gone": ["2026-06-01T00:00:00.000Z", 2]},
        "channels": {"rtm": "2026-06-03T00:00:00.000Z"},
    }
    by_row = SessionsBotState(copy.deepcopy(state), "st-1", SourceRun())
    by_page = SessionsBotState(copy.deepcopy(state), "st-1", SourceRun())
    for page in (records[:400], records[400:]):
        for row in (to_row(raw) for raw in page):
            by_row.track(row)
        built = session_columns(page, None)
        assert built is not None
        by_page.track_page(built.root)
    assert by_page.open_sessions == by_row.open_sessions and set(opened) <= set(by_page.open_sessions)
    assert by_page.seen_open == by_row.seen_open == set(closed[:5])
    assert by_page.state == by_row.state and by_page.channel_since == by_row.channel_since
    by_row.save_open_sessions()
    by_page.save_open_sessions()
    assert by_page.state == by_row.state


@pytest.mark.parametrize("order", ["as listed", "newest first"])
def test_channels_keep_their_earliest_start_in_any_order(records: list[dict[str, Any]], order: str) -> None:
    # Pages that start before a channel's earliest seen, bring a channel not seen yet, or start
    # after every channel's earliest (nothing to change): each bot state agrees with the rows'.
    pages = pages_of(records)
    if order == "newest first":
        pages = [sorted(page, key=lambda raw: raw["start_time"], reverse=True) for page in pages[::-1]]
    state = {"channels": {"rtm": "2026-06-01T12:00:00.000Z"}}
    by_row = SessionsBotState(copy.deepcopy(state), "st-1", SourceRun())
    by_page = SessionsBotState(copy.deepcopy(state), "st-1", SourceRun())
    for page in pages:
        for row in (to_row(raw) for raw in page):
            by_row.track(row)
        built = session_columns(page, None)
        assert built is not None
        by_page.track_page(built.root)
        assert by_page.channel_since == by_row.channel_since and by_page.channels == by_row.channels
    assert len(by_page.channels) > 2 and by_page.channels["rtm"] < "2026-06-01T12:00:00.000Z"
