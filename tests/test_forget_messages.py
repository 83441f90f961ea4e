"""`forget --user-id` erases a person's messages too, and the erasure holds for them as for
sessions: every load step takes them out of the packages it is about to load.

The tables are written by hand here, as the source writes them (a message's `_dlt_id` is its
id, which its components and tags name as `_dlt_root_id`), on DuckDB and PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dlt
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from kore_sessions.runtime.pipeline import make_pipeline
from kore_sessions.sandbox import SandboxServer
from kore_sessions.source.api.timestamps import format_api_timestamp
from kore_sessions.source.messages.history_rules import MESSAGE_KEY, MESSAGES_TABLE
from kore_sessions.source.messages.message_columns import MESSAGE_CHILD_TABLES, MESSAGE_COLUMNS
from kore_sessions.warehouse.erasures import (
    ERASED_TABLE,
    MESSAGE_CHILD_TABLE_NAMES,
    MESSAGE_SESSION_COLUMN,
    MESSAGE_USER_COLUMN,
    ErasuresUnreadableError,
    KeptOut,
    erased_key,
    keep_erasures_out,
)
from kore_sessions.warehouse.forget import forget_users

from .cli_helpers import DATABASE, cli_env, kore
from .conftest import BOTS, POSTGRES_DSN, api_time, drop_postgres_dataset

PERSON = "erased.person@example.org"
OTHER = "kept-user-0002"
STARTED = datetime(2026, 10, 30, 9, 0, tzinfo=UTC)
COMPONENTS, TAGS = (child.table for child in MESSAGE_CHILD_TABLES)

# The person's two sessions and another user's; m3 is in a session the warehouse never held.
SESSIONS = [("s-p1", BOTS[0], PERSON), ("s-p2", BOTS[1], PERSON), ("s-o1", BOTS[0], OTHER)]
# (message id, session, created_by): m2 is an agent's reply without the user, m5 has neither.
MESSAGES = [
    ("m1", "s-p1", PERSON),
    ("m2", "s-p1", None),
    ("m3", "s-unloaded", PERSON),
    ("m4", "s-o1", OTHER),
    ("m5", None, None),
]
THEIRS = {"m1", "m2", "m3"}


@dataclass(frozen=True)
class Layout:
    """Which tables a dataset holds (the rest do not exist)."""

    sessions: bool = True
    messages: bool = True
    tags: bool = True


@pytest.fixture
def pipeline(warehouse: str, tmp_path: Path) -> Iterator[dlt.Pipeline]:
    """A pipeline into an empty dataset of the warehouse (dropped afterwards on PostgreSQL)."""
    if warehouse == "postgres":
        made = make_pipeline(
            dlt.destinations.postgres(credentials=POSTGRES_DSN),
            dataset_name=f"kore_test_{uuid.uuid4().hex[:10]}",
            pipelines_dir=tmp_path / "pipelines",
        )
        yield made
        drop_postgres_dataset(made.dataset_name)
    else:
        yield make_pipeline("duckdb", pipelines_dir=tmp_path / "pipelines", duckdb_path=tmp_path / "w.duckdb")


def create(sql: Any, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A table of the client's dataset with these columns (timestamps for `*_time`/`created_on`,
    text otherwise) and rows."""
    kinds = {"start_time": "TIMESTAMP WITH TIME ZONE", "created_on": "TIMESTAMP WITH TIME ZONE"}
    listed = ", ".join(f"{name} {kinds.get(name, 'VARCHAR')}" for name in columns)
    qualified = sql.make_qualified_table_name(table)
    sql.execute_sql(f"CREATE TABLE {qualified} ({listed})")
    marks = ", ".join(["%s"] * len(columns))
    for row in rows:
        sql.execute_sql(f"INSERT INTO {qualified} ({', '.join(columns)}) VALUES ({marks})", *row)


def child_rows(message_ids: Sequence[str], per_message: int) -> list[tuple[str, ...]]:
    """`_dlt_root_id`, `_dlt_parent_id`, `_dlt_id`, `text` of child rows of these messages."""
    return [(m, m, f"{m}:{i}", f"{PERSON} said {i}") for m in message_ids for i in range(per_message)]


def fill(
    sql: Any, sessions: list[tuple[str, str, str]], messages: list[tuple[Any, ...]], layout: Layout
) -> None:
    """Write sessions, their tags, messages, their components and tags into the client's dataset."""
    if not sql.has_dataset():
        sql.create_dataset()
    if layout.sessions:
        rows = [(sid, sid, bot, user, STARTED) for sid, bot, user in sessions]
        create(sql, "sessions", ("_dlt_id", "session_id", "bot_id", "user_id", "start_time"), rows)
        tags = [(sid, sid, f"{sid}:0", PERSON) for sid, _, _ in sessions]
        create(sql, "sessions__user_tags", ("_dlt_root_id", "_dlt_parent_id", "_dlt_id", "value"), tags)
    if layout.messages:
        rows = [(mid, mid, sid, BOTS[0], user, STARTED, f"hello from {user}") for mid, sid, user in messages]
        columns = ("_dlt_id", MESSAGE_KEY, "session_id", "bot_id", "created_by", "created_on", "text")
        create(sql, MESSAGES_TABLE, columns, rows)
        child_columns = ("_dlt_root_id", "_dlt_parent_id", "_dlt_id", "text")
        create(sql, COMPONENTS, child_columns, child_rows([m[0] for m in messages], 2))
        if layout.tags:
            create(sql, TAGS, child_columns, child_rows([m[0] for m in messages], 1))


def ids_in(sql: Any, table: str, column: str = "_dlt_id") -> set[str]:
    """Values of a column of a table of the client's dataset."""
    return {
        str(v) for (v,) in sql.execute_sql(f"SELECT {column} FROM {sql.make_qualified_table_name(table)}")
    }


def test_the_erasure_knows_the_messages_columns() -> None:
    """The columns the erasure reads are the messages' own, so a renamed column fails here."""
    names = {column.name for column in MESSAGE_COLUMNS}
    assert {MESSAGE_SESSION_COLUMN, MESSAGE_USER_COLUMN} <= names
    assert {child.table for child in MESSAGE_CHILD_TABLES} == MESSAGE_CHILD_TABLE_NAMES


def test_forget_erases_the_messages_of_the_person_and_of_their_sessions(pipeline: dlt.Pipeline) -> None:
    """Messages of the person's sessions and messages they are the user of go, with their
    components and tags, from the dataset and its staging copy; nobody else's go; the lines
    printed name no person, session or message."""
    staged_messages = [("m6", "s-unloaded-2", PERSON), ("m4", "s-o1", OTHER)]
    with pipeline.sql_client() as sql:
        fill(sql, SESSIONS, MESSAGES, Layout())
        with sql.with_alternative_dataset_name(f"{pipeline.dataset_name}_staging"):
            fill(sql, SESSIONS[:1], staged_messages, Layout())
    forgotten = forget_users(pipeline, [PERSON, PERSON])
    assert (forgotten.users, forgotten.sessions, forgotten.child_rows) == (1, 2, 2)
    assert (forgotten.messages, forgotten.message_rows) == (3, 3 * 2 + 3 * 1)
    assert not forgotten.models_rebuilt, "no model was ever built"
    printed = "\n".join(forgotten.lines())
    assert "forgot 2 sessions of 1 user(s)" in printed and "forgot 3 messages" in printed
    assert "9 component and tag rows" in printed
    assert not any(value in printed for value in (PERSON, "s-p1", "m1", "m3")), printed
    with pipeline.sql_client() as sql:
        left = {message_id for message_id, _, _ in MESSAGES} - THEIRS
        assert ids_in(sql, MESSAGES_TABLE) == left == {"m4", "m5"}
        assert ids_in(sql, COMPONENTS, "_dlt_root_id") == ids_in(sql, TAGS, "_dlt_root_id") == left
        assert ids_in(sql, "sessions") == {"s-o1"}
        with sql.with_alternative_dataset_name(f"{pipeline.dataset_name}_staging"):
            assert ids_in(sql, MESSAGES_TABLE) == {"m4"}, "m6 is theirs, though the dataset never held it"
            assert ids_in(sql, COMPONENTS, "_dlt_root_id") == ids_in(sql, TAGS, "_dlt_root_id") == {"m4"}
            assert not ids_in(sql, "sessions")


def test_forget_touches_only_the_tables_that_exist(pipeline: dlt.Pipeline) -> None:
    """A dataset that loads messages only (no `sessions`), without `messages__tags`, and whose
    staging dataset holds sessions only: the person's messages go by their `created_by`, and no
    statement on a missing table aborts the transaction (PostgreSQL)."""
    with pipeline.sql_client() as sql:
        fill(sql, [], MESSAGES, Layout(sessions=False, tags=False))
        with sql.with_alternative_dataset_name(f"{pipeline.dataset_name}_staging"):
            fill(sql, SESSIONS, [], Layout(messages=False))
    forgotten = forget_users(pipeline, [PERSON])
    assert (forgotten.sessions, forgotten.messages, forgotten.message_rows) == (0, 2, 4)
    with pipeline.sql_client() as sql:
        assert ids_in(sql, MESSAGES_TABLE) == {"m2", "m4", "m5"}, "m2's session was never loaded"
        assert ids_in(sql, COMPONENTS, "_dlt_root_id") == {"m2", "m4", "m5"}
        with sql.with_alternative_dataset_name(f"{pipeline.dataset_name}_staging"):
            assert ids_in(sql, "sessions") == {"s-o1"}


def test_forget_says_nothing_of_messages_where_none_are_loaded(pipeline: dlt.Pipeline) -> None:
    """A warehouse of sessions only prints what it printed before."""
    with pipeline.sql_client() as sql:
        fill(sql, SESSIONS, [], Layout(messages=False))
    forgotten = forget_users(pipeline, [PERSON])
    assert forgotten.sessions == 2 and not forgotten.messages_held
    assert not any("messages" in line for line in forgotten.lines())


# --- the load step's filter ----------------------------------------------------------------


def parquet(folder: Path, table: str, file_id: str, columns: dict[str, list[Any]]) -> Path:
    """A package's data file, named as dlt names them (`table.file_id.retry.format`)."""
    path = folder / f"{table}.{file_id}.0.parquet"
    pq.write_table(pa.table(columns), path)
    return path


def message_file(folder: Path, file_id: str, rows: list[tuple[Any, ...]], with_user: bool = True) -> Path:
    """A `messages` file of (id, session, created_by) rows (without `created_by` if told)."""
    columns = {"_dlt_id": [r[0] for r in rows], MESSAGE_KEY: [r[0] for r in rows]}
    columns["session_id"] = [r[1] for r in rows]
    if with_user:
        columns["created_by"] = [r[2] for r in rows]
    return parquet(folder, MESSAGES_TABLE, file_id, columns)


def child_file(folder: Path, table: str, file_id: str, roots: list[str]) -> Path:
    """A child table's file with one row per root named."""
    return parquet(folder, table, file_id, {"_dlt_root_id": roots, "_dlt_id": [f"{r}:0" for r in roots]})


def column_of(path: Path, column: str = "_dlt_id") -> list[Any]:
    """A data file's column, as it is now."""
    return pq.read_table(path).column(column).to_pylist()


@pytest.fixture
def jobs(tmp_path: Path) -> Path:
    """A package's `new_jobs` folder."""
    folder = tmp_path / "package" / "new_jobs"
    folder.mkdir(parents=True)
    return folder


def test_a_load_step_leaves_the_erased_persons_messages_out(pipeline: dlt.Pipeline, jobs: Path) -> None:
    """After the erasure, a package holds: a new session of the person (with messages that do
    not name the user), messages of a session erased before, messages the person is the user
    of in a session the package does not hold, and others'. The messages files come first, as
    a sorted listing gives them; the session taken out in the same step still takes its
    messages along, and the children follow their messages."""
    with pipeline.sql_client() as sql:
        fill(sql, SESSIONS, MESSAGES, Layout())
    forget_users(pipeline, [PERSON])
    rows = [
        ("a", "s-p1", OTHER),  # a session erased before, by id
        ("b", "s-new", None),  # a session of the person taken out in this step
        ("c", "s-elsewhere", PERSON),  # the person is the user
        ("d", "s-keep", OTHER),
        ("e", None, None),
    ]
    first = message_file(jobs, "m0001", rows)
    second = message_file(jobs, "m0002", [("f", "s-new", None), ("g", "s-keep", None)], with_user=False)
    components = child_file(jobs, COMPONENTS, "c0001", ["a", "b", "c", "d", "e", "f", "g", "a"])
    tags = child_file(jobs, TAGS, "t0001", ["d", "c"])
    session_columns = {
        "session_id": ["s-new", "s-keep"],
        "bot_id": [BOTS[0], BOTS[0]],
        "user_id": [PERSON, OTHER],
        "start_time": [STARTED, STARTED],
    }
    sessions = parquet(jobs, "sessions", "s0001", session_columns)
    pending = sorted(jobs.iterdir())
    assert pending.index(first) < pending.index(sessions), "the messages come first"
    kept = keep_erasures_out(pipeline, pending)
    assert kept == KeptOut(sessions=1, messages=4)
    assert column_of(sessions, "session_id") == ["s-keep"]
    assert column_of(first) == ["d", "e"] and column_of(second) == ["g"]
    assert column_of(components, "_dlt_root_id") == ["d", "e", "g"]
    assert column_of(tags, "_dlt_root_id") == ["d"]
    with pipeline.sql_client() as sql:
        erased = ids_in(sql, ERASED_TABLE, "session_key")
    assert erased == {erased_key(sid) for sid in ("s-p1", "s-p2", "s-new")}, "sessions only, by hash"
    assert not list(jobs.parent.glob(".*")), "no partial file left"


def test_a_package_without_the_erased_is_left_as_it_was(pipeline: dlt.Pipeline, jobs: Path) -> None:
    """No message of an erased person, no rewrite: the files keep their bytes."""
    with pipeline.sql_client() as sql:
        fill(sql, SESSIONS, [], Layout(messages=False))
    forget_users(pipeline, [PERSON])
    files = [message_file(jobs, "m0001", [("d", "s-keep", OTHER)]), child_file(jobs, TAGS, "t0001", ["d"])]
    before = [path.read_bytes() for path in files]
    assert keep_erasures_out(pipeline, files) == KeptOut()
    assert [path.read_bytes() for path in files] == before


def test_messages_in_a_format_the_filter_cannot_rewrite_fail_the_load(
    pipeline: dlt.Pipeline, jobs: Path
) -> None:
    """Once there is an erasure, a `messages` file that is not Parquet fails closed."""
    with pipeline.sql_client() as sql:
        fill(sql, SESSIONS, [], Layout(messages=False))
    forget_users(pipeline, [PERSON])
    written = jobs / f"{MESSAGES_TABLE}.m0001.0.jsonl"
    written.write_text('{"_dlt_id": "c", "created_by": "x"}\n')
    with pytest.raises(ErasuresUnreadableError, match="parquet files only"):
        keep_erasures_out(pipeline, [written])


def test_no_erasure_reads_no_file(tmp_path: Path, jobs: Path) -> None:
    """Before any erasure (no warehouse yet), the filter opens nothing, whatever the files."""
    pipeline = make_pipeline(
        "duckdb", pipelines_dir=tmp_path / "pipelines", duckdb_path=tmp_path / "w.duckdb"
    )
    written = jobs / f"{MESSAGES_TABLE}.m0001.0.jsonl"
    written.write_text("not read\n")
    assert keep_erasures_out(pipeline, [written]) == KeptOut()
    assert not (tmp_path / "w.duckdb").exists()


# --- end to end: the command, the sandbox, sessions and messages ----------------------------

# Both resources, configured the documented way.
BOTH = {"SOURCES__KORE_SESSIONS__RESOURCES": '["sessions","messages"]'}
MESSAGE_TABLES = (MESSAGES_TABLE, COMPONENTS, TAGS)


def messages_of(server: SandboxServer, person: str, sessions: set[str]) -> list[dict[str, Any]]:
    """The messages the sandbox serves of a person (in their sessions, or theirs), as served."""
    return [
        view
        for view in server.visible_messages(BOTS[0], version=2) + server.visible_messages(BOTS[1], version=2)
        if view["createdBy"] == person or view["sessionId"] in sessions
    ]


def asked_for(requests: list[Any], view: dict[str, Any]) -> bool:
    """Whether one of these requests asked for a window and channel holding the message."""
    created = api_time(view["createdOn"])
    return any(
        "getMessages" in request.path
        and request.bot_id == view["botId"]
        and (request.body or {}).get("channelType", "rtm") == view["chnl"]
        and api_time(request.body["dateFrom"]) <= created <= api_time(request.body["dateTo"])
        for request in requests
    )


def message_ids_held(database: Path) -> dict[str, set[str]]:
    """The message ids each messages table holds (children by `_dlt_root_id`), in the dataset
    and in every staging dataset, by `schema.table`."""
    held: dict[str, set[str]] = {}
    with duckdb.connect(str(database), read_only=True) as con:
        tables = con.sql(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema LIKE 'kore_sessions%' AND table_name LIKE 'messages%'"
        ).fetchall()
        for schema, table in tables:
            column = "_dlt_id" if table == MESSAGES_TABLE else "_dlt_root_id"
            rows = con.sql(f'SELECT {column} FROM "{schema}"."{table}"').fetchall()
            held[f"{schema}.{table}"] = {row[0] for row in rows}
    return held


def persons_rows(database: Path, person: str, sessions: set[str], messages: set[str]) -> dict[str, int]:
    """Rows of the person anywhere in the messages tables (dataset and staging): by message id,
    by session, by `created_by`; by table, only those that hold some."""
    found = {name: len(ids & messages) for name, ids in message_ids_held(database).items()}
    with duckdb.connect(str(database), read_only=True) as con:
        schemas = {name.split(".")[0] for name in found if name.endswith(f".{MESSAGES_TABLE}")}
        for schema in schemas:
            marks = ", ".join("?" * len(sessions))
            rows = con.sql(
                f'SELECT COUNT(*) FROM "{schema}".{MESSAGES_TABLE} '
                f"WHERE created_by = ? OR session_id IN ({marks})",
                params=[person, *sessions],
            ).fetchall()
            found[f"{schema}.{MESSAGES_TABLE} (by person)"] = rows[0][0]
    return {name: count for name, count in found.items() if count}


def test_forget_erases_a_persons_messages_and_reloads_leave_them_out(
    live_server: SandboxServer, tmp_path: Path
) -> None:
    """Sessions and messages loaded; the person of a bot's newest session is forgotten: none of
    their messages is left in any messages table, staging included, and neither an incremental
    load reading their day again nor a bounded backfill over it brings one back, while the
    others' messages stay loaded."""
    env = cli_env(live_server, tmp_path, **BOTH)
    first = kore(["load", "--no-models"], env, tmp_path)
    assert first.returncode == 0, first.stderr
    newest = max(live_server.visible_sessions(BOTS[0]), key=lambda view: view["start_time"])
    person = newest["userId"]
    sessions = {view["sessionId"] for view in live_server.visible_sessions() if view["userId"] == person}
    views = messages_of(live_server, person, sessions)
    theirs = {view["_id"] for view in views}
    database = tmp_path / DATABASE
    before = message_ids_held(database)
    assert theirs & before[f"kore_sessions.{MESSAGES_TABLE}"], "their messages were loaded"
    assert persons_rows(database, person, sessions, theirs), "and are there to forget"
    forgot = kore(["forget", "--user-id", person], env, tmp_path)
    assert forgot.returncode == 0, forgot.stderr
    assert f"forgot {len(sessions)} sessions" in forgot.stdout
    assert f"forgot {len(theirs & before[f'kore_sessions.{MESSAGES_TABLE}'])} messages" in forgot.stdout
    assert person not in forgot.stdout + forgot.stderr
    assert not persons_rows(database, person, sessions, theirs), "forgotten everywhere, staging included"
    others = before[f"kore_sessions.{MESSAGES_TABLE}"] - theirs
    assert message_ids_held(database)[f"kore_sessions.{MESSAGES_TABLE}"] == others

    live_server.advance(timedelta(minutes=20))
    asked = len(live_server.requests)
    again = kore(["load", "--no-models", "--lookback-minutes", "600"], env, tmp_path)
    assert again.returncode == 0, again.stderr
    assert any("getMessages" in r.path for r in live_server.requests[asked:]), "messages read again"
    assert not persons_rows(database, person, sessions, theirs), "the lookback read them again"

    # A bounded backfill of the hours of one of their messages the warehouse held.
    loaded = [view for view in views if view["_id"] in theirs & before[f"kore_sessions.{MESSAGES_TABLE}"]]
    started = api_time(loaded[0]["createdOn"]).replace(minute=0, second=0, microsecond=0)
    start, end = format_api_timestamp(started), format_api_timestamp(started + timedelta(hours=2))
    asked = len(live_server.requests)
    backfill = kore(["load", "--no-models", "--start", start, "--end", end], env, tmp_path)
    assert backfill.returncode == 0, backfill.stderr
    assert asked_for(live_server.requests[asked:], loaded[0]), "the backfill read their message again"
    assert not persons_rows(database, person, sessions, theirs), "the backfill read them again"
    held = message_ids_held(database)[f"kore_sessions.{MESSAGES_TABLE}"]
    assert others <= held and not held & theirs
    with duckdb.connect(str(database), read_only=True) as con:
        users = con.sql("SELECT user_key FROM kore_sessions.kore_erased_users").fetchall()
    assert len(users) == 1 and person not in repr(users)
