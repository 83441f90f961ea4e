"""The message models (stg_kore__messages, fct_dropoff_points, fct_conversation_turns_daily) on
DuckDB and PostgreSQL: hand-made raw tables against a computation of their own in Python, the
normalisation of the last bot message case by case, the build without any message, and no word
a user typed in any model."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import pytest
from kore_sessions.warehouse.model_files import discover_models
from kore_sessions.warehouse.model_settings import ModelSettings
from kore_sessions.warehouse.models import build_models

from .message_rows import (
    BOT_A,
    BOT_B,
    FIRST_START,
    NO_BOT_MESSAGE,
    NO_MESSAGES,
    NO_TEXT,
    HandData,
    HandWarehouse,
    expected_dropoffs,
    expected_turns,
    generated_data,
    message_row,
    normalise,
    session_row,
)

DROPOFFS = "fct_dropoff_points"
TURNS = "fct_conversation_turns_daily"
# The measures of the turns mart, in expected_turns' order.
TURN_COLUMNS = (
    "sessions, sessions_with_messages, incoming_messages, outgoing_messages, incoming_per_session, "
    "outgoing_per_session, sessions_with_incoming, sessions_without_bot_answer, "
    "first_response_p50_seconds, first_response_p90_seconds"
)
# Settings the marts are compared under: the default scope in UTC, and everything in Kolkata.
SETTINGS = {
    "default": ModelSettings(),
    "everything-kolkata": ModelSettings(
        reporting_time_zone="Asia/Kolkata", include_active=True, include_non_interactive=True,
        include_developer=True,
    ),
}  # fmt: skip
# Bot texts and what fct_dropoff_points makes of each (case kept, masks, spaces, the cut).
NORMALISED: dict[str, str | None] = {
    "We sent a code to jane.doe@example.com": "We sent a code to <email>",
    "Write to a@b.co or li_wang+x@mail.example.org, then wait": "Write to <email> or <email>, then wait",
    "Your ticket TK-48213 is open": "Your ticket TK-<n> is open",
    "Please type the 6-digit code we sent to +1 415 555 0199":
        "Please type the <n>-digit code we sent to <n>",
    "Pay $120.00 by 10/12, or call (555) 123-4567": "Pay $<n> by <n>, or call (<n>",
    "Session st-aaaaaaaa-0000-4000-8000-000000000001 expired": "Session <id> expired",
    "Ids: u-0f8fa6c4-1b2c-4d3e-9f00-123456789abc, ms-3F2504E0-4F89-11D3-9A0C-0305E82C3301.":
        "Ids: <id>, <id>.",
    "Reference 5f1e2d3c4b5a69788796a5b4 and 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b":
        "Reference <id> and <id>",
    "Card 4111111111111111 was declined": "Card <id> was declined",
    "Codes abc123def456 and x9": "Codes abc<n>def<n> and x<n>",
    "  Order\t12\r\n  shipped   today  ": "Order <n> shipped today",
    "Hello THERE, no numbers here.": "Hello THERE, no numbers here.",
    "word " * 60: ("word " * 40).strip(),
    "": None,
    "  \n ": None,
}  # fmt: skip


@pytest.fixture
def hand(warehouse: str, tmp_path: Path) -> Iterator[HandWarehouse]:
    """An empty dataset on DuckDB or PostgreSQL, dropped afterwards."""
    made = HandWarehouse(warehouse, tmp_path)
    yield made
    made.drop()


def mart_rows(hand: HandWarehouse, table: str, keys: int, values: str) -> dict[tuple, tuple]:
    """A mart's rows by their key (the first `keys` columns of `values`); a repeated key fails."""
    found: dict[tuple, tuple] = {}
    for row in hand.query(f"SELECT {values} FROM {table}"):
        key = tuple(row[:keys])
        assert key not in found, f"{table}: key {key} twice"
        found[key] = tuple(float(v) if isinstance(v, float) else v for v in row[keys:])
    return found


def approx(expected: dict[tuple, tuple]) -> dict[tuple, tuple]:
    """Expected rows with their floats compared approximately."""
    return {
        key: tuple(pytest.approx(v) if isinstance(v, float) else v for v in values)
        for key, values in expected.items()
    }


def test_python_normalisation_reads_the_cases_as_stated() -> None:
    """The reference itself: every case as the table above says."""
    assert {text: normalise(text) for text in NORMALISED} == NORMALISED


@pytest.mark.parametrize("scenario", list(SETTINGS))
def test_marts_match_an_independent_computation(hand: HandWarehouse, scenario: str) -> None:
    settings = SETTINGS[scenario]
    data = generated_data()
    hand.load(data)
    build_models(hand.pipeline, settings)
    expected = expected_dropoffs(data, settings)
    assert {key[2] for key in expected} == {"drop_off", "agent"}
    assert {key[3] for key in expected} >= {NO_MESSAGES, NO_BOT_MESSAGE, NO_TEXT}, "every label is tried"
    columns = "day, bot_id, outcome, last_bot_message, sessions, share, messages_loaded"
    assert mart_rows(hand, DROPOFFS, 4, columns) == approx(expected)
    zone = hand.query(f"SELECT DISTINCT reporting_time_zone FROM {DROPOFFS}")
    assert zone == [(settings.reporting_time_zone,)]
    turns = expected_turns(data, settings)
    assert any(values[7] for values in turns.values()), "some sessions got no answer"
    assert mart_rows(hand, TURNS, 2, f"day, bot_id, {TURN_COLUMNS}") == approx(turns)


def test_the_last_bot_message_is_normalised_case_by_case(hand: HandWarehouse) -> None:
    """One drop-off session a case, its one bot message the case's text."""
    data = HandData()
    for index, text in enumerate(NORMALISED):
        session = session_row(f"{index + 1:024x}", BOT_A, FIRST_START + timedelta(minutes=index))
        data.sessions.append(session)
        data.messages.append(message_row(session, "outgoing", session["start_time"], text))
    hand.load(data)
    build_models(hand.pipeline, ModelSettings())
    got = sessions_per_label(hand.query(f"SELECT last_bot_message, sessions FROM {DROPOFFS}"))
    wanted = sessions_per_label([(label or NO_TEXT, 1) for label in NORMALISED.values()])
    assert got == wanted


def sessions_per_label(rows: list[tuple[Any, ...]]) -> dict[str, int]:
    """Sessions per label."""
    counts: dict[str, int] = {}
    for label, sessions in rows:
        counts[label] = counts.get(label, 0) + int(sessions)
    return counts


def test_the_last_bot_message_is_the_newest_then_the_highest_id(hand: HandWarehouse) -> None:
    """Ties on created_on go to the higher message id; user messages after it do not count."""
    session = session_row("a" * 24, BOT_A, FIRST_START)
    at = session["start_time"] + timedelta(seconds=30)
    data = HandData(sessions=[session])
    data.messages = [
        message_row(session, "outgoing", at - timedelta(seconds=20), "First prompt", message_id="ms-9"),
        message_row(session, "outgoing", at, "Tie lost", message_id="ms-1"),
        message_row(session, "outgoing", at, "Tie won", message_id="ms-2"),
        message_row(session, "incoming", at + timedelta(seconds=5), "a user's last words"),
        message_row(session, "ctrlmsg", at + timedelta(seconds=6), "context updated"),
    ]
    hand.load(data)
    build_models(hand.pipeline, ModelSettings())
    assert hand.query(f"SELECT last_bot_message, share FROM {DROPOFFS}") == [("Tie won", 1.0)]


def test_models_build_when_no_message_was_ever_loaded(hand: HandWarehouse) -> None:
    """No messages table: the marts read it as empty and say so."""
    data = generated_data(seed=3, sessions=40)
    hand.load(data, with_messages=False)
    build_models(hand.pipeline, ModelSettings())
    assert hand.query("SELECT COUNT(*) FROM stg_kore__messages") == [(0,)]
    labels = hand.query(f"SELECT DISTINCT last_bot_message, messages_loaded FROM {DROPOFFS}")
    assert labels == [(NO_MESSAGES, False)]
    without = HandData(sessions=data.sessions)
    assert mart_rows(hand, TURNS, 2, f"day, bot_id, {TURN_COLUMNS}") == approx(
        expected_turns(without, ModelSettings())
    )
    measures = hand.query(
        f"SELECT SUM(sessions), SUM(sessions_with_messages), MAX(incoming_per_session), "
        f"MAX(first_response_p50_seconds) FROM {TURNS}"
    )
    assert measures[0][0] > 0 and measures[0][1:] == (0, None, None)


def test_models_build_when_dlt_made_no_text_column(hand: HandWarehouse) -> None:
    """Messages loaded before any text arrived (no `text` column yet): every bot message is
    without text."""
    session = session_row("b" * 24, BOT_B, FIRST_START)
    data = HandData(sessions=[session])
    data.messages = [message_row(session, "outgoing", session["start_time"], None)]
    hand.create("sessions", data.sessions)
    hand.create("messages", data.messages, leave_out=("text", "component_kinds"))
    build_models(hand.pipeline, ModelSettings())
    assert hand.query(f"SELECT last_bot_message, messages_loaded FROM {DROPOFFS}") == [(NO_TEXT, True)]


def test_no_user_words_or_id_reach_any_model(hand: HandWarehouse) -> None:
    """The raw table keeps what users typed and their ids; no model shows either."""
    data = generated_data(seed=11, sessions=60)
    hand.load(data)
    build_models(hand.pipeline, ModelSettings(include_personal_data=False))
    user_words = {m["text"] for m in data.messages if m["message_type"] == "incoming"}
    raw = repr(hand.query("SELECT text, created_by FROM messages"))
    assert all(words in raw for words in user_words) and "u-person-" in raw
    for model in discover_models():
        shown = repr(hand.query(f"SELECT * FROM {model.name}"))
        assert "marmalade" not in shown, f"{model.name} shows a user's words"
        # The sessions' staging views keep the user id, as the README says; nothing else does.
        if model.layer != "staging" or "messages" in model.reads:
            assert "u-person-" not in shown, f"{model.name} shows a user id"
    columns = {row[0] for row in hand.query(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'stg_kore__messages'"
    )}  # fmt: skip
    assert "created_by" not in columns and "text" not in columns and "bot_text" in columns


def test_messages_staging_keeps_the_grain_and_the_bot_text(hand: HandWarehouse) -> None:
    data = generated_data(seed=5, sessions=30)
    hand.load(data)
    build_models(hand.pipeline, ModelSettings())
    rows = hand.query("SELECT message_id, message_type, bot_text, created_at FROM stg_kore__messages")
    assert len(rows) == len({row[0] for row in rows}) == len(data.messages)
    by_id = {m["message_id"]: m for m in data.messages}
    for message_id, kind, text, created in rows:
        source = by_id[message_id]
        assert kind == source["message_type"]
        assert text == (source["text"] if kind == "outgoing" and not source["from_agent"] else None)
        assert created.astimezone(UTC) == source["created_on"]
