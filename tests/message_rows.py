"""Hand-made `sessions` and `messages` tables in a warehouse, and what the message marts should
say about them, computed here in Python, independently of the SQL.

The raw tables are created with the columns the source declares (`OPTIONAL_SOURCE_TABLES`), as
dlt would load them, so the models read them exactly as they would read a load.
"""

from __future__ import annotations

import math
import random
import re
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import dlt
from kore_sessions.runtime.pipeline import make_pipeline
from kore_sessions.warehouse.model_settings import ModelSettings
from kore_sessions.warehouse.models import OPTIONAL_SOURCE_TABLES

from .conftest import POSTGRES_DSN, drop_postgres_dataset

# Two bots; ids as the platform writes them.
BOT_A = "st-aaaaaaaa-0000-4000-8000-00000000000a"
BOT_B = "st-aaaaaaaa-0000-4000-8000-00000000000b"
# The hand-made sessions start on these three days (UTC), some late enough to be the next day
# in Asia/Kolkata.
FIRST_START = datetime(2026, 10, 1, 0, 30, tzinfo=UTC)
# Words users type: none of them may ever reach a model or the report.
USER_WORDS = "my secret words are marmalade-{n}"
# What a live agent writes: outgoing, yet never a last bot message nor a bot's first answer.
AGENT_WORDS = "Agent Dana here, I can see your order"
# Bot prompts the generator fills with e-mail addresses, ids and numbers, and what each becomes.
PROMPTS = (
    "We sent a code to {email}",
    "Your ticket TK-{digits} is open",
    "Please type the 6-digit code we sent to +1 415 555 {digits}",
    "Session {uuid} has expired, reference {hex24}",
    "Let me connect you to an agent.",
    "Please confirm your account number ending in {digits}.",
    "Is there anything else I can do for you?",
)
# Texts of a bot message a normalisation cannot make anything of.
EMPTY_TEXTS = (None, "", "   ", "\n\t")

# The normalisation, stated again here in Python's `re` (the SQL's documented rule).
EMAIL = re.compile(r"[A-Za-z0-9._+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
ID = re.compile(
    r"((u|st|ms|cs|cp|o)-)?([0-9A-Fa-f]{8}(-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}|[0-9A-Fa-f]{16,})"
)
NUMBER = re.compile(r"\+?[0-9]+([ ().,:/+-]*[0-9]+)*")
NO_MESSAGES = "(no messages loaded)"
NO_BOT_MESSAGE = "(no bot message)"
NO_TEXT = "(bot message without text)"
# The containment types of the API and the outcome fct_sessions gives each (closed sessions).
OUTCOME_OF = {"selfService": "self_service", "dropOff": "drop_off", "agent": "agent"}


def normalise(text: str | None) -> str | None:
    """The last bot message as fct_dropoff_points writes it (None: nothing left)."""
    if text is None:
        return None
    for control in ("\r", "\n", "\t"):
        text = text.replace(control, " ")
    text = NUMBER.sub("<n>", ID.sub("<id>", EMAIL.sub("<email>", text)))
    text = re.sub(" +", " ", text).strip()[:200].strip()
    return text or None


def percentile_cont(values: list[float], share: float) -> float | None:
    """A continuous percentile, as SQL's PERCENTILE_CONT; None without values."""
    if not values:
        return None
    ordered = sorted(values)
    position = share * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass
class HandData:
    """Rows of the raw tables, as dicts of their columns."""

    sessions: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)


def session_row(session_id: str, bot: str, start: datetime, **values: Any) -> dict[str, Any]:
    """A closed, interactive, non-developer drop-off session, `values` overriding."""
    row = {
        "session_id": session_id,
        "bot_id": bot,
        "channel": "rtm",
        "user_id": f"u-person-{session_id}",
        "start_time": start,
        "end_time": start + timedelta(minutes=5),
        "session_type": "interactive",
        "containment_type": "dropOff",
        "is_developer": False,
        "session_status": "closed",
        "no_of_messages_exchanged": 4,
        "no_of_tasks_executed": 1,
        "deleted_in_source": None,
    }
    row.update(values)
    return row


def message_row(
    session: dict[str, Any], kind: str, created: datetime, text: str | None, **values: Any
) -> dict[str, Any]:
    """A message of a session; a user's carries the user's words (which the models must drop)."""
    row = {
        "message_id": f"ms-{uuid.uuid4()}",
        "session_id": session["session_id"],
        "bot_id": session["bot_id"],
        "message_type": kind,
        "status": "received" if kind == "incoming" else "delivered",
        "created_on": created,
        "modified_on": created + timedelta(milliseconds=5),
        "timestamp_value": int(created.timestamp() * 1000),
        "channel": "rtm",
        "lang": "en",
        "message_source": "1",
        "is_developer": False,
        "is_builder": False,
        "created_by": session["user_id"],
        "from_agent": False,
        "component_kinds": "text",
        "text_length": len(text or ""),
        "text": text,
    }
    row.update(values)
    return row


def filled_prompt(rng: random.Random) -> str:
    """A bot prompt filled with an e-mail address, digits or ids."""
    return rng.choice(PROMPTS).format(
        email=f"{rng.choice(['jane.doe', 'li_wang', 'omar+x'])}@example.{rng.choice(['com', 'co.uk'])}",
        digits=str(rng.randrange(1, 99999)),
        uuid=str(uuid.UUID(int=rng.getrandbits(128))),
        hex24=f"{rng.getrandbits(96):024x}",
    )


def generated_data(seed: int = 7, sessions: int = 160) -> HandData:
    """Sessions of two bots over three days, of every kind, with random conversations."""
    rng = random.Random(seed)
    data = HandData()
    for index in range(sessions):
        start = FIRST_START + timedelta(minutes=rng.randrange(0, 3 * 24 * 60 - 60))
        session = session_row(
            f"{index + 1:024x}",
            rng.choice([BOT_A, BOT_B]),
            start,
            containment_type=rng.choice(["dropOff", "dropOff", "agent", "selfService", None]),
            session_status=rng.choice(["closed"] * 6 + ["active"]),
            session_type=rng.choice(["interactive"] * 6 + ["non-interactive", None]),
            is_developer=rng.choice([False] * 6 + [True, None]),
            deleted_in_source=rng.choice([None] * 12 + [True, False]),
        )
        data.sessions.append(session)
        if rng.random() < 0.85:
            data.messages.extend(conversation(rng, session))
    # Messages of a session that is not loaded count nowhere.
    stray = session_row("f" * 24, BOT_A, FIRST_START)
    data.messages.extend(conversation(rng, stray))
    return data


def conversation(rng: random.Random, session: dict[str, Any]) -> list[dict[str, Any]]:
    """0 to 7 messages of a session, some at the same instant, any order of turns."""
    rows = []
    for _ in range(rng.randrange(0, 8)):
        created = session["start_time"] + timedelta(seconds=rng.choice([0, 3, 3, 10, 45, 90, 400]))
        kind = rng.choice(["incoming", "incoming", "outgoing", "outgoing", "ctrlmsg", "agent"])
        if kind == "agent":  # a live agent's reply: outgoing, but not the bot's words
            rows.append(message_row(session, "outgoing", created, AGENT_WORDS, from_agent=True))
            continue
        if kind == "incoming":
            text = USER_WORDS.format(n=rng.randrange(1000))
        elif kind == "outgoing":
            text = rng.choice(EMPTY_TEXTS) if rng.random() < 0.1 else filled_prompt(rng)
        else:
            text = "context updated"
        rows.append(message_row(session, kind, created, text))
    return rows


def counted(session: dict[str, Any], settings: ModelSettings) -> bool:
    """Whether fct_sessions counts a loaded session under the settings."""
    active = session["session_status"] == "active"
    interactive = session["session_type"] != "non-interactive"
    developer = bool(session["is_developer"])
    return (
        (not active or settings.include_active)
        and (interactive or settings.include_non_interactive)
        and (not developer or settings.include_developer)
    )


def outcome(session: dict[str, Any]) -> str:
    """The outcome fct_sessions gives a session."""
    if session["session_status"] == "active":
        return "self_service"
    return OUTCOME_OF.get(session["containment_type"], "unknown")


def day_of(session: dict[str, Any], zone: str) -> date:
    """The reporting day of a session."""
    return session["start_time"].astimezone(ZoneInfo(zone)).date()


def counted_sessions(data: HandData, settings: ModelSettings) -> list[dict[str, Any]]:
    """The loaded (not deleted) sessions the marts count."""
    return [s for s in data.sessions if not s["deleted_in_source"] and counted(s, settings)]


def expected_dropoffs(data: HandData, settings: ModelSettings) -> dict[tuple, tuple]:
    """fct_dropoff_points by (day, bot, outcome, last bot message): (sessions, share, loaded)."""
    by_session = defaultdict(list)
    for message in data.messages:
        by_session[message["session_id"]].append(message)
    labels: Counter[tuple] = Counter()
    loaded: dict[tuple, bool] = {}
    for session in counted_sessions(data, settings):
        if outcome(session) not in ("drop_off", "agent"):
            continue
        own = by_session.get(session["session_id"], [])
        bot = [m for m in own if m["message_type"] == "outgoing" and not m["from_agent"]]
        if not own:
            label = NO_MESSAGES
        elif not bot:
            label = NO_BOT_MESSAGE
        else:
            last = max(bot, key=lambda m: (m["created_on"], m["message_id"]))
            label = normalise(last["text"]) or NO_TEXT
        key = (day_of(session, settings.reporting_time_zone), session["bot_id"], outcome(session), label)
        labels[key] += 1
        loaded[key] = bool(own)
    totals: Counter[tuple] = Counter()
    for (day, bot, kind, _), sessions in labels.items():
        totals[(day, bot, kind)] += sessions
    return {
        key: (sessions, sessions / totals[key[:3]], loaded[key]) for key, sessions in labels.items()
    }


def expected_turns(data: HandData, settings: ModelSettings) -> dict[tuple, tuple]:
    """fct_conversation_turns_daily by (day, bot), its measures in the mart's column order."""
    by_session = defaultdict(list)
    for message in data.messages:
        by_session[message["session_id"]].append(message)
    cells: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for session in counted_sessions(data, settings):
        cells[(day_of(session, settings.reporting_time_zone), session["bot_id"])].append(session)
    expected = {}
    for key, sessions in cells.items():
        with_messages = [s for s in sessions if by_session.get(s["session_id"])]
        incoming = outgoing = with_incoming = unanswered = 0
        waits: list[float] = []
        for session in with_messages:
            own = by_session[session["session_id"]]
            users = [m["created_on"] for m in own if m["message_type"] == "incoming"]
            sent = [m for m in own if m["message_type"] == "outgoing"]
            bots = [m["created_on"] for m in sent if not m["from_agent"]]
            incoming, outgoing = incoming + len(users), outgoing + len(sent)
            if users:
                with_incoming += 1
                answers = [at for at in bots if at >= min(users)]
                if answers:
                    waits.append((min(answers) - min(users)).total_seconds())
                else:
                    unanswered += 1
        per = len(with_messages)
        expected[key] = (
            len(sessions),
            per,
            incoming,
            outgoing,
            incoming / per if per else None,
            outgoing / per if per else None,
            with_incoming,
            unanswered,
            percentile_cont(waits, 0.5),
            percentile_cont(waits, 0.9),
        )
    return expected


class HandWarehouse:
    """A dataset on DuckDB (a file) or PostgreSQL (a schema of its own) with raw tables made by hand."""

    def __init__(self, destination: str, folder: Path) -> None:
        self.destination = destination
        if destination == "postgres":
            self.pipeline = make_pipeline(
                dlt.destinations.postgres(credentials=POSTGRES_DSN),
                dataset_name=f"kore_msg_{uuid.uuid4().hex[:10]}",
                pipelines_dir=folder / "pipelines",
            )
        else:
            self.pipeline = make_pipeline(
                "duckdb", pipelines_dir=folder / "pipelines", duckdb_path=folder / "w.duckdb"
            )

    def create(self, table: str, rows: list[dict[str, Any]], leave_out: tuple[str, ...] = ()) -> None:
        """Create a raw table with the source's columns (less `leave_out`, as dlt makes no column
        before a value arrives) and insert `rows`."""
        columns = {n: t for n, t in OPTIONAL_SOURCE_TABLES[table].items() if n not in leave_out}
        with self.pipeline.sql_client() as client:
            if not client.has_dataset():
                client.create_dataset()
            qualified = client.make_qualified_table_name(table)
            typed = ", ".join(f"{client.escape_column_name(name)} {kind}" for name, kind in columns.items())
            client.execute_sql(f"CREATE TABLE {qualified} ({typed})")
            if rows:
                marks = ", ".join(["%s"] * len(columns))
                for row in rows:
                    client.execute_sql(
                        f"INSERT INTO {qualified} VALUES ({marks})", *(row[name] for name in columns)
                    )

    def load(self, data: HandData, with_messages: bool = True) -> None:
        """The raw tables of `data`: sessions, and messages unless the resource was off."""
        self.create("sessions", data.sessions)
        if with_messages:
            self.create("messages", data.messages)

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Rows of a query on the dataset (tables unqualified)."""
        with self.pipeline.sql_client() as client, client.execute_query(sql, *args) as cursor:
            return [tuple(row) for row in cursor.fetchall()]

    def drop(self) -> None:
        """Drop the dataset (PostgreSQL); a DuckDB file goes with its temporary folder."""
        if self.destination == "postgres":
            drop_postgres_dataset(self.pipeline.dataset_name)
