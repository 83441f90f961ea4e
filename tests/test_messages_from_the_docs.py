"""The messages resource and its marts, tested from the README alone.

Written from README.md ("Messages: where and why sessions drop off", "Tables", "Message models:
where users leave, conversation turns", "Personal data", the `forget`, `export`, `report` and
`models` commands) and `../shared/spec/messages-api.md`, not from the implementation: every
expectation is computed here, in Python, from the sandbox's own truth
(`visible_sessions()` and `visible_messages(version=2)`), and the command is run as a user runs
it, configured through environment variables and flags only.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import psycopg2
import pytest
from kore_sessions.sandbox import GeneratedSession, SandboxApp, SandboxServer, chat_texts, conversation

from .cli_helpers import DATABASE, cli_env, kore
from .conftest import CLIENT_ID, CLIENT_SECRET, REAL_NOW, make_apps, sessions_up_to_now

# Raised client limits: the rate budget must not be what the tests measure.
FAST_LIMITS = {
    "SOURCES__KORE_SESSIONS__REQUESTS_PER_MINUTE": "100000",
    "SOURCES__KORE_SESSIONS__REQUESTS_PER_HOUR": "1000000",
}
WITH_MESSAGES = ["--resources", "sessions,messages"]
DATASET = "kore_sessions"
# The README's labels for sessions without a usable last bot message.
NO_MESSAGES, NO_BOT_MESSAGE, NO_BOT_TEXT = (
    "(no messages loaded)",
    "(no bot message)",
    "(bot message without text)",
)
OUTCOMES = {"dropOff": "drop_off", "agent": "agent"}
# Shortest user text the privacy checks look for (shorter ones are common words).
MIN_USER_TEXT = 8


# --- the sandbox's truth --------------------------------------------------------------------


def when(text: str) -> datetime:
    """An API timestamp as an aware UTC datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def message_text(message: dict[str, Any]) -> str | None:
    """The words of a message: its components' `data.text`, joined (None when none has any)."""
    parts = [
        component["data"]["text"]
        for component in message.get("components") or []
        if isinstance(component.get("data"), dict) and isinstance(component["data"].get("text"), str)
    ]
    return " ".join(parts) if parts else None


@dataclass(frozen=True)
class Scope:
    """Model settings: which sessions count, and the zone deciding their day."""

    zone: str = "UTC"
    include_developer: bool = False
    include_non_interactive: bool = False
    include_active: bool = False

    def flags(self) -> list[str]:
        flags = ["--time-zone", self.zone]
        flags += ["--include-developer"] if self.include_developer else []
        flags += ["--include-active"] if self.include_active else []
        return flags + (["--include-non-interactive"] if self.include_non_interactive else [])

    def counts(self, view: dict[str, Any]) -> bool:
        """By default (the README) closed, interactive, non-developer sessions."""
        return (
            (view["sessionStatus"] == "closed" or self.include_active)
            and (self.include_non_interactive or view["sessionType"] == "interactive")
            and (self.include_developer or not view["isDeveloper"])
        )

    def day_of(self, view: dict[str, Any]) -> str:
        """The calendar date of the session's start in the reporting zone."""
        return when(view["start_time"]).astimezone(ZoneInfo(self.zone)).date().isoformat()


DEFAULT = Scope()


@dataclass
class Truth:
    """What the sandbox serves: sessions by id, v2 messages by session."""

    sessions: dict[str, dict[str, Any]]
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def of(cls, server: SandboxServer) -> Truth:
        truth = cls({view["sessionId"]: view for view in server.visible_sessions()})
        for message in server.visible_messages(version=2):
            truth.messages.setdefault(message["sessionId"], []).append(message)
        for messages in truth.messages.values():
            messages.sort(key=lambda m: (when(m["createdOn"]), m["_id"]))
        return truth

    def counted(self, scope: Scope = DEFAULT) -> list[dict[str, Any]]:
        return [view for view in self.sessions.values() if scope.counts(view)]


# --- the README's normalisation of the last bot message ---------------------------------------

EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
UUID = re.compile(
    r"(?:\b(?:u|st|ms|cs)-)?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
HEX_RUN = re.compile(r"[0-9a-fA-F]{16,}")
# "runs of digits, with the spaces and signs between them": only what lies between digits.
DIGIT_RUN = re.compile(r"\d+(?:[ +\-]+\d+)*")


def normalised(text: str | None) -> set[str]:
    """The label(s) the README allows for a last bot message.

    The README says `+1 415 555 0199` "is one `<n>`" and `TK-48213` reads `TK-<n>`: whether a
    sign *before* the first digit (the `+`) is swallowed is not said ("signs between them"
    says no, "is one <n>" can be read as yes), so both readings are accepted. Everything else
    is taken literally.
    """
    if text is None:
        return {NO_BOT_TEXT}
    masked = EMAIL.sub("<email>", text)
    masked = UUID.sub("<id>", masked)
    masked = HEX_RUN.sub("<id>", masked)
    between = DIGIT_RUN.sub("<n>", masked)
    leading = re.sub(r"(?<![A-Za-z0-9])[+\-](?=<n>)", "", between)
    labels = set()
    for candidate in (between, leading):
        spaced = re.sub(r" {2,}", " ", re.sub(r"[\t\r\n]", " ", candidate)).strip()
        labels.add(spaced[:200])
    if not "".join(labels).strip():
        return {NO_BOT_TEXT}
    return labels


def test_the_normalisation_follows_the_readme_examples() -> None:
    """The README's own examples, through this file's reading of its rule."""
    assert normalised("call +1 415 555 0199 now") == {"call +<n> now", "call <n> now"}
    assert normalised("Your ticket TK-48213 is open") == {"Your ticket TK-<n> is open"}
    assert normalised("mail jane.doe@example.com") == {"mail <email>"}
    assert normalised("id u-0b4e6a52-1c8e-4a3f-9a55-7d0c2e9f1b3a ok") == {"id <id> ok"}
    assert normalised("hash 0123456789abcdef0123 x") == {"hash <id> x"}
    assert normalised("a\tb\n\n c  ") == {"a b c"}
    assert normalised("Please type the 6-digit code") == {"Please type the <n>-digit code"}
    assert normalised("x" * 300) == {"x" * 200}


@dataclass(frozen=True)
class DropoffKey:
    day: str
    bot_id: str
    outcome: str


def expected_dropoffs(
    truth: Truth, scope: Scope = DEFAULT
) -> dict[DropoffKey, list[tuple[frozenset[str], str]]]:
    """Per day x bot x outcome: (allowed labels, session id) of every counted drop-off or
    agent session, by the README's rule for its last bot message."""
    found: dict[DropoffKey, list[tuple[frozenset[str], str]]] = defaultdict(list)
    for view in truth.counted(scope):
        outcome = OUTCOMES.get(view["containmentType"])
        if outcome is None:
            continue
        messages = truth.messages.get(view["sessionId"], [])
        bot = [m for m in messages if m["type"] == "outgoing"]
        if not messages:
            labels = {NO_MESSAGES}
        elif not bot:
            labels = {NO_BOT_MESSAGE}
        else:
            labels = normalised(message_text(bot[-1]))
        key = DropoffKey(scope.day_of(view), view["botId"], outcome)
        found[key].append((frozenset(labels), view["sessionId"]))
    return found


def percentile_cont(values: list[float], fraction: float) -> float | None:
    """A continuous percentile (linear interpolation), as SQL's PERCENTILE_CONT."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def expected_turns(truth: Truth, scope: Scope = DEFAULT) -> dict[tuple[str, str], dict[str, Any]]:
    """`fct_conversation_turns_daily` by the README, per (day, bot)."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    responses: dict[tuple[str, str], list[float]] = defaultdict(list)
    for view in truth.counted(scope):
        key = (scope.day_of(view), view["botId"])
        row = rows.setdefault(
            key,
            dict.fromkeys(
                (
                    "sessions",
                    "sessions_with_messages",
                    "incoming_messages",
                    "outgoing_messages",
                    "sessions_with_incoming",
                    "sessions_without_bot_answer",
                ),
                0,
            ),
        )
        row["sessions"] += 1
        messages = truth.messages.get(view["sessionId"], [])
        if not messages:
            continue
        row["sessions_with_messages"] += 1
        incoming = [m for m in messages if m["type"] == "incoming"]
        outgoing = [m for m in messages if m["type"] == "outgoing"]
        row["incoming_messages"] += len(incoming)
        row["outgoing_messages"] += len(outgoing)
        if not incoming:
            continue
        row["sessions_with_incoming"] += 1
        first = min(when(m["createdOn"]) for m in incoming)
        answers = [when(m["createdOn"]) for m in outgoing if when(m["createdOn"]) >= first]
        if answers:
            responses[key].append((min(answers) - first).total_seconds())
        else:
            row["sessions_without_bot_answer"] += 1
    for key, row in rows.items():
        with_messages = row["sessions_with_messages"]
        row["incoming_per_session"] = row["incoming_messages"] / with_messages if with_messages else None
        row["outgoing_per_session"] = row["outgoing_messages"] / with_messages if with_messages else None
        row["first_response_p50_seconds"] = percentile_cont(responses[key], 0.5)
        row["first_response_p90_seconds"] = percentile_cont(responses[key], 0.9)
    return rows


# --- the command ----------------------------------------------------------------------------


@dataclass
class World:
    """A sandbox, a folder and the environment of the command that loaded it."""

    server: SandboxServer
    cwd: Path
    env: dict[str, str]
    outputs: list[str] = field(default_factory=list)
    # The crafted sessions' ids, by what they test.
    crafted: dict[str, str] = field(default_factory=dict)
    # The API requests of the first load.
    first_load: list[Any] = field(default_factory=list)
    # Where the warehouse is: its dataset, and a PostgreSQL DSN (None: the DuckDB file).
    dataset: str = DATASET
    dsn: str | None = None

    def run(self, *args: str, expect: int = 0) -> Any:
        done = kore(list(args), self.env, self.cwd)
        self.outputs += [done.stdout, done.stderr]
        assert done.returncode == expect, (
            f"kore-sessions {' '.join(args)}: exit {done.returncode}\n{done.stdout[-3000:]}\n"
            f"{done.stderr[-3000:]}"
        )
        return done

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        if self.dsn:
            with psycopg2.connect(self.dsn) as connection, connection.cursor() as cursor:
                cursor.execute(sql)
                return [tuple(row) for row in cursor.fetchall()]
        with duckdb.connect(str(self.cwd / DATABASE), read_only=True) as con:
            return con.sql(sql).fetchall()


# Drop-off prompts and agent hand-overs added to the sandbox's own, with the label the README's
# rule gives each (written by hand from the README, not by `normalised`).
CRAFTED_DROP_OFF = {
    "Your reference is u-0b4e6a52-1c8e-4a3f-9a55-7d0c2e9f1b3a, keep it": "Your reference is <id>, keep it",
    "Bot st-0a1b2c3d-2222-4333-8444-555555555555 is down": "Bot <id> is down",
    "Session 6F9619FF-8B86-4011-B42D-00C04FC964FF FAILED": "Session <id> FAILED",
    "Order 5f3a9c2e4b1d8f7a6c5e4d3b not found": "Order <id> not found",
    "Card 4111111111111111 was declined": "Card <id> was declined",
    "Write to jane_doe99@mail.example.co.uk or call 0800 123 456": "Write to <email> or call <n>",
    "Call 415-555-0199 today, ask for desk 7": "Call <n> today, ask for desk <n>",
    "Line one\nline two\t\tend  ": "Line one line two end",
    "Terms: " + "abcdefghij" * 30: ("Terms: " + "abcdefghij" * 30)[:200],
    "": NO_BOT_TEXT,
    "Token DEADBEEFDEADBEEF42 expired": "Token <id> expired",
    "Mail 0123456789abcdef0123@corp.example.com now": "Mail <email> now",
    "Code 12   34 ok": "Code <n> ok",
    "Merci, à bientôt " + "é" * 250: ("Merci, à bientôt " + "é" * 250)[:200],
}
CRAFTED_AGENT = {"  Transferring   you\r\nto an  agent ": "Transferring you to an agent"}


def crafted_sessions(history: list[GeneratedSession]) -> dict[str, GeneratedSession]:
    """Sessions made to hit the README's corner cases, by what they test."""
    template = next(s for s in history if s.session_type == "interactive" and not s.is_developer)
    yesterday = (REAL_NOW - timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    made = {
        # Starts before midnight UTC, talks after it: all of it counts on the start's day.
        "midnight": replace(
            template,
            session_id="ab" * 12,
            start=yesterday - timedelta(seconds=20),
            end=yesterday + timedelta(minutes=25),
            visible_at=None,
            containment="dropOff",
            messages=12,
        ),
        # An agent transfer without a single message: "(no messages loaded)" (non-interactive: the
        # sandbox makes no interactive session without messages), counted with
        # --include-non-interactive.
        "no messages": replace(
            template,
            session_type="non-interactive",
            session_id="cd" * 12,
            start=yesterday + timedelta(hours=5),
            end=yesterday + timedelta(hours=5, minutes=3),
            visible_at=None,
            containment="agent",
            messages=0,
        ),
    }
    # Messages created in the same millisecond: the last bot message is the last by created_at,
    # *then message id*, which here is not the closing prompt.
    for attempt in range(2000):
        candidate = replace(
            template,
            session_id=f"{attempt:024x}",
            start=yesterday + timedelta(hours=7, seconds=attempt),
            end=yesterday + timedelta(hours=7, seconds=attempt, milliseconds=2),
            visible_at=None,
            containment="dropOff",
            messages=6,
        )
        bot = [m for m in conversation(candidate) if m.type == "outgoing" and m.ms not in (0, 2)]
        last = max(bot, key=lambda m: (m.created, m.message_id))
        if last.text != bot[-1].text:
            made["tie"] = candidate
            break
    assert "tie" in made, "no session with a tie found"
    # The user wrote; the bot's answer arrives late (after the sandbox's now): a session with
    # messages but no bot message, and one "without bot answer".
    for attempt in range(2000):
        candidate = replace(
            template,
            session_id=f"{attempt:024x}"[::-1],
            start=REAL_NOW - timedelta(minutes=6),
            end=REAL_NOW - timedelta(minutes=1),
            visible_at=None,
            containment="dropOff",
            messages=2,
        )
        first, last = conversation(candidate)
        if first.visible_at <= REAL_NOW < last.visible_at:
            made["unanswered"] = candidate
            break
    assert "unanswered" in made, "no session with a late bot answer found"
    return made


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Three days of two bots served at the real now (with the crafted prompts and sessions),
    loaded with messages, models built."""
    with pytest.MonkeyPatch.context() as patch:
        # Crafted prompts weigh 8 times the sandbox's own, in twice the sessions: whatever the
        # real now, nearly every one ends some closed session (fewer made this test fail at
        # some times of day).
        crafted_drop_offs = (*chat_texts.DROP_OFF_PROMPTS, *(list(CRAFTED_DROP_OFF) * 8))
        patch.setattr(chat_texts, "DROP_OFF_PROMPTS", crafted_drop_offs)
        crafted_handoffs = (*chat_texts.AGENT_HANDOFF_TEXTS, *(list(CRAFTED_AGENT) * 3))
        patch.setattr(chat_texts, "AGENT_HANDOFF_TEXTS", crafted_handoffs)
        history = sessions_up_to_now(days=3, per_day=80, seed=57)
        crafted = crafted_sessions(history)
        cwd = tmp_path_factory.mktemp("messages_world")
        with SandboxServer([*history, *crafted.values()], apps=make_apps(), now=REAL_NOW) as server:
            made = World(server, cwd, cli_env(server, cwd, **FAST_LIMITS))
            made.crafted = {name: s.session_id for name, s in crafted.items()}
            made.run("load", *WITH_MESSAGES)
            made.first_load = server.requests
            made.run("models")
            yield made


# --- the request plan -------------------------------------------------------------------------


def test_messages_cost_one_request_per_channel_and_window(world: World) -> None:
    """The README's plan: POST getMessagesV2 on the bot route, each window (under 7 days) asked
    once per channel the bot's sessions came on, 10,000 a page: with fewer messages than that,
    exactly one request per bot, window and channel."""
    asked: dict[tuple[str, str, str], Counter[str]] = defaultdict(Counter)
    for record in world.first_load:
        if "getMessages" not in record.path:
            continue
        assert record.method == "POST" and record.path.endswith(f"/bot/{record.bot_id}/getMessagesV2")
        body = record.body or {}
        assert body.get("limit") == 10000 and body.get("skip") == 0, body
        assert when(body["dateTo"]) - when(body["dateFrom"]) < timedelta(days=7), body
        asked[(record.bot_id, body["dateFrom"], body["dateTo"])][body.get("channelType")] += 1
    assert asked, "no message was asked for"
    for (bot_id, date_from, date_to), channels in asked.items():
        wanted = {view["channel"] for view in world.server.visible_sessions(bot_id)}
        assert dict(channels) == dict.fromkeys(wanted, 1), f"{bot_id} {date_from}..{date_to}"


# --- 1. where sessions drop off ---------------------------------------------------------------


def dropoff_rows(world: World) -> list[tuple[Any, ...]]:
    return world.query(
        "SELECT CAST(day AS VARCHAR), bot_id, outcome, last_bot_message, sessions, share, "
        f"reporting_time_zone FROM {world.dataset}.fct_dropoff_points"
    )


def test_messages_are_loaded_as_the_sandbox_serves_them(world: World) -> None:
    """The premise of the marts' tests: `messages` holds every v2 message the sandbox serves."""
    served = {m["_id"]: m for m in world.server.visible_messages(version=2)}
    loaded = dict(world.query(f"SELECT message_id, session_id FROM {DATASET}.messages"))
    missing, extra = sorted(set(served) - set(loaded)), sorted(set(loaded) - set(served))
    assert not missing and not extra, f"{len(missing)} messages missing, {len(extra)} not served"
    assert all(loaded[i] == m["sessionId"] for i, m in served.items())


def check_dropoff_counts(world: World, scope: Scope) -> None:
    """Unambiguous part: per day x bot x outcome, how many sessions the mart counts."""
    wanted = {
        (key.day, key.bot_id, key.outcome): len(found)
        for key, found in expected_dropoffs(Truth.of(world.server), scope).items()
    }
    got: Counter[tuple[str, str, str]] = Counter()
    for day, bot_id, outcome, _label, sessions, _share, zone in dropoff_rows(world):
        assert zone == scope.zone
        got[(day, bot_id, outcome)] += sessions
    assert dict(got) == wanted


def check_dropoff_points(world: World, scope: Scope) -> None:
    """Every (day, bot, outcome, last bot message) row: its sessions and share, by the README's
    normalisation of the last outgoing message (by created_at, then message id)."""
    expected = expected_dropoffs(Truth.of(world.server), scope)
    rows = dropoff_rows(world)
    assert rows, "fct_dropoff_points is empty"
    by_key: dict[DropoffKey, dict[str, tuple[int, float]]] = defaultdict(dict)
    for day, bot_id, outcome, label, sessions, share, zone in rows:
        assert zone == scope.zone
        key = DropoffKey(day, bot_id, outcome)
        assert label not in by_key[key], f"label {label!r} twice for {key}"
        by_key[key][label] = (sessions, share)
    assert set(by_key) == set(expected)
    problems = []
    for key, found in expected.items():
        # Group the expected sessions by label, each under the mart's label among those allowed.
        wanted: Counter[str] = Counter()
        for labels, _session_id in found:
            chosen = [label for label in by_key[key] if label in labels]
            wanted[chosen[0] if chosen else f"<absent: one of {sorted(labels)}>"] += 1
        total = sum(wanted.values())
        got = {label: sessions for label, (sessions, _share) in by_key[key].items()}
        if got != dict(wanted):
            problems.append(f"{key}: mart {got} != expected {dict(wanted)}")
            continue
        for label, (sessions, share) in by_key[key].items():
            if not math.isclose(float(share), sessions / total, rel_tol=1e-9):
                problems.append(f"{key} {label!r}: share {share} != {sessions}/{total}")
    assert not problems, "\n".join(problems[:20])


def test_dropoff_sessions_per_day_bot_outcome(world: World) -> None:
    check_dropoff_counts(world, DEFAULT)


def test_dropoff_points_equal_the_readme_computation(world: World) -> None:
    check_dropoff_points(world, DEFAULT)


def test_each_crafted_prompt_reads_as_the_readme_says(world: World) -> None:
    """The masks, whitespace, cut and empty-text rule on prompts written for them, against
    labels written by hand; and the corner-case sessions."""
    truth = Truth.of(world.server)
    ended_on: dict[str, set[str]] = defaultdict(set)
    for view in truth.counted():
        bot = [m for m in truth.messages.get(view["sessionId"], []) if m["type"] == "outgoing"]
        if view["containmentType"] in OUTCOMES and bot:
            ended_on[message_text(bot[-1]) or ""].add(view["sessionId"])
    labels = {row[3] for row in dropoff_rows(world)}
    crafted = {**CRAFTED_DROP_OFF, **CRAFTED_AGENT}
    met = [prompt for prompt in crafted if ended_on.get(prompt)]
    assert len(met) >= len(crafted) - 2, f"too few crafted prompts ended a session: {met}"
    missing = {prompt: crafted[prompt] for prompt in met if crafted[prompt] not in labels}
    assert not missing, f"labels missing from fct_dropoff_points (prompt: label): {missing}"
    assert not {label for label in labels if len(label) > 200}, "a label longer than 200 characters"

    sessions = world.crafted
    in_mart = dict(
        world.query(
            f"SELECT session_id, day FROM {DATASET}.fct_sessions "
            f"WHERE session_id IN ('{sessions['midnight']}', '{sessions['no messages']}')"
        )
    )
    assert len(in_mart) == 2, "the crafted sessions are not in fct_sessions"
    assert NO_BOT_MESSAGE in labels, "a drop-off whose only message is the user's is not '(no bot message)'"
    unanswered = world.query(
        f"SELECT SUM(sessions_without_bot_answer) FROM {DATASET}.fct_conversation_turns_daily"
    )
    assert unanswered[0][0] >= 1, "the session whose bot answer has not arrived is not counted"


def test_the_message_marts_read_the_same_on_postgres(
    world: World, postgres_dsn: str, postgres_dataset: str, tmp_path: Path
) -> None:
    """The README builds the models on DuckDB and PostgreSQL alike (the masks with
    REGEXP_SPLIT_TO_ARRAY on both): the same sandbox loaded into PostgreSQL gives the same marts."""
    env = cli_env(world.server, tmp_path, **FAST_LIMITS, DESTINATION__POSTGRES__CREDENTIALS=postgres_dsn)
    on_postgres = World(world.server, tmp_path, env, dataset=postgres_dataset, dsn=postgres_dsn)
    on_postgres.run("load", *WITH_MESSAGES, "--destination", "postgres", "--dataset", postgres_dataset)
    check_dropoff_counts(on_postgres, DEFAULT)
    check_dropoff_points(on_postgres, DEFAULT)
    check_turns(on_postgres, DEFAULT)
    assert sorted(dropoff_rows(on_postgres)) == sorted(dropoff_rows(world)), "DuckDB and PostgreSQL differ"


# --- 2. conversation turns ----------------------------------------------------------------------

TURN_COLUMNS = [
    "sessions",
    "sessions_with_messages",
    "incoming_messages",
    "outgoing_messages",
    "sessions_with_incoming",
    "sessions_without_bot_answer",
    "incoming_per_session",
    "outgoing_per_session",
    "first_response_p50_seconds",
    "first_response_p90_seconds",
]


def check_turns(world: World, scope: Scope) -> None:
    expected = expected_turns(Truth.of(world.server), scope)
    rows = world.query(
        f"SELECT CAST(day AS VARCHAR), bot_id, reporting_time_zone, {', '.join(TURN_COLUMNS)} "
        f"FROM {world.dataset}.fct_conversation_turns_daily"
    )
    got = {}
    for day, bot, zone, *values in rows:
        assert zone == scope.zone
        got[(day, bot)] = dict(zip(TURN_COLUMNS, values, strict=True))
    assert set(got) == set(expected)
    problems = []
    for key, wanted in expected.items():
        for column in TURN_COLUMNS:
            have, want = got[key][column], wanted[column]
            same = (
                have is None and want is None
                if have is None or want is None
                else math.isclose(float(have), float(want), rel_tol=1e-9, abs_tol=1e-3)
            )
            if not same:
                problems.append(f"{key} {column}: mart {have} != expected {want}")
    assert not problems, "\n".join(problems[:30])


def test_conversation_turns_equal_the_readme_computation(world: World) -> None:
    check_turns(world, DEFAULT)


def test_turn_sessions_match_daily_containment(world: World) -> None:
    """`sessions` is every counted session, "as fct_containment_daily"."""
    turns = world.query(
        f"SELECT CAST(day AS VARCHAR), bot_id, sessions FROM {world.dataset}.fct_conversation_turns_daily"
    )
    daily = world.query(
        f"SELECT CAST(day AS VARCHAR), bot_id, sessions FROM {world.dataset}.fct_containment_daily"
    )
    assert {(d, b): s for d, b, s in turns if s} == {(d, b): s for d, b, s in daily if s}


@pytest.mark.parametrize(
    "scope",
    [
        Scope(zone="Pacific/Kiritimati"),
        Scope(
            "America/Los_Angeles", include_developer=True, include_non_interactive=True, include_active=True
        ),
    ],
    ids=["utc+14", "los-angeles-every-session"],
)
def test_message_marts_follow_the_model_settings(world: World, scope: Scope) -> None:
    """The reporting zone decides the day, the include flags the sessions, of both marts."""
    try:
        world.run("models", *scope.flags())
        check_dropoff_counts(world, scope)
        check_dropoff_points(world, scope)
        check_turns(world, scope)
        if scope.include_non_interactive:
            labels = {row[3] for row in dropoff_rows(world)}
            assert NO_MESSAGES in labels, "an agent session without messages is not '(no messages loaded)'"
    finally:
        world.run("models", *DEFAULT.flags())


# --- 3. no user text anywhere -----------------------------------------------------------------


def user_texts(server: SandboxServer) -> set[str]:
    """What users typed (incoming `data.text`, 8+ characters) that no bot message, session
    field or tag holds as well (those may appear legitimately)."""
    messages = server.visible_messages(version=1)
    typed = {
        text
        for m in messages
        if m["type"] == "incoming"
        for c in m.get("components") or []
        if isinstance(c.get("data"), dict)
        and isinstance(text := c["data"].get("text"), str)
        and len(text) >= MIN_USER_TEXT
    }
    elsewhere = "\n".join(
        [json.dumps(m) for m in messages if m["type"] != "incoming"]
        + [json.dumps(view) for view in server.visible_sessions()]
    )
    return {text for text in typed if text not in elsewhere and json.dumps(text)[1:-1] not in elsewhere}


def leaks(haystack: str, texts: set[str]) -> set[str]:
    """The texts found in `haystack`, as typed, HTML-escaped or JSON-escaped."""
    return {
        text
        for text in texts
        if text in haystack or html.escape(text) in haystack or json.dumps(text)[1:-1] in haystack
    }


def text_columns(database: Path) -> Iterator[tuple[str, str]]:
    """(schema.table.column, its distinct values joined) for every text column of every table
    and view, in every schema of the file."""
    with duckdb.connect(str(database), read_only=True) as con:
        columns = con.sql(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns "
            "WHERE data_type IN ('VARCHAR', 'JSON') OR data_type LIKE '%VARCHAR%' "
            "OR data_type LIKE 'STRUCT%' OR data_type LIKE 'MAP%'"
        ).fetchall()
        assert columns, "no text column found"
        for schema, table, column in columns:
            rows = con.sql(
                f'SELECT DISTINCT CAST("{column}" AS VARCHAR) FROM "{schema}"."{table}" '
                f'WHERE "{column}" IS NOT NULL'
            ).fetchall()
            yield f"{schema}.{table}.{column}", "\n".join(value for (value,) in rows)


def exported_and_reported(world: World, folder: Path) -> dict[str, str]:
    """What `export` (both formats) and `report` write, and what they print: by where."""
    written: dict[str, str] = {}
    for fmt in ("parquet", "csv"):
        target = folder / f"export_{fmt}"
        done = world.run("export", "--format", fmt, str(target))
        files = sorted(target.glob(f"*.{fmt}"))
        assert files, f"export --format {fmt} wrote nothing"
        for path in files:
            assert path.name in done.stdout, f"export does not print {path.name}"
            if fmt == "csv":
                written[f"export {path.name}"] = path.read_text(encoding="utf-8")
            else:
                with duckdb.connect() as con:
                    rows = con.sql(f"SELECT * FROM read_parquet('{path}')").fetchall()
                written[f"export {path.name}"] = "\n".join(str(row) for row in rows)
    report = folder / "report.html"
    done = world.run("report", "--output", str(report))
    written["report"] = report.read_text(encoding="utf-8")
    return written


# Raw personal-looking parts of the crafted bot prompts: the marts mask them, so neither the
# export (the marts) nor the report may show them.
PROMPT_PARTS = [
    "jane.doe@example.com",
    "jane_doe99@mail.example.co.uk",
    "415 555 0199",
    "415-555-0199",
    "4111111111111111",
    "0b4e6a52-1c8e-4a3f-9a55-7d0c2e9f1b3a",
    "5f3a9c2e4b1d8f7a6c5e4d3b",
    "6F9619FF-8B86-4011-B42D-00C04FC964FF",
]


def test_user_text_is_nowhere_by_default(world: World, tmp_path: Path) -> None:
    texts = user_texts(world.server)
    assert len(texts) >= 5, "the sandbox gave too few user texts to look for"
    # The user texts are loaded as lengths: the incoming messages are there, their text is not.
    incoming = world.query(
        f"SELECT COUNT(*), COUNT(text), COUNT(text_length) FROM {DATASET}.messages "
        "WHERE message_type = 'incoming'"
    )
    assert incoming[0][0] > 0 and incoming[0][1] == 0 and incoming[0][2] == incoming[0][0]
    components = world.query(
        f"SELECT COUNT(*), COUNT(c.text) FROM {DATASET}.messages__components c "
        f"JOIN {DATASET}.messages m USING (message_id) WHERE m.message_type = 'incoming'"
    )
    assert components[0][0] > 0 and components[0][1] == 0

    found: dict[str, set[str]] = defaultdict(set)
    for where, values in text_columns(world.cwd / DATABASE):
        found[where] |= leaks(values, texts)
    written = exported_and_reported(world, tmp_path)
    marts = {where.split()[1].split(".")[0] for where in written if where.startswith("export ")}
    assert {"fct_dropoff_points", "fct_conversation_turns_daily"} <= marts
    assert "Where users leave" in written["report"]
    for where, content in written.items():
        found[where] |= leaks(content, texts)
    for index, output in enumerate(world.outputs):
        found[f"command output #{index}"] |= leaks(output, texts)
    assert not {where: t for where, t in found.items() if t}, {
        where: sorted(t)[:3] for where, t in found.items() if t
    }

    shown = {where: [part for part in PROMPT_PARTS if part in content] for where, content in written.items()}
    assert not {where: parts for where, parts in shown.items() if parts}, "unmasked bot text shown"


class TableRows(HTMLParser):
    """Every table row of a page, as the texts of its cells."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self.rows:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def test_the_report_lists_each_bots_top_last_messages(world: World, tmp_path: Path) -> None:
    """The report's "Where users leave": per bot, the five last bot messages most drop-off sessions ended on,
    and apart the agent transfers', over the report's complete days (today left out), with
    their sessions and share of the bot's sessions of that outcome (summed counts)."""
    report = tmp_path / "report.html"
    world.run("report", "--output", str(report))
    today = datetime.now(UTC).date().isoformat()
    totals: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for day, bot_id, outcome, label, sessions, _share, _zone in dropoff_rows(world):
        if day < today:
            totals[(bot_id, outcome)][label] += sessions
    page = report.read_text(encoding="utf-8")
    section = page[page.index("Where users leave") :]
    parser = TableRows()
    parser.feed(section[: section.index("</table>")])
    shown: dict[tuple[str, str], dict[str, tuple[str, str]]] = defaultdict(dict)
    group: tuple[str, str] | None = None
    for cells in parser.rows:
        if len(cells) == 1:
            bot = next((b for b, _ in totals if b in cells[0]), None)
            outcome = "drop_off" if "drop" in cells[0].lower() else "agent"
            group = (bot, outcome) if bot else None
        elif group and len(cells) == 3:
            shown[group][cells[0]] = (cells[1], cells[2])
    problems = []
    for key, counts in totals.items():
        ranked = counts.most_common()
        # Labels that are in the top five whichever way ties are broken.
        fifth = ranked[4][1] if len(ranked) > 5 else 0
        sure = {label for label, n in ranked if n > fifth}
        if len(shown[key]) > 5:
            problems.append(f"{key}: {len(shown[key])} messages listed, more than five")
        total = sum(counts.values())
        for label in sure:
            if label not in shown[key]:
                problems.append(f"{key}: {label!r} ({counts[label]} sessions) not listed")
                continue
            sessions, share = shown[key][label]
            if sessions.replace(",", "") != str(counts[label]):
                problems.append(f"{key} {label!r}: {sessions} sessions shown, {counts[label]} expected")
            percent = float(share.rstrip("% "))
            if abs(percent - 100 * counts[label] / total) > 0.051:
                problems.append(f"{key} {label!r}: share {share}, expected {counts[label]}/{total}")
    assert totals and not problems, "\n".join(problems)


def test_export_writes_the_message_marts_whole_and_ordered(world: World, tmp_path: Path) -> None:
    """`export` writes every mart, "ordered by its key", and prints each file with its row count;
    the CSV reads back as the table (labels with commas included)."""
    marts = {
        "fct_dropoff_points": ["day", "bot_id", "outcome", "last_bot_message"],
        "fct_conversation_turns_daily": ["day", "bot_id"],
    }
    for fmt in ("csv", "parquet"):
        folder = tmp_path / fmt
        done = world.run("export", "--format", fmt, str(folder))
        for mart, key in marts.items():
            path = folder / f"{mart}.{fmt}"
            table = world.query(f"SELECT * FROM {DATASET}.{mart}")
            with duckdb.connect() as con:
                reader = f"read_csv('{path}', all_varchar=true)" if fmt == "csv" else None
                reader = reader or f"read_parquet('{path}')"
                columns = [c for (c, *_rest) in con.sql(f"DESCRIBE SELECT * FROM {reader}").fetchall()]
                rows = con.sql(f"SELECT {', '.join(key)} FROM {reader}").fetchall()
                count = con.sql(f"SELECT COUNT(*) FROM {reader}").fetchall()[0][0]
            assert count == len(table), f"{path.name}: {count} rows, the table has {len(table)}"
            assert set(key) <= set(columns)
            keys = [tuple(str(v) for v in row) for row in rows]
            assert keys == sorted(keys), f"{path.name} is not ordered by its key"
            wanted = sorted(
                tuple(str(v) for v in row)
                for row in world.query(f"SELECT {', '.join(key)} FROM {DATASET}.{mart}")
            )
            assert sorted(keys) == wanted, f"{path.name} does not hold the table's keys"
            line = next(line for line in done.stdout.splitlines() if path.name in line)
            assert str(count) in line.replace(",", ""), f"row count missing from {line!r}"


# --- the tables the README lists ----------------------------------------------------------------

MESSAGE_COLUMNS = [
    *("message_id", "session_id", "bot_id", "message_type", "status", "created_on", "modified_on"),
    *("timestamp_value", "channel", "lang", "message_source", "is_developer", "is_builder"),
    *("created_by", "component_kinds", "text_length", "text"),
]


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def json_value(text: str | None, value_type: str) -> Any:
    """A tag value read back from its text and JSON type."""
    return text if value_type == "string" else json.loads(text) if text is not None else None


def test_message_tables_hold_what_the_readme_lists(world: World) -> None:
    served = {m["_id"]: m for m in world.server.visible_messages(version=2)}
    rows = world.query(f"SELECT {', '.join(MESSAGE_COLUMNS)} FROM {DATASET}.messages")
    problems: list[str] = []
    for values in rows:
        row = dict(zip(MESSAGE_COLUMNS, values, strict=True))
        message = served[row["message_id"]]
        text = message_text(message)
        wanted = {
            "session_id": message["sessionId"],
            "bot_id": message["botId"],
            "message_type": message["type"],
            "status": message["status"],
            "created_on": when(message["createdOn"]),
            "modified_on": when(message["lmodifiedOn"]),
            "timestamp_value": message["timestampValue"],
            "channel": message["chnl"],
            "lang": message["lang"],
            "message_source": str(message["ms"]),
            "is_developer": bool(message["isD"]),
            "is_builder": bool(message["isBB"]),
            "created_by": message["createdBy"],
            "component_kinds": ",".join(c["cT"] for c in message["components"]),
            "text_length": len(text or ""),
        }
        if message["type"] == "outgoing":
            wanted["text"] = text
        elif message["type"] == "incoming":
            wanted["text"] = None
        for column, want in wanted.items():
            have = row[column]
            have = bool(have) if column.startswith("is_") else have
            have = have.astimezone(UTC) if isinstance(have, datetime) else have
            if have != want:
                problems.append(f"{row['message_id']} {column}: {have!r} != {want!r}")

    components = world.query(
        "SELECT message_id, position, component_id, kind, text_length, text "
        f"FROM {DATASET}.messages__components"
    )
    by_message: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for message_id, *rest in components:
        by_message[message_id].append(tuple(rest))
    for message_id, message in served.items():
        incoming = message["type"] == "incoming"
        want = [
            (c["_id"], c["cT"], len(c["data"]["text"]), None if incoming else c["data"]["text"])
            for c in message["components"]
        ]
        have = [rest[1:] for rest in sorted(by_message.get(message_id, []))]
        if message["type"] == "ctrlmsg":  # whether a control message's text is "the bot's words": unsaid
            want, have = [w[:3] for w in want], [h[:3] for h in have]
        if have != want:
            problems.append(f"{message_id} components: {have} != {want}")

    tags: dict[str, set[tuple[str, str, Any, str]]] = defaultdict(set)
    for message_id, scope, name, value, value_type in world.query(
        f"SELECT message_id, scope, name, value, value_type FROM {DATASET}.messages__tags"
    ):
        tags[message_id].add((scope, name, canonical(json_value(value, value_type)), value_type))
    types = {str: "string", bool: "boolean", int: "number", float: "number", dict: "object", list: "array"}
    for message_id, message in served.items():
        want_tags = {
            (scope, t["name"], canonical(t["value"]), types.get(type(t["value"]), "null"))
            for scope, key in (("message", "messageTags"), ("user", "userTags"), ("session", "sessionTags"))
            for t in message["tags"][key]
        }
        if tags.get(message_id, set()) != want_tags:
            problems.append(f"{message_id} tags: {tags.get(message_id)} != {want_tags}")
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:20])


def test_the_staging_view_holds_no_user_text_nor_user_id(world: World) -> None:
    columns = {
        name
        for (name,) in world.query(
            "SELECT column_name FROM information_schema.columns "
            f"WHERE table_schema = '{DATASET}' AND table_name = 'stg_kore__messages'"
        )
    }
    wanted = {
        *("message_id", "session_id", "bot_id", "message_type", "message_status", "created_at"),
        *("modified_at", "channel", "language", "message_source", "is_developer", "is_builder"),
        *("component_kinds", "text_length", "bot_text"),
    }
    assert wanted <= columns, f"missing: {sorted(wanted - columns)}"
    assert not columns & {"created_by", "text", "user_id"}, sorted(columns)
    non_bot = world.query(
        f"SELECT COUNT(bot_text) FROM {DATASET}.stg_kore__messages WHERE message_type <> 'outgoing'"
    )
    assert non_bot == [(0,)], "bot_text holds text of messages that are not the bot's"


# --- what users typed, when asked to keep it ----------------------------------------------------


def test_store_user_text_keeps_it_in_the_raw_tables_only(tmp_path: Path) -> None:
    """With `--store-user-text` the raw tables keep what users typed; the staging view, the marts,
    the export and the report still show none of it."""
    history = sessions_up_to_now(days=1, per_day=40, seed=60)
    with SandboxServer(history, apps=make_apps(), now=REAL_NOW) as server:
        world = World(server, tmp_path, cli_env(server, tmp_path, **FAST_LIMITS))
        world.run("load", *WITH_MESSAGES, "--store-user-text")
        texts = user_texts(server)
        assert len(texts) >= 5
        raw = {text for (text,) in world.query(f"SELECT text FROM {DATASET}.messages WHERE text IS NOT NULL")}
        assert texts <= raw, "store_user_text did not keep what users typed"
        found: dict[str, set[str]] = defaultdict(set)
        raw_tables = ("messages", "messages__components", "_dlt_")
        for where, values in text_columns(tmp_path / DATABASE):
            _schema, table, _column = where.split(".")
            if not table.startswith(raw_tables):
                found[where] |= leaks(values, texts)
        for where, content in exported_and_reported(world, tmp_path / "out").items():
            found[where] |= leaks(content, texts)
        for index, output in enumerate(world.outputs):
            found[f"command output #{index}"] |= leaks(output, texts)
        assert not {where: t for where, t in found.items() if t}, {
            where: sorted(t)[:3] for where, t in found.items() if t
        }


# --- messages of open sessions ------------------------------------------------------------------


def test_messages_of_open_sessions_arrive_on_later_runs(tmp_path: Path) -> None:
    """Open sessions keep receiving messages until they close; a later run reaches back to them,
    so after the clock moves on the warehouse holds every message served, once."""
    history = sessions_up_to_now(days=1, per_day=80, seed=61, ahead=timedelta(minutes=30))
    # One session surely open at the sandbox's now, whatever the clock generated: it goes on for
    # 40 minutes more, its messages arriving as the clock moves.
    template = next(s for s in history if s.session_type == "interactive" and not s.is_developer)
    going_on = replace(
        template,
        session_id="0e" * 12,
        start=REAL_NOW - timedelta(minutes=20),
        end=REAL_NOW + timedelta(minutes=40),
        visible_at=None,
        messages=12,
    )
    with SandboxServer([*history, going_on], apps=make_apps(), now=REAL_NOW) as server:
        world = World(server, tmp_path, cli_env(server, tmp_path, **FAST_LIMITS))
        world.run("load", *WITH_MESSAGES)
        open_before = [v for v in server.visible_sessions() if v["sessionStatus"] == "active"]
        assert open_before, "no open session to follow"
        before = len(server.visible_messages(version=2))
        # Less than the hour the loader reads past its own clock: what the server shows by then
        # is all due in this run (a server further ahead is read by later runs, as the README says).
        server.advance(timedelta(minutes=45))
        assert len(server.visible_messages(version=2)) > before, "no message arrived meanwhile"
        world.run("load", *WITH_MESSAGES)
        served = {m["_id"] for m in server.visible_messages(version=2)}
        loaded = [i for (i,) in world.query(f"SELECT message_id FROM {DATASET}.messages")]
        assert len(loaded) == len(set(loaded)), "a message loaded twice"
        missing = served - set(loaded)
        assert not missing, f"{len(missing)} of {len(served)} messages missing after the clock moved on"
        check_dropoff_counts(world, DEFAULT)
        check_turns(world, DEFAULT)


# --- 4. forget ----------------------------------------------------------------------------------


def test_forget_removes_a_users_messages_and_later_loads_keep_them_out(tmp_path: Path) -> None:
    """`forget --user-id` on a person whose session is still open: their messages go (from the
    dataset and its staging dataset), and neither the messages that keep arriving in that
    session, nor a lookback, nor a bounded backfill over the whole history brings any back."""
    history = sessions_up_to_now(days=2, per_day=40, seed=58, ahead=timedelta(minutes=30))
    # The person: a session closed yesterday, and one open now that goes on for 40 minutes.
    user = "u-5e1f4c2a-7b3d-4e8f-9a1b-000000000e1a"
    template = next(s for s in history if s.session_type == "interactive" and not s.is_developer)
    theirs_made = [
        replace(
            template,
            session_id="e1" * 12,
            user_id=user,
            start=REAL_NOW - timedelta(days=1, hours=2),
            end=REAL_NOW - timedelta(days=1, hours=1, minutes=40),
            visible_at=None,
            containment="dropOff",
            messages=8,
        ),
        replace(
            template,
            session_id="e2" * 12,
            user_id=user,
            start=REAL_NOW - timedelta(minutes=20),
            end=REAL_NOW + timedelta(minutes=40),
            visible_at=None,
            containment="agent",
            messages=12,
        ),
    ]
    with SandboxServer([*history, *theirs_made], apps=make_apps(), now=REAL_NOW) as server:
        world = World(server, tmp_path, cli_env(server, tmp_path, **FAST_LIMITS))
        world.run("load", *WITH_MESSAGES)
        truth = Truth.of(server)
        assert truth.sessions["e2" * 12]["sessionStatus"] == "active"
        sessions = sorted(v["sessionId"] for v in truth.sessions.values() if v["userId"] == user)
        in_list = ", ".join(f"'{s}'" for s in sessions)

        def theirs() -> list[str]:
            """Ids of the person's messages the sandbox serves now."""
            return sorted(
                m["_id"]
                for m in server.visible_messages(version=2)
                if m["sessionId"] in sessions or m["createdBy"] == user
            )

        def remaining(dataset: str = DATASET) -> dict[str, int]:
            ids = ", ".join(f"'{m}'" for m in theirs())
            tables = world.query(
                f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{dataset}'"
            )
            present = {name for (name,) in tables}
            counts = {}
            for table, where in (
                ("messages", f"session_id IN ({in_list}) OR created_by = '{user}'"),
                ("messages", f"message_id IN ({ids})"),
                ("messages__components", f"message_id IN ({ids})"),
                ("messages__tags", f"message_id IN ({ids})"),
                ("sessions", f"session_id IN ({in_list})"),
            ):
                if table in present:
                    query = f"SELECT COUNT(*) FROM {dataset}.{table} WHERE {where}"
                    counts[f"{dataset}.{table} where {where[:40]}"] = world.query(query)[0][0]
            return counts

        erased = theirs()
        tagged = any(
            any(m.get("tags", {}).get(scope) for scope in ("messageTags", "userTags", "sessionTags"))
            for m in server.visible_messages(version=2)
            if m["_id"] in set(erased)
        )
        there = {name: count for name, count in remaining().items() if tagged or "messages__tags" not in name}
        assert all(there.values()), f"the person's rows are not all there to begin with: {there}"
        total_before = world.query(f"SELECT COUNT(*) FROM {DATASET}.messages")[0][0]
        loaded_theirs = world.query(
            f"SELECT COUNT(*) FROM {DATASET}.messages WHERE session_id IN ({in_list})"
        )[0][0]
        assert loaded_theirs == len(erased), "the person's messages were not all loaded to begin with"

        done = world.run("forget", "--user-id", user)
        assert user not in done.stdout + done.stderr, "forget printed the user id"
        assert str(len(erased)) in done.stdout, f"forget does not say how many messages: {done.stdout}"
        left = {**remaining(), **remaining(f"{DATASET}_staging")}
        assert not any(left.values()), f"after forget: {left}"
        total_after = world.query(f"SELECT COUNT(*) FROM {DATASET}.messages")[0][0]
        assert total_after == total_before - len(erased), "forget removed other people's messages"

        # Their open session goes on; an incremental run, then a bounded backfill over the whole
        # history, read the person's old and new messages from the API again.
        server.advance(timedelta(minutes=45))
        assert len(theirs()) > len(erased), "no new message of the person arrived meanwhile"
        asked = len(server.requests)
        world.run("load", *WITH_MESSAGES)
        start = (REAL_NOW - timedelta(days=3)).date().isoformat()
        end = (REAL_NOW + timedelta(days=1)).date().isoformat()
        world.run("load", *WITH_MESSAGES, "--start", start, "--end", end)
        assert any("getMessages" in r.path for r in server.requests[asked:]), "no message was asked for"
        left = {**remaining(), **remaining(f"{DATASET}_staging")}
        assert not any(left.values()), f"after later loads: {left}"
        erased_now = set(theirs())
        everyone_else = [m for m in server.visible_messages(version=2) if m["_id"] not in erased_now]
        loaded = world.query(f"SELECT COUNT(*) FROM {DATASET}.messages")[0][0]
        assert loaded == len(everyone_else), "the later loads did not load everyone else's messages"
        assert not world.query(
            f"SELECT COUNT(*) FROM {DATASET}.fct_sessions WHERE session_id IN ({in_list})"
        )[0][0]


# --- 5. the documented one-line errors --------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "extra_env"),
    [
        (["--resources", "messages"], {}),
        (["--resources", "sessions,mesages"], {}),
        ([], {"SOURCES__KORE_SESSIONS__RESOURCES": "messages"}),
        ([], {"SOURCES__KORE_SESSIONS__RESOURCES": '["sessions", "mesages"]'}),
    ],
    ids=["flag-messages-alone", "flag-misspelt", "env-messages-alone", "env-misspelt"],
)
def test_wrong_resources_fail_in_one_line(args: list[str], extra_env: dict[str, str], tmp_path: Path) -> None:
    history = sessions_up_to_now(days=1, per_day=5, seed=59)
    with SandboxServer(history, apps=make_apps(), now=REAL_NOW) as server:
        env = cli_env(server, tmp_path, **FAST_LIMITS, **extra_env)
        done = kore(["load", *args], env, tmp_path)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2, (done.returncode, done.stderr)
        assert len(lines) == 1 and lines[0].startswith("kore-sessions: error: "), done.stderr
        assert "Traceback" not in done.stderr
        assert not server.requests, "a wrong configuration must not reach the API"
        assert not (tmp_path / DATABASE).exists(), "a run that fails early leaves no DuckDB file"


def test_an_app_without_the_chat_history_scope_fails_in_one_line(tmp_path: Path) -> None:
    """The README: "The app needs the Chat History scope besides Bot Sessions; without it the load
    stops with one line naming that scope (HTTP 403)": exit 1, no traceback."""
    history = sessions_up_to_now(days=1, per_day=5, seed=62)
    sessions_only = SandboxApp(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, kind="bot", scopes=frozenset({"Bot Sessions"})
    )
    with SandboxServer(history, apps=[sessions_only], now=REAL_NOW) as server:
        done = kore(["load", *WITH_MESSAGES], cli_env(server, tmp_path, **FAST_LIMITS), tmp_path)
        assert done.returncode == 1, (done.returncode, done.stderr[-2000:])
        errors = [line for line in done.stderr.splitlines() if line.startswith("kore-sessions: error:")]
        assert len(errors) == 1 and "Chat History" in errors[0], done.stderr[-2000:]
        assert done.stderr.strip().splitlines()[-1] == errors[0]
        assert "Traceback" not in done.stderr
        assert any(r.status == 403 and "getMessages" in r.path for r in server.requests)
