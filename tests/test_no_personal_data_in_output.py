"""No personal data and no credential in what `kore-sessions` prints: the command in a
subprocess against the sandbox, its one-line failure read for the values it must not show."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from subprocess import CompletedProcess

import kore_sessions.sandbox.app
import pytest
from kore_sessions.sandbox import GeneratedSession, SandboxServer, generate_sessions

from .cli_helpers import cli_env, kore
from .conftest import BOTS, REAL_NOW, make_apps

# A person's data, recognisable wherever it would show.
USER_ID = "jane.doe@example.com"
CALLER_NUMBER = "+15551234567"
FULL_NAME = "Jane Quincy Doe"
PERSONAL_VALUES = (USER_ID, CALLER_NUMBER, FULL_NAME, "jane", "Jane", "5551234567")
# A warehouse password that must never be printed.
PASSWORD = "S3cretPassw0rd"


def error_line(result: CompletedProcess[str]) -> str:
    """The command's failure line (after its progress lines), checking it failed with 1 or 2."""
    assert result.returncode in (1, 2), result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("kore-sessions: error: "), result.stderr
    return lines[-1]


def with_person(session: GeneratedSession, **extra: object) -> GeneratedSession:
    """A session of Jane's: her e-mail as user id, her name and number in its tags; the API shows
    it at once (the generator may make the newest session a late arrival, unseen yet)."""
    return replace(
        session,
        visible_at=None,
        user_id=USER_ID,
        user_tags=(("email", USER_ID), ("fullName", FULL_NAME)),
        session_tags=(("callerNumber", CALLER_NUMBER),),
        extra=extra,
    )


def run_with_broken_session(tmp_path: Path, **extra: object) -> tuple[CompletedProcess[str], str]:
    """`kore-sessions load` on one bot whose last session is Jane's, with `extra` over its JSON:
    the finished command and the broken session's id."""
    sessions = generate_sessions(BOTS[:1], REAL_NOW - timedelta(hours=5), REAL_NOW, per_day=200, seed=3)
    broken = with_person(sessions[-1], **extra)
    with SandboxServer([*sessions[:-1], broken], apps=make_apps(), now=REAL_NOW, page_cap=50) as server:
        env = cli_env(server, tmp_path, SOURCES__KORE_SESSIONS__BOT_IDS=BOTS[0])
        result = kore(["load"], env, tmp_path)
    return result, broken.session_id


def assert_no_personal_data(result: CompletedProcess[str]) -> None:
    """None of Jane's values is in anything the command printed."""
    printed = result.stdout + result.stderr
    for value in PERSONAL_VALUES:
        assert value not in printed, f"{value!r} printed: {printed}"


@pytest.mark.parametrize(
    "start_time", [None, "Jane Quincy Doe", "+15551234567"], ids=["missing", "a-name", "a-number"]
)
def test_a_bad_start_time_is_named_by_session_and_field_not_by_values(
    tmp_path: Path, start_time: str | None
) -> None:
    """A session whose start_time is missing or not a timestamp: the line names the session id
    and `start_time`, and no value of the session (user id, tags, the bad value itself)."""
    result, session_id = run_with_broken_session(tmp_path, start_time=start_time)
    line = error_line(result)
    assert session_id in line and "start_time" in line, line
    assert_no_personal_data(result)


def test_a_value_that_does_not_fit_its_column_is_named_by_session_and_column(tmp_path: Path) -> None:
    """A count holding text (Arrow refuses it, quoting the value): the line names the session
    and the column, not the value."""
    result, session_id = run_with_broken_session(tmp_path, noOfMessagesExchanged=USER_ID)
    line = error_line(result)
    assert session_id in line and "no_of_messages_exchanged" in line, line
    assert_no_personal_data(result)


def test_a_bad_shape_answer_is_described_by_its_shape_not_its_values(
    live_server: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An answer whose `sessions` is an object holding Jane's session: the line says what shape
    it has, and shows none of its values (nor a key that is data)."""
    body = {"total": 1, "moreAvailable": False, "sessions": {USER_ID: {"userId": USER_ID, "name": FULL_NAME}}}
    monkeypatch.setattr(kore_sessions.sandbox.app, "BAD_SHAPE_BODY", body)
    live_server.inject("bad_shape", count=10)
    result = kore(["load"], cli_env(live_server, tmp_path), tmp_path)
    line = error_line(result)
    assert "sessions" in line and "list" in line, line
    assert_no_personal_data(result)


@pytest.mark.parametrize(
    "dsn",
    [
        f"postgresql://kore:{PASSWORD}@127.0.0.1:1/x",  # refused: the driver names host and port
        f"postgresql://kore:{PASSWORD}@[bad/x",  # malformed: the driver echoes the whole DSN
    ],
    ids=["unreachable", "echoed-by-the-driver"],
)
def test_the_warehouse_password_of_a_connection_string_is_masked(
    live_server: SandboxServer, tmp_path: Path, dsn: str
) -> None:
    """`DESTINATION__POSTGRES__CREDENTIALS=postgresql://user:password@...`: the failure line
    never shows the password, whoever wrote it into the message."""
    env = cli_env(live_server, tmp_path, DESTINATION__POSTGRES__CREDENTIALS=dsn)
    result = kore(["load", "--destination", "postgres"], env, tmp_path)
    error_line(result)
    assert PASSWORD not in result.stdout + result.stderr, result.stderr


def test_a_password_of_secrets_toml_is_masked(live_server: SandboxServer, tmp_path: Path) -> None:
    """The destination's credentials as a table of `.dlt/secrets.toml`: its password is never
    printed (here the driver echoes the connection string dlt builds from it)."""
    settings = tmp_path / ".dlt"
    settings.mkdir()
    (settings / "secrets.toml").write_text(
        "[destination.postgres.credentials]\n"
        f'database = "x"\nusername = "kore"\npassword = "{PASSWORD}"\nhost = "[bad"\nport = 5432\n'
    )
    result = kore(["load", "--destination", "postgres"], cli_env(live_server, tmp_path), tmp_path)
    line = error_line(result)
    assert "***" in line and PASSWORD not in result.stdout + result.stderr, result.stderr
