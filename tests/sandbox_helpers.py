"""What the sandbox's own tests share: a fixed clock, two bots, a bot app and an admin app, the
tokens they send, hand-made sessions and a call to the sandbox."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
from kore_sessions.sandbox import GeneratedSession, SandboxApp, SandboxServer, make_bot_ids

NOW = datetime(2025, 3, 18, 12, 0, tzinfo=UTC)
BOT_A, BOT_B = make_bot_ids(2, seed=42)
SECRET = "bot-app-secret-" + "x" * 64
ADMIN_SECRET = "admin-app-secret-" + "y" * 64
BOT_APP = SandboxApp("cs-bot", client_secret=SECRET)
ADMIN_APP = SandboxApp("cs-admin", client_secret=ADMIN_SECRET, kind="admin")


def mint(app_id: str = "cs-bot", key: Any = SECRET, alg: str = "HS256", **claims: Any) -> str:
    """Make the JWT a Kore.ai client would send (``sub`` and a fresh ``jti`` by default)."""
    payload = {"appId": app_id, "sub": "tester", "jti": uuid.uuid4().hex, **claims}
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, key, algorithm=alg)


def hand_made_session(number: int, start: datetime, minutes: float, **fields: Any) -> GeneratedSession:
    """A closed rtm session of BOT_A (or `bot_id`) lasting `minutes`, with `fields` over it."""
    defaults: dict[str, Any] = {
        "session_id": f"{number:024x}",
        "bot_id": BOT_A,
        "user_id": f"u-{number}",
        "channel": "rtm",
        "start": start,
        "end": start + timedelta(minutes=minutes),
    }
    return GeneratedSession(**{**defaults, **fields})


def call_sandbox(
    server: SandboxServer,
    path: str,
    body: Any = None,
    token: str | None = None,
    method: str = "POST",
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """Call the sandbox with a fresh bot-app token (or `token`, or exactly `headers`)."""
    sent = {"auth": token or mint()} if headers is None else headers
    kwargs: dict[str, Any] = {} if body is None else {"json": body}
    with httpx.Client(base_url=server.url, timeout=10) as client:
        return client.request(method, path, params=params, headers=sent, **kwargs)


def error_msg(response: httpx.Response) -> str:
    """The first error message of a Kore-like error body."""
    return response.json()["errors"][0]["msg"]
