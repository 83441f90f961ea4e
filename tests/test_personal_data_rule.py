"""The personal-data rule (`kore_sessions.warehouse.personal_data`): one rule, read alike by Python,
DuckDB and PostgreSQL, and kept by the marts, the exports and the report.

The rule's patterns are run in each engine on the same samples (the patterns alone, then the
tag mart's own model); then sessions whose tags hold phone numbers under names the old rule let
through (`ANI`, `msisdn`, ...) go through the command line: no mart, export or report may
show one of the numbers, unless a user names the tag.
"""

from __future__ import annotations

import csv
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import psycopg2
import pyarrow.parquet as pq
import pytest
import sqlglot
from kore_sessions.report import privacy as report_screen
from kore_sessions.sandbox import GeneratedSession, SandboxServer
from kore_sessions.warehouse.model_files import MODEL_DIALECT, discover_models
from kore_sessions.warehouse.model_settings import ModelSettings
from kore_sessions.warehouse.models import SETTINGS_TABLE, render_model, settings_statement
from kore_sessions.warehouse.personal_data import (
    SQL_NAME_PATTERN,
    SQL_VALUE_PATTERN,
    looks_personal_name,
    looks_personal_value,
    normalized_name,
)

from .cli_helpers import DATABASE, cli_env, kore
from .conftest import BOTS, POSTGRES_DSN, REAL_NOW, drop_postgres_dataset, make_apps

# Tag names that hold personal data (the tag mart let many through before: `ANI`, `msisdn`, ...).
PERSONAL_NAMES = (
    "callerNumber", "callee", "phone_number", "Mobile", "cellPhone", "cell", "msisdn", "ANI", "dnis",
    "E-Mail", "user.id", "customer id", "callId", "sessionId", "accountNo", "account_number",
    "ssn", "Social Security", "home address", "zip", "postcode", "postal_code", "firstName",
    "surname", "Full Name", "birthDate", "DOB", "ip", "clientIp", "passport", "driverLicence",
    "license_plate", "IBAN", "card_no", "authToken", "password", "apiSecret", "orderNumber", "guid",
    "Telefon", "kundennummer", "DNI", "jane.doe@example.com", "+49 151 12345678", "u-3f2a9c1d7e8b4a60",
)  # fmt: skip
# Tag names of categories, some holding a personal fragment inside another word.
HARMLESS_NAMES = (
    "line", "tier", "intent", "segment", "csatScore", "language", "regular", "premium", "profile",
    "satisfaction", "waitSeconds", "resolved", "escalated", "welcomeMessageTwilio",
    "voiceAgentTransferStart", "audioCodesCallDisconnect", "Order Status", "menu option 3",
    "cancelled", "membership", "anime", "taxiBank", "accessNode", "plan",
)  # fmt: skip
# Tag values that point at a person: phone numbers, addresses, ids.
PERSONAL_VALUES = (
    "+1 (415) 555-0100", "4155550100", "+14155550123", "+49 30 1234567", "call 415 555 0100 now",
    "1999-04-12", "jane@example.com", "sip:123@host", "10.0.0.1",
    "3f2a1b4c-1234-4abc-8def-0123456789ab", "5f8a1b2c3d4e5f6a7b8c9d0e", "5F8A1B2C3D4E5F6A7B8C9D0E",
    "u-0123456789abcdef", "st-aaaaaaaa-0000-4000-8000-000000000001", "cs1a2b3c4d5e6f7g8h9",
    "line one\n415 555 0100",
)  # fmt: skip
# Tag values of categories.
HARMLESS_VALUES = (
    "gold", "es-ES", "plan_2024", "v2", "menu option 3", "Order Status", "12345", "Book Flight",
    "1", "true", "4.5", "2500", '{"items":3,"total":123.45}', "us-east", "All Agents Busy",
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "first line\nsecond line",
)  # fmt: skip
# A dataset of its own for the engine checks.
RULE_SCHEMA = "kore_rule_check"

# Phone numbers under tag names the old rule let through, each in a form of its own, and one
# innocuously named tag (`line`) holding them too: (scope, name, form of session n's number).
PHONE_TAGS = (
    ("session", "ANI", "+1415555{:04d}"),
    ("session", "dnis", "800555{:04d}"),
    ("session", "msisdn", "4915112{:05d}"),
    ("session", "line", "+1 (415) 555-{:04d}"),
    ("user", "mobile", "+44 7700 900{:03d}"),
    ("user", "address", "415-555-{:04d}"),
    ("user", "ssn", "415.555.{:04d}"),
    ("user", "accountNo", "0044 20 7946 {:04d}"),
)
# Sessions of the data set: each phone tag has this many distinct values (at most 25: a quiet bot).
PHONE_SESSIONS = 20
# A category tag: it must still be sliced.
CATEGORY_TAG = ("user", "tier", ("gold", "silver", "bronze"))
# The models a BI tool may read (staging views only rename the raw tables): none may hold a number.
MODELLED = [model.name for model in discover_models() if model.layer != "staging"]


# --- the rule in each engine -----------------------------------------------------------------


def test_the_report_and_the_models_patterns_classify_the_samples_alike() -> None:
    """The report's screen is the rule; the whole-text patterns the models read say the same."""
    assert [name for name in PERSONAL_NAMES if not report_screen.looks_personal_name(name)] == []
    assert [name for name in HARMLESS_NAMES if report_screen.looks_personal_name(name)] == []
    assert [value for value in PERSONAL_VALUES if not report_screen.looks_personal_value(value)] == []
    assert [value for value in HARMLESS_VALUES if report_screen.looks_personal_value(value)] == []
    assert not report_screen.looks_personal_value(None)
    for name in PERSONAL_NAMES + HARMLESS_NAMES:
        by_models = whole_text_match(SQL_NAME_PATTERN, normalized_name(name)) or whole_text_match(
            SQL_VALUE_PATTERN, name.lower()
        )
        assert by_models == looks_personal_name(name), name
    for value in PERSONAL_VALUES + HARMLESS_VALUES:
        assert whole_text_match(SQL_VALUE_PATTERN, value.lower()) == looks_personal_value(value), value


def whole_text_match(pattern: str, text: str) -> bool:
    """Whether a whole-text pattern of the models matches `text`, as Python reads it."""
    return re.fullmatch(pattern.replace("$", r"\Z"), text) is not None


class Engine:
    """One warehouse engine with a schema of its own holding the models' settings table."""

    def __init__(self, dialect: str, schema: str, execute: Callable[[str, tuple], list[tuple]]) -> None:
        self.dialect = dialect
        self.schema = schema
        self._execute = execute
        self.run(f"CREATE SCHEMA {schema}")
        self.run(settings_statement(ModelSettings(), dialect, schema, datetime.now(UTC)))

    def run(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Rows of one statement (placeholders `%s`); [] for a statement without rows."""
        return self._execute(sql, params)

    def insert(self, table: str, rows: list[tuple[str, str]]) -> None:
        """Rows of two texts into a table of the schema."""
        for row in rows:
            self.run(f"INSERT INTO {self.schema}.{table} VALUES (%s, %s)", row)


@pytest.fixture(params=["duckdb", "postgres"])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """DuckDB in memory, then the test PostgreSQL server in a schema of its own (dropped)."""
    if request.param == "duckdb":
        with duckdb.connect() as con:

            def on_duckdb(sql: str, params: tuple) -> list[tuple]:
                cursor = con.execute(sql.replace("%s", "?"), list(params))
                return cursor.fetchall() if cursor.description else []

            yield Engine("duckdb", RULE_SCHEMA, on_duckdb)
        return
    request.getfixturevalue("postgres_dsn")
    schema = f"{RULE_SCHEMA}_{uuid.uuid4().hex[:8]}"
    connection = psycopg2.connect(POSTGRES_DSN)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:

            def on_postgres(sql: str, params: tuple) -> list[tuple]:
                cursor.execute(sql, params or None)  # None: a `%` in the SQL is no placeholder
                return cursor.fetchall() if cursor.description else []

            try:
                yield Engine("postgres", schema, on_postgres)
            finally:
                cursor.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        connection.close()


def test_each_engine_reads_the_patterns_as_python_does(engine: Engine) -> None:
    """The two patterns of the settings table, run by the engine on the texts Python reads."""
    engine.run(f"CREATE TABLE {engine.schema}.samples (name_text VARCHAR, value_text VARCHAR)")
    texts = PERSONAL_NAMES + HARMLESS_NAMES + PERSONAL_VALUES + HARMLESS_VALUES
    engine.insert("samples", [(normalized_name(text), text.lower()) for text in texts])
    query = sqlglot.transpile(
        "SELECT samples.name_text, samples.value_text, "
        "REGEXP_MATCHES(samples.name_text, settings.personal_name_pattern), "
        "REGEXP_MATCHES(samples.value_text, settings.personal_value_pattern) "
        f"FROM {engine.schema}.samples CROSS JOIN {engine.schema}.{SETTINGS_TABLE} AS settings",
        read=MODEL_DIALECT,
        write=engine.dialect,
    )[0]
    # As the tag mart reads a name: by the name pattern, or by the value pattern (the name as data).
    got = {
        (name, value): (by_name or by_value, by_value) for name, value, by_name, by_value in engine.run(query)
    }
    python = {
        (normalized_name(text), text.lower()): (looks_personal_name(text), looks_personal_value(text))
        for text in texts
    }
    differing = {text: (got[text], python[text]) for text in python if got[text] != python[text]}
    assert not differing, f"{engine.dialect} and Python disagree (engine, Python): {differing}"


def test_the_tag_mart_slices_what_the_rule_lets_through(engine: Engine) -> None:
    """The tag mart's own model (`int_tags__sliced`) on each sample: a name with a category
    value, a value under a category name; sliced exactly when Python finds nothing personal."""
    for table in ("stg_kore__session_tags", "stg_kore__user_tags"):
        engine.run(f"CREATE TABLE {engine.schema}.{table} (tag_name VARCHAR, tag_value VARCHAR)")
    names = PERSONAL_NAMES + HARMLESS_NAMES
    values = {f"sample{index}": value for index, value in enumerate(PERSONAL_VALUES + HARMLESS_VALUES)}
    engine.insert("stg_kore__session_tags", [(name, "gold") for name in names])
    engine.insert("stg_kore__user_tags", list(values.items()))
    model = next(model for model in discover_models() if model.name == "int_tags__sliced")
    engine.run(render_model(model, engine.dialect, engine.schema))
    sliced = set(engine.run(f"SELECT tag_scope, tag_name FROM {engine.schema}.int_tags__sliced"))
    expected = {("session", name) for name in names if not looks_personal_name(name)} | {
        ("user", name) for name, value in values.items() if not looks_personal_value(value)
    }
    assert sliced == expected, (
        f"sliced by {engine.dialect} only: {sorted(sliced - expected)}; "
        f"by Python only: {sorted(expected - sliced)}"
    )


# --- marts, exports and the report, through the command line ---------------------------------


def phone_number(form: str, session: int) -> str:
    """The phone number of a phone tag in session `session`."""
    return form.format(session + 1)


def phone_sessions() -> list[GeneratedSession]:
    """Closed voice sessions of the last two days, every one carrying each phone tag (a number
    of its own) and the category tag."""
    first = REAL_NOW - timedelta(days=2)
    sessions = []
    for index in range(PHONE_SESSIONS):
        start = first + timedelta(hours=2 * index)
        tags: dict[str, list[tuple[str, Any]]] = {"session": [], "user": []}
        for scope, name, form in PHONE_TAGS:
            tags[scope].append((name, phone_number(form, index)))
        scope, name, categories = CATEGORY_TAG
        tags[scope].append((name, categories[index % len(categories)]))
        sessions.append(
            GeneratedSession(
                session_id=f"{index + 1:024x}",
                bot_id=BOTS[index % len(BOTS)],
                user_id=f"u-caller-{index}",
                channel="ivrVoice",
                start=start,
                end=start + timedelta(seconds=90),
                containment=("selfService", "dropOff", "agent")[index % 3],
                user_tags=tuple(tags["user"]),
                session_tags=tuple(tags["session"]),
                messages=4,
                tasks=1,
            )
        )
    return sessions


def all_phone_numbers() -> set[str]:
    """Every phone number the sessions hold, as they hold it."""
    return {phone_number(form, index) for _, _, form in PHONE_TAGS for index in range(PHONE_SESSIONS)}


class Warehouse:
    """Where the command loads: its flags, its environment and a way to read its tables."""

    def __init__(self, kind: str, server: SandboxServer, cwd: Path, dataset: str) -> None:
        self.kind = kind
        self.cwd = cwd
        self.dataset = dataset
        self.env = cli_env(server, cwd, DESTINATION__POSTGRES__CREDENTIALS=POSTGRES_DSN)
        self.flags = (
            ["--destination", "postgres", "--dataset", dataset, "--pipelines-dir", "pg_state"]
            if kind == "postgres"
            else []
        )

    def command(self, *args: str) -> str:
        """Run `kore-sessions` on this warehouse; its stdout (the test fails on an error)."""
        result = kore([*args, *self.flags], self.env, self.cwd)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def rows(self, table: str, columns: str = "*") -> list[tuple]:
        """Rows of a table of the dataset."""
        sql = f'SELECT {columns} FROM "{self.dataset}"."{table}"'
        if self.kind == "postgres":
            with psycopg2.connect(POSTGRES_DSN) as connection, connection.cursor() as cursor:
                cursor.execute(sql)
                return cursor.fetchall()
        with duckdb.connect(str(self.cwd / DATABASE), read_only=True) as con:
            return con.sql(sql).fetchall()

    def report(self) -> str:
        """The HTML report of the last week."""
        written = self.command("report", "--output", "report.html", "--days", "7").strip()
        return Path(written).read_text(encoding="utf-8")


@pytest.fixture
def phone_server() -> Iterator[SandboxServer]:
    """A sandbox serving the phone sessions at the real now."""
    with SandboxServer(phone_sessions(), apps=make_apps(), now=REAL_NOW, page_cap=25) as server:
        yield server


@pytest.fixture(params=["duckdb", "postgres"])
def loaded_into(
    request: pytest.FixtureRequest, phone_server: SandboxServer, tmp_path: Path
) -> Iterator[Warehouse]:
    """The command's warehouse: DuckDB (its file), then PostgreSQL (a dataset of its own, dropped)."""
    if request.param == "duckdb":
        yield Warehouse("duckdb", phone_server, tmp_path, "kore_sessions")
        return
    request.getfixturevalue("postgres_dsn")
    dataset = f"kore_rule_{uuid.uuid4().hex[:10]}"
    try:
        yield Warehouse("postgres", phone_server, tmp_path, dataset)
    finally:
        drop_postgres_dataset(dataset)


def leaked(text: str) -> list[str]:
    """The phone numbers `text` shows."""
    return sorted(number for number in all_phone_numbers() if number in text)


def exported_text(folder: Path) -> str:
    """Every cell of every file `export` wrote into `folder`, as text."""
    texts = []
    for path in sorted(folder.iterdir()):
        if path.suffix == ".csv":
            with path.open(newline="", encoding="utf-8") as handle:
                texts.extend("\t".join(row) for row in csv.reader(handle))
        else:
            texts.extend(repr(row) for row in pq.read_table(path).to_pylist())
    return "\n".join(texts)


def test_no_phone_number_reaches_a_mart_an_export_or_the_report(loaded_into: Warehouse) -> None:
    """Phone numbers under names the old rule let through, and under `line`: in no model a BI
    tool reads, no exported file and not the report; the category tag is sliced. A user who
    names a phone tag gets it in the mart; the report still prints none of its numbers."""
    warehouse = loaded_into
    assert "models:" in warehouse.command("load")
    raw = warehouse.rows("sessions__session_tags", "value") + warehouse.rows("sessions__user_tags", "value")
    assert len(leaked(repr(raw))) == len(PHONE_TAGS) * PHONE_SESSIONS, "the raw tables hold every number"

    for table in MODELLED:
        assert not leaked(repr(warehouse.rows(table))), f"{table} shows phone numbers"
    scope, name, categories = CATEGORY_TAG
    sliced = set(warehouse.rows("fct_containment_by_tag", "tag_scope, tag_name, tag_value"))
    assert sliced == {(scope, name, value) for value in categories}, "the category, and no phone tag"
    for file_format in ("parquet", "csv"):
        folder = warehouse.cwd / f"export_{file_format}"
        warehouse.command("export", "--format", file_format, str(folder))
        assert not leaked(exported_text(folder)), f"the {file_format} export shows phone numbers"
    assert not leaked(warehouse.report()), "the report shows phone numbers"

    warehouse.command("models", "--tag", "ANI", "--tag", "line", "--tag", name)
    sliced = set(warehouse.rows("fct_containment_by_tag", "tag_name, tag_value"))
    assert {value for tag, value in sliced if tag == "ANI"} == {
        phone_number("+1415555{:04d}", index) for index in range(PHONE_SESSIONS)
    }, "a user who names the tag gets it"
    assert {tag for tag, _ in sliced} == {"ANI", "line", name}
    page = warehouse.report()
    assert not leaked(page), "the report never prints a personal value, even of a named tag"
    shown = sum(1 for session in phone_sessions() if session.start.date() < datetime.now(UTC).date())
    assert f"ANI (session tag, {shown} values: named like personal data)" in page, "complete days only"
    assert f"{name} ({scope} tag)" in page, "the category's values are listed"
