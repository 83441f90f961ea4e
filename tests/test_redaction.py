"""Secrets are masked in whatever the command prints, even when an error carries one."""

import argparse
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from dlt.common.configuration.container import Container
from dlt.common.configuration.specs.pluggable_run_context import PluggableRunContext
from kore_sessions.cli.parser import run_guarded, setup_logging

pytestmark = pytest.mark.unit

SECRET = "s3cr3t-value-for-redaction-test"


def test_error_messages_and_log_lines_are_redacted(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SOURCES__KORE_SESSIONS__CREDENTIALS__CLIENT_SECRET", SECRET)
    setup_logging(quiet=False)
    logging.getLogger("kore_sessions").info("progress with %s inside", SECRET)

    def failing(_: argparse.Namespace) -> int:
        raise RuntimeError(f"the server echoed {SECRET} back")

    assert run_guarded(failing, argparse.Namespace()) == 1
    printed = capsys.readouterr()
    assert SECRET not in printed.out + printed.err
    assert printed.err.count("***") == 2


# A warehouse password, and the connection string that carries it.
PASSWORD = "S3cretPassw0rd"
DSN = f"postgresql://kore:{PASSWORD}@db.internal.example:5432/warehouse"
# Settings that are not credentials: they must stay readable in every message.
PLAIN_SETTINGS = {
    "SOURCES__KORE_SESSIONS__BOT_IDS": "st-aaaaaaaa-0000-4000-8000-000000000001",
    "SOURCES__KORE_SESSIONS__CREDENTIALS__CLIENT_ID": "cs-plain-client-id",
    "SOURCES__KORE_SESSIONS__HOST": "https://platform.kore.ai",
    "DESTINATION__DUCKDB__CREDENTIALS": "warehouse/kore_warehouse.duckdb",
}


def printed_by_a_failure(message: str, capsys: pytest.CaptureFixture[str]) -> str:
    """What the command prints when a run fails with `message`."""

    def failing(_: argparse.Namespace) -> int:
        raise RuntimeError(message)

    run_guarded(failing, argparse.Namespace())
    printed = capsys.readouterr()
    return printed.out + printed.err


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DESTINATION__POSTGRES__CREDENTIALS", DSN),
        ("DESTINATION__POSTGRES__CREDENTIALS__PASSWORD", PASSWORD),
        ("PGPASSWORD", PASSWORD),
        ("WAREHOUSE_DSN", f"host=db password={PASSWORD}"),
        ("AWS_SECRET_ACCESS_KEY", "AKIAsecretaccesskey0"),
        ("DESTINATION__SNOWFLAKE__CREDENTIALS__PRIVATE_KEY_PASSPHRASE", "a-long-passphrase"),
        ("MOTHERDUCK_TOKEN", "md-token-0123456789"),
        ("OPENAI_API_KEY", "sk-0123456789abcdef"),
        (
            "SOURCES__KORE_SESSIONS__CREDENTIALS__PRIVATE_KEY",
            "-----BEGIN KEY-----\nMIIEvQIBADANBg\n-----END KEY-----",
        ),
    ],
)
def test_settings_named_like_credentials_are_masked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str, value: str
) -> None:
    """Every variable whose name says it carries a credential (not only SECRET/PASSWORD/TOKEN):
    its value, or a connection string's password, never shows; plain settings still do."""
    for plain, text in PLAIN_SETTINGS.items():
        monkeypatch.setenv(plain, text)
    monkeypatch.setenv(name, value)
    secret = PASSWORD if PASSWORD in value else value.splitlines()[1] if "\n" in value else value
    printed = printed_by_a_failure(
        f"the driver said {value!r} to {' '.join(PLAIN_SETTINGS.values())}", capsys
    )
    assert secret not in printed, printed
    for text in PLAIN_SETTINGS.values():
        assert text in printed, f"{text} masked: {printed}"


@pytest.mark.parametrize(
    "message",
    [
        f'invalid dsn: "postgresql://kore:{PASSWORD}@[bad:5432/x?connect_timeout=15"',
        f"could not connect to snowflake://jane:{PASSWORD}@account/db/schema",
        f"postgresql://kore:p@ss{PASSWORD}@db:5432/x refused",
        f"host=db port=5432 user=kore password={PASSWORD} dbname=x",
        f"md:warehouse?motherduck_token={PASSWORD}&saas_mode=true",
    ],
)
def test_a_password_in_any_message_is_masked_even_if_never_configured(
    message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A driver may echo a connection string the process never saw whole: the password of any
    URL with userinfo, and any `password=` parameter, is masked wherever it shows."""
    printed = printed_by_a_failure(message, capsys)
    assert PASSWORD not in printed and "***" in printed, printed


@pytest.mark.parametrize(
    ("message", "withheld"),
    [
        (
            "ArrowInvalid: Could not convert 'jane@example.com' with type str: tried to convert to int64",
            "ArrowInvalid: Could not convert <value> with type str: tried to convert to int64",
        ),
        (
            "Failed to parse string: 'jane@example.com' as a scalar of type int64",
            "Failed to parse string: <value> as a scalar of type int64",
        ),
        (
            "Conversion Error: Could not convert string 'jane@example.com' to INT32 LINE 1: "
            "INSERT INTO t VALUES ('jane@example.com', 'O''Hara') ^",
            "Conversion Error: Could not convert string <value> to INT32 LINE 1: "
            "INSERT INTO t VALUES ('<value>', '<value>') ^",
        ),
        (
            'invalid timestamp field format: "jane@example.com", expected format is (YYYY-MM-DD)',
            "invalid timestamp field format: <value>, expected format is (YYYY-MM-DD)",
        ),
        (
            'invalid input syntax for type bigint: "jane@example.com"',
            "invalid input syntax for type bigint: <value>",
        ),
        (
            'duplicate key value violates unique constraint "t_pkey" DETAIL: '
            "Key (user_id)=(jane@example.com) already exists.",
            'duplicate key value violates unique constraint "t_pkey" DETAIL: '
            "Key (user_id)=(<value>) already exists.",
        ),
        (
            'null value in column "b" of relation "t" violates not-null constraint DETAIL: Failing row '
            "contains (s-1, jane@example.com, null).",
            'null value in column "b" of relation "t" violates not-null constraint DETAIL: Failing row '
            "contains (<value>).",
        ),
        ('Token "jane@example.com" is invalid.', "Token <value> is invalid."),
        ("Unable to parse string [jane@example.com]", "Unable to parse string [<value>]"),
        (
            'Could not parse string "jane@example.com" according to format specifier "%Y"',
            'Could not parse string <value> according to format specifier "%Y"',
        ),
        (
            'Malformed JSON at byte 0 of input: unexpected character.  Input: "{bad jane@example.com"',
            "Malformed JSON at byte 0 of input: unexpected character. Input: <value>",
        ),
    ],
)
def test_values_quoted_by_the_libraries_are_withheld(
    message: str, withheld: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """pyarrow, DuckDB, PostgreSQL and pendulum quote the value they refuse: a session's value
    (a person's data) is withheld from the line, the rest of the message is kept."""
    printed = printed_by_a_failure(message, capsys)
    assert printed.strip() == f"kore-sessions: error: RuntimeError: {withheld}"


@pytest.mark.parametrize(
    "message",
    [
        'relation "kore_sessions.sessions" does not exist',
        "bot st-aaaaaaaa-0000-4000-8000-000000000001: window 2026-11-01 00:00:00..2026-11-07 00:00:00",
        "missing configuration of the postgres destination: credentials; set it as "
        "DESTINATION__POSTGRES__CREDENTIALS (e.g. a connection string postgresql://user:password@host:5432/database)",
        "HTTP 404 from Kore.ai: not found (check the host https://platform.kore.ai:443/api and the bot id)",
        "session 6465cf6e4769ed4e822b82a1: start_time is not a timestamp (it is a string)",
        "max_tokens=5 and https://jane@example.com/path",
    ],
)
def test_ordinary_messages_are_left_alone(message: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Masking is precise: messages that quote no credential and no value keep every word."""
    assert printed_by_a_failure(message, capsys).strip() == f"kore-sessions: error: RuntimeError: {message}"


@pytest.fixture
def dlt_settings(tmp_path: Path) -> Iterator[Path]:
    """The `.dlt` folder of the working folder, read afresh by dlt's providers (and forgotten
    after the test)."""
    folder = tmp_path / ".dlt"
    folder.mkdir()
    context = Container()[PluggableRunContext]
    yield folder
    shutil.rmtree(folder)
    context.reload_providers()


def test_values_of_secrets_toml_and_credentials_of_config_toml_are_masked(
    dlt_settings: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every value dlt reads from secrets.toml is masked, and so is a credential (a password,
    a connection string) in config.toml; config.toml's plain settings stay readable."""
    (dlt_settings / "secrets.toml").write_text(
        '[destination.postgres.credentials]\nusername = "kore"\npassword = "TomlPassw0rd-1"\n'
        '[destination.bigquery.credentials]\nprivate_key = "-----BEGIN-----\\nMIIEvQIBADAN\\n-----END-----"\n'
        '[sources.kore_sessions]\nwebhook_signature = "opaque-value-42"\n'
    )
    (dlt_settings / "config.toml").write_text(
        '[destination.mssql.credentials]\nhost = "db.internal.example"\npassword = "ConfigPassw0rd"\n'
        f'[destination.snowflake]\ncredentials = "{DSN}"\n'
    )
    Container()[PluggableRunContext].reload_providers()
    printed = printed_by_a_failure(
        "TomlPassw0rd-1 MIIEvQIBADAN opaque-value-42 ConfigPassw0rd S3cretPassw0rd on db.internal.example",
        capsys,
    )
    for secret in ("TomlPassw0rd-1", "MIIEvQIBADAN", "opaque-value-42", "ConfigPassw0rd", PASSWORD):
        assert secret not in printed, printed
    assert "db.internal.example" in printed


def test_a_log_record_and_its_traceback_are_redacted(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A progress line logged with its exception: the traceback is redacted like the line."""
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", DSN)
    setup_logging(quiet=False)
    try:
        raise ValueError(f"Could not convert 'jane@example.com' with type str: tried to convert, {DSN}")
    except ValueError:
        logging.getLogger("kore_sessions").warning("load failed for %s", DSN, exc_info=True)
    printed = capsys.readouterr().err
    assert "Traceback" in printed and "ValueError" in printed
    assert PASSWORD not in printed and "jane" not in printed, printed


def test_dlt_log_lines_are_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    """dlt's own warnings reach the same stderr: they pass the same filter."""
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", DSN)
    setup_logging(quiet=False)
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    dlt_logger = logging.getLogger("dlt")
    dlt_logger.addHandler(handler)
    try:
        dlt_logger.warning("retrying %s: Failing row contains (s-1, jane@example.com)", DSN)
    finally:
        dlt_logger.removeHandler(handler)
    assert seen and PASSWORD not in seen[0] and "jane" not in seen[0], seen


def test_a_dagster_failure_description_is_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    """The orchestration's failure descriptions follow the same rule as the command's line."""
    dagster_defs = pytest.importorskip("kore_sessions.orchestration.dagster_defs")
    message = f"Could not convert 'jane@example.com' with type str: tried to convert to int64 at {DSN}"
    with pytest.raises(Exception) as caught, dagster_defs.step_failures():
        raise RuntimeError(message)
    description = caught.value.description  # type: ignore[attr-defined]
    assert PASSWORD not in description and "jane" not in description, description
