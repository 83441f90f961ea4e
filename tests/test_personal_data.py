"""Personal data kept in its place: marts and exports without it, erasure on request, lookups."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import duckdb
from kore_sessions.sandbox import SandboxServer

from .cli_helpers import DATABASE, cli_env, kore, loaded

TABLES = ("sessions", "sessions__session_tags", "sessions__user_tags", "sessions__session_lang")


def personal_values(server: SandboxServer) -> set[str]:
    """Every user id, caller number and call id the sandbox serves."""
    values = set()
    for view in server.visible_sessions():
        values.add(view["userId"])
        for tag in view["tags"]["sessionTags"]:
            if tag["name"] in ("callerNumber", "callId"):
                values.add(str(tag["value"]))
    return values


def test_marts_exports_and_tags_carry_no_personal_values(live_server: SandboxServer, tmp_path: Path) -> None:
    env = cli_env(live_server, tmp_path)
    assert kore(["load"], env, tmp_path).returncode == 0
    personal = personal_values(live_server)
    assert any(value.startswith("+1") for value in personal), "the sandbox serves caller numbers"
    with duckdb.connect(str(tmp_path / DATABASE), read_only=True) as con:
        names = {
            row[0]
            for row in con.sql(
                "SELECT DISTINCT tag_name FROM kore_sessions.fct_containment_by_tag"
            ).fetchall()
        }
        nulls = con.sql("SELECT COUNT(user_id), COUNT(call_id) FROM kore_sessions.fct_sessions").fetchall()
    assert names and not names & {"callerNumber", "callId"}, names
    assert nulls == [(0, 0)]
    for file_format in ("csv", "parquet"):
        out = tmp_path / file_format
        assert kore(["export", "--format", file_format, str(out)], env, tmp_path).returncode == 0
        blob = b"".join(path.read_bytes() for path in out.iterdir())
        leaked = [value for value in personal if value.encode() in blob]
        assert not leaked, f"{file_format} export carries {leaked[:3]}"
    rebuilt = kore(["models", "--tag", "callerNumber", "--include-personal-data"], env, tmp_path)
    assert rebuilt.returncode == 0, rebuilt.stderr
    with duckdb.connect(str(tmp_path / DATABASE), read_only=True) as con:
        asked = con.sql("SELECT DISTINCT tag_name FROM kore_sessions.fct_containment_by_tag").fetchall()
        kept = con.sql("SELECT COUNT(user_id) FROM kore_sessions.fct_sessions").fetchall()[0][0]
    assert asked == [("callerNumber",)] and kept > 0, "when a user asks for them, they are there"


def test_forget_erases_a_person_and_the_lookback_does_not_bring_them_back(
    live_server: SandboxServer, tmp_path: Path
) -> None:
    env = cli_env(live_server, tmp_path)
    assert kore(["load"], env, tmp_path).returncode == 0
    # a second run merges (the first appends): dlt's staging dataset then holds recent sessions
    assert kore(["load", "--lookback-minutes", "600"], env, tmp_path).returncode == 0
    newest = max(live_server.visible_sessions(), key=lambda view: view["start_time"])
    person = newest["userId"]
    theirs = {v["sessionId"] for v in live_server.visible_sessions() if v["userId"] == person}
    result = kore(["forget", "--user-id", person], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert (
        f"forgot {len(theirs)} sessions of 1 user(s)" in result.stdout and "models rebuilt" in result.stdout
    )
    assert person not in result.stdout + result.stderr
    assert not theirs & set(loaded(tmp_path))
    with duckdb.connect(str(tmp_path / DATABASE), read_only=True) as con:
        for table in TABLES:
            column = "session_id" if table == "sessions" else "_dlt_root_id"
            ids = {row[0] for row in con.sql(f"SELECT {column} FROM kore_sessions.{table}").fetchall()}
            assert not ids & theirs, table
        staged = con.sql(
            "SELECT COUNT(*) FROM kore_sessions_staging.sessions WHERE user_id = ?", params=[person]
        )
        assert staged.fetchall() == [(0,)], "the staging copy is gone too"
        erased = con.sql("SELECT * FROM kore_sessions.kore_erased_sessions").fetchall()
        assert (
            len(erased) == len(theirs)
            and person not in repr(erased)
            and not theirs & set(repr(erased).split("'"))
        )
        modelled = con.sql("SELECT COUNT(*) FROM kore_sessions.fct_sessions").fetchall()[0][0]
        assert modelled == len(loaded(tmp_path))
    files = [
        p
        for p in (tmp_path / "dlt_home").rglob("*")
        if p.is_file() and p.suffix in (".parquet", ".jsonl", ".csv")
    ]
    assert not any(person.encode() in path.read_bytes() for path in files), "no copy in dlt's working folder"
    live_server.advance(timedelta(minutes=20))
    again = kore(["load", "--lookback-minutes", "600"], env, tmp_path)
    assert again.returncode == 0, again.stderr
    assert not theirs & set(loaded(tmp_path)), "the lookback read them again and left them out"
    audit = kore(["audit", "--days", "2"], env, tmp_path)
    assert audit.returncode == 0, audit.stdout + audit.stderr


def test_lookup_prints_sessions_as_the_api_has_them(live_server: SandboxServer, tmp_path: Path) -> None:
    env = cli_env(live_server, tmp_path)
    views = live_server.visible_sessions()
    wanted = [views[0]["sessionId"], views[-1]["sessionId"]]
    result = kore(
        ["lookup", "--session-id", wanted[0], "--session-id", wanted[1], "--session-id", "nope"],
        env,
        tmp_path,
    )
    assert result.returncode == 3, "an id not found: the answer is incomplete"
    printed = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(printed, key=lambda s: s["sessionId"]) == sorted(
        [v for v in views if v["sessionId"] in wanted], key=lambda s: s["sessionId"]
    )
    assert result.stderr.strip().splitlines()[-1] == "not found: nope"
    assert not (tmp_path / DATABASE).exists(), "nothing loaded"
    voice = next(v for v in views if any(t["name"] == "callId" for t in v["tags"]["sessionTags"]))
    call_id = next(t["value"] for t in voice["tags"]["sessionTags"] if t["name"] == "callId")
    by_call = kore(["lookup", "--call-id", call_id, "--days", "6"], env, tmp_path)
    assert by_call.returncode == 0, by_call.stderr
    assert [json.loads(line)["sessionId"] for line in by_call.stdout.splitlines()] == [voice["sessionId"]]
    assert all(r.query.get("callId") == call_id for r in live_server.requests if r.query.get("callId"))
    two_calls = kore(
        ["lookup", "--call-id", "no-such-call", "--call-id", call_id, "--days", "6"], env, tmp_path
    )
    assert two_calls.returncode == 3, two_calls.stderr
    assert [json.loads(line)["sessionId"] for line in two_calls.stdout.splitlines()] == [voice["sessionId"]]
    assert two_calls.stderr.strip().splitlines()[-1] == "not found: --call-id #1 (of 2)"
    assert "no-such-call" not in two_calls.stderr, "a call id names a person's call: not echoed"
    assert {r.query.get("callId") for r in live_server.requests} >= {call_id, "no-such-call"}
