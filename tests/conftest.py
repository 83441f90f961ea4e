"""Fixtures: an isolated dlt home, the sandbox API, and a loader into a real DuckDB file."""

from __future__ import annotations

import gc
import json
import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dlt
import psycopg2
import pytest
from kore_sessions.runtime.pipeline import (
    load_sessions,
    make_pipeline,
    source_state,
)
from kore_sessions.runtime.summary import LoadSummary
from kore_sessions.sandbox import GeneratedSession, SandboxApp, SandboxServer, generate_sessions
from kore_sessions.source import KoreCredentials, SourceRun, kore_sessions
from kore_sessions.source.sessions.schema import SESSION_COLUMNS as SCHEMA_COLUMNS

from .postgres_turns import postgres_running  # noqa: F401  (autouse: PostgreSQL in turns)
from .scheduling import pytest_collection_modifyitems  # noqa: F401  (the modules' order)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Freeze what the imports and the collection made, as `kore-sessions` freezes what its
    imports made (`tune_process_heap`): the tests that run the source in this process then
    collect garbage as the command does, without walking pytest's whole heap each package."""
    gc.collect()
    gc.freeze()

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
HISTORY_START = NOW - timedelta(days=20)
BOTS = ["st-aaaaaaaa-0000-4000-8000-000000000001", "st-aaaaaaaa-0000-4000-8000-000000000002"]
CLIENT_ID = "cs-test-bot-app"
CLIENT_SECRET = "bot-app-secret-0123456789-must-not-leak"
ADMIN_ID = "cs-test-admin-app"
ADMIN_SECRET = "admin-app-secret-9876543210-must-not-leak"
PAGE_CAP = 40
# The loader's clock runs this far ahead of the sandbox's in every `Loader` test: the server's
# answers, not the loader's clock, must decide what is loaded (tests/test_clocks.py moves the
# two clocks apart in both directions).
LOADER_AHEAD = timedelta(hours=3)
# Retries fast enough for tests; the policy's shape is what is tested.
FAST_RETRIES = {"backoff_initial": 0.01, "backoff_max": 0.05, "max_attempts": 6}
# The PostgreSQL server `.ci/run` starts; read before the autouse fixture clears KORE_* names.
POSTGRES_DSN = os.environ.get("KORE_TEST_POSTGRES_DSN", "postgresql://kore:kore@127.0.0.1:5432/kore_test")
# Set by `.ci/run`: a missing PostgreSQL server fails the tests instead of skipping them.
POSTGRES_REQUIRED = os.environ.get("KORE_TEST_REQUIRE_POSTGRES") == "1"
# The typed columns of `sessions` the tests compare (the deletion marker aside).
SESSION_COLUMNS = ", ".join(c.name for c in SCHEMA_COLUMNS if c.api_field)


@pytest.fixture(autouse=True)
def isolated_dlt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test has its own dlt home and working folder, and no outside config."""
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt_home"))
    monkeypatch.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")
    for name in list(os.environ):
        if name.startswith(("SOURCES__", "DESTINATION__", "KORE_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def history() -> list[GeneratedSession]:
    """Twenty days of two bots (some still open at NOW), plus six hours yet to come."""
    busy_start = NOW - timedelta(hours=6)
    past = generate_sessions(BOTS, HISTORY_START, busy_start, per_day=30, seed=11)
    busy = generate_sessions(BOTS, busy_start, NOW, per_day=300, seed=13, active_share=0.5)
    future = generate_sessions(BOTS, NOW, NOW + timedelta(hours=6), per_day=30, seed=12)
    return (
        [s for s in past if s.start < busy_start]
        + [s for s in busy if s.start <= NOW]
        + [s for s in future if s.start > NOW]
    )


def make_apps() -> list[SandboxApp]:
    """A bot-builder app for both bots and an Admin Console app."""
    return [
        SandboxApp(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, kind="bot"),
        SandboxApp(client_id=ADMIN_ID, client_secret=ADMIN_SECRET, kind="admin"),
    ]


@pytest.fixture
def server(history: list[GeneratedSession]) -> Iterator[SandboxServer]:
    """The sandbox API serving `history` at NOW, pages capped at PAGE_CAP."""
    with SandboxServer(history, apps=make_apps(), now=NOW, page_cap=PAGE_CAP) as running:
        yield running


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """DSN of the test PostgreSQL server; skips (or fails under `.ci/run`) when none answers."""
    try:
        psycopg2.connect(POSTGRES_DSN, connect_timeout=3).close()
    except psycopg2.OperationalError as exc:
        reason = f"PostgreSQL not reachable at KORE_TEST_POSTGRES_DSN: {' '.join(str(exc).split())}"
        if POSTGRES_REQUIRED:
            pytest.fail(reason)
        pytest.skip(reason)
    return POSTGRES_DSN


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse(request: pytest.FixtureRequest) -> Iterator[str]:
    """Each destination the models must run on: "duckdb", then "postgres" (own schema, dropped)."""
    if request.param == "postgres":
        request.getfixturevalue("postgres_dsn")
    yield request.param


# The command runs on the real clock, so its sandbox holds sessions up to now.
REAL_NOW = datetime.now(UTC).replace(microsecond=0)


# The days of `recent_history`, up to the real now.
RECENT_HISTORY_DAYS = 5


# Sessions still open at the real now that the models count (interactive, not a developer's),
# added to `recent_history` for each bot: the generator leaves open only some of the sessions
# started in the two hours before its end, and in the small hours (UTC) its diurnal curve may
# draw none that count (at 01:08 UTC none did, and the tests of active sessions failed).
OPEN_SESSIONS_A_BOT = 2


def open_sessions(now: datetime) -> list[GeneratedSession]:
    """OPEN_SESSIONS_A_BOT sessions of each bot, started 20 to 50 minutes before `now` and open
    for two hours after it."""
    return [
        GeneratedSession(
            session_id=f"{0x0BE7 * 1000 + index:024x}",
            bot_id=bot,
            user_id=f"u-open-{index}",
            channel="rtm",
            start=now - timedelta(minutes=20 + 10 * index),
            end=now + timedelta(hours=2),
            messages=6,
            tasks=1,
        )
        for index, bot in enumerate(bot for bot in BOTS for _ in range(OPEN_SESSIONS_A_BOT))
    ]


@pytest.fixture(scope="module")
def recent_history() -> list:
    """Five days of two bots ending now, some sessions still open (OPEN_SESSIONS_A_BOT at least)."""
    start = REAL_NOW - timedelta(days=RECENT_HISTORY_DAYS)
    generated = generate_sessions(BOTS, start, REAL_NOW, per_day=120, seed=21, active_share=0.5)
    history = generated + open_sessions(REAL_NOW)
    return sorted(history, key=lambda session: (session.start, session.session_id))


def sessions_up_to_now(
    days: int, per_day: int, seed: int, bots: list[str] = BOTS, ahead: timedelta = timedelta(0)
) -> list[GeneratedSession]:
    """`days` days of sessions of `bots` up to the real now (and `ahead` past it)."""
    start = REAL_NOW - timedelta(days=days)
    return generate_sessions(bots, start, REAL_NOW + ahead, per_day=per_day, seed=seed)


def sandbox_at_real_now(history: list, page_cap: int = 25, latency: float = 0.0) -> SandboxServer:
    """A sandbox serving `history` on the test apps, its clock at the real now, each answer
    `latency` seconds late; it listens once entered (`with`)."""
    server = SandboxServer(history, apps=make_apps(), now=REAL_NOW, page_cap=page_cap)
    server.set_latency(latency)
    return server


@pytest.fixture
def live_server(recent_history: list) -> Iterator[SandboxServer]:
    """A sandbox whose clock stands at the real now."""
    with sandbox_at_real_now(recent_history) as server:
        yield server


@pytest.fixture
def postgres_dataset(postgres_dsn: str) -> Iterator[str]:
    """A fresh dataset name on the test PostgreSQL server, dropped afterwards with every staging
    schema of it and of its partitions."""
    dataset = f"kore_test_{uuid.uuid4().hex[:10]}"
    yield dataset
    drop_postgres_dataset(dataset)


def drop_postgres_dataset(dataset: str) -> None:
    """Drop a dataset's PostgreSQL schema and every staging schema dlt made beside it
    (`<dataset>_staging`, a partition's `<dataset>_staging_<name>`)."""
    with psycopg2.connect(POSTGRES_DSN) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT schema_name FROM information_schema.schemata")
        for (schema,) in cursor.fetchall():
            if schema == dataset or schema.startswith(f"{dataset}_staging"):
                cursor.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


class Loader:
    """Runs the real source and pipeline against a sandbox into DuckDB (a file) or PostgreSQL.

    The loader has a clock of its own, `clock` (default: LOADER_AHEAD ahead of the sandbox's).
    """

    def __init__(self, server: SandboxServer, folder: Path, destination: str = "duckdb") -> None:
        self.server = server
        self.folder = folder
        self.destination = destination
        self.clock: Callable[[], datetime] = lambda: self.server.now + LOADER_AHEAD
        if destination == "postgres":
            dataset = f"kore_test_{uuid.uuid4().hex[:10]}"
            self.pipeline = make_pipeline(
                dlt.destinations.postgres(credentials=POSTGRES_DSN),
                dataset_name=dataset,
                pipelines_dir=folder / "pipelines",
            )
        else:
            self.pipeline = make_pipeline(
                "duckdb", pipelines_dir=folder / "pipelines", duckdb_path=folder / "w.duckdb"
            )
        self.run_record = SourceRun()
        self._sql_client: Any = None

    def drop_dataset(self) -> None:
        """Drop the PostgreSQL schemas of this loader, with dlt's merge staging schema."""
        if self.destination == "postgres":
            drop_postgres_dataset(self.pipeline.dataset_name)

    def run(self, **overrides: Any) -> LoadSummary:
        """One load with test defaults; keyword arguments override source settings."""
        source = self.source(**overrides)
        return load_sessions(self.pipeline, source, self.run_record)

    def source(self, **overrides: Any) -> Any:
        """The source of one run with test defaults, counting into a new `self.run_record`."""
        self.run_record = SourceRun()
        settings: dict[str, Any] = {
            "host": self.server.url,
            "bot_ids": BOTS,
            "start_date": HISTORY_START.isoformat(),
            "credentials": KoreCredentials(client_id=CLIENT_ID, client_secret=CLIENT_SECRET),
            "clock": lambda: self.clock(),
            **FAST_RETRIES,
        }
        settings.update(overrides)
        return kore_sessions(**settings, run=self.run_record)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Rows of a query on the dataset (table names unqualified), on a connection of its own.

        The SQL client is made once (dlt resolves the destination's configuration for each new
        one, ~20 ms); each query opens and closes its connection, as a new client would.
        """
        if self._sql_client is None:
            self._sql_client = self.pipeline.sql_client()
        with self._sql_client as client, client.execute_query(sql) as cursor:
            return [tuple(row) for row in cursor.fetchall()]

    def sessions(self) -> dict[str, tuple[Any, ...]]:
        """The sessions table keyed by session id."""
        return {row[0]: row for row in self.query(f"SELECT {SESSION_COLUMNS} FROM sessions")}

    def tags(self, table: str) -> dict[str, set[tuple[str, str | None]]]:
        """Tags per session of one child table, as (name, value text)."""
        found: dict[str, set[tuple[str, str | None]]] = {}
        for session_id, name, value in self.query(f"SELECT session_id, name, value FROM {table}"):
            found.setdefault(session_id, set()).add((name, value))
        return found

    def state(self) -> dict[str, Any]:
        """The sessions resource state (cursor and open sessions per bot)."""
        return json.loads(json.dumps(source_state(self.pipeline)))


@pytest.fixture
def loader(server: SandboxServer, tmp_path: Path) -> Loader:
    """A loader into a fresh DuckDB file against the `server` fixture."""
    return Loader(server, tmp_path)


@pytest.fixture
def make_loader(tmp_path: Path) -> Iterator[Any]:
    """Factory `make_loader(server, destination)`; PostgreSQL schemas are dropped afterwards."""
    made: list[Loader] = []

    def factory(server: SandboxServer, destination: str = "duckdb") -> Loader:
        loader = Loader(server, tmp_path / f"loader{len(made)}", destination)
        made.append(loader)
        return loader

    yield factory
    for loader in made:
        loader.drop_dataset()


def tag_text(value: Any) -> str | None:
    """How a tag value of any JSON type is expected to read in the warehouse."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def api_time(text: str | None) -> datetime | None:
    """An API timestamp as an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def assert_matches_sandbox(loader: Loader, server: SandboxServer, until: datetime | None = None) -> None:
    """The warehouse holds exactly the sandbox's visible sessions (that started by `until`, if
    given): ids, fields and tags."""
    expected = {
        view["sessionId"]: view
        for view in server.visible_sessions()
        if until is None or api_time(view["start_time"]) <= until
    }
    loaded = loader.sessions()
    assert sorted(loaded) == sorted(expected), "session ids differ from the sandbox"
    for session_id, view in expected.items():
        row = loaded[session_id]
        wanted = (
            session_id,
            view["botId"],
            view["channel"],
            view["userId"],
            api_time(view["start_time"]),
            api_time(view.get("end_time")),
            view["sessionType"],
            view["containmentType"],
            view["isDeveloper"],
            view["sessionStatus"],
            view["noOfMessagesExchanged"],
            view["noOfTasksExecuted"],
        )
        got = tuple(v.astimezone(UTC) if isinstance(v, datetime) else v for v in row)
        assert got == wanted, f"session {session_id} differs"
    for table, key in (
        ("sessions__user_tags", "userTags"),
        ("sessions__session_tags", "sessionTags"),
    ):
        loaded_tags = loader.tags(table)
        for session_id, view in expected.items():
            wanted_tags = {(t["name"], tag_text(t["value"])) for t in view["tags"][key]}
            assert loaded_tags.get(session_id, set()) == wanted_tags, f"{key} of {session_id}"
    langs: dict[str, list[str]] = {}
    for session_id, lang in loader.query("SELECT session_id, lang FROM sessions__session_lang"):
        langs.setdefault(session_id, []).append(lang)
    for session_id, view in expected.items():
        assert sorted(langs.get(session_id, [])) == sorted(view["session_lang"])


def counted_in_sandbox(server: SandboxServer) -> int:
    """Sessions the dashboards count by default: closed, interactive, not a developer's."""
    return sum(
        1
        for view in server.visible_sessions()
        if view["sessionStatus"] == "closed"
        and view["sessionType"] == "interactive"
        and not view["isDeveloper"]
    )
