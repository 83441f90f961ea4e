"""Every client of a process shares one TLS context (httpx would read the CA bundle anew for
each), and a CA bundle named in the environment gives a context of its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import certifi
import httpx
import pytest
from kore_sessions.source.api import client as client_module
from kore_sessions.source.api.client import KoreClient
from kore_sessions.source.api.credentials import KoreCredentials

pytestmark = pytest.mark.unit


def contexts_given(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The `verify` each new httpx client of the module is given."""
    given: list[Any] = []
    original = httpx.Client

    def recording(*args: Any, **kwargs: Any) -> httpx.Client:
        given.append(kwargs.get("verify"))
        return original(*args, **kwargs)

    monkeypatch.setattr(client_module.httpx, "Client", recording)
    return given


def make_client(tmp_path: Path) -> KoreClient:
    credentials = KoreCredentials(client_id="cs-a", client_secret="secret-of-the-app-" + "x" * 16)
    return KoreClient("https://platform.example", credentials, budget=None)


def test_clients_share_one_context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    given = contexts_given(monkeypatch)
    for _ in range(3):
        make_client(tmp_path).close()
    assert len(given) == 3 and given[0] is given[1] is given[2]
    assert given[0].verify_mode.name == "CERT_REQUIRED" and given[0].check_hostname


def test_a_bundle_named_in_the_environment_gets_its_own_context(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    given = contexts_given(monkeypatch)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    make_client(tmp_path).close()
    monkeypatch.setenv("SSL_CERT_FILE", certifi.where())
    make_client(tmp_path).close()
    assert given[0] is not given[1]
