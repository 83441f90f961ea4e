"""Secrets are masked in whatever the command prints, even when an error carries one."""

import argparse
import logging

import pytest

from pipelines.cli import run_guarded, setup_logging

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
