"""API apps and the JWT check the sandbox applies to every API request.

Kore.ai apps sign their own JWTs: HS256/HS512 with the client secret, or RS256/RS512
with a private key whose public half the platform holds. The claim ``appId`` names the
app; ``sub`` is required; ``jti`` is required and single-use when the app enforces it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Literal

import jwt
from kore_sessions.sandbox.errors import ApiError
from kore_sessions.sandbox.routes import SCOPES, Route
from kore_sessions.sandbox.store import SessionStore

# Signing algorithms a client secret verifies.
HMAC_ALGORITHMS = ("HS256", "HS512")
# Signing algorithms a registered public key verifies.
RSA_ALGORITHMS = ("RS256", "RS512")
# Clock skew allowed on exp/nbf/iat, in seconds, as a lenient platform would.
LEEWAY_SECONDS = 60
# 403 for an app of the wrong kind on an account route, naming the route's scope.
ADMIN_APP_TEMPLATE = "This API needs a Bot Admin Console app with the 'Bot Analytics > {scope}' scope"
# 403 for an app of the wrong kind on a per-bot route, naming the route's scope.
BOT_APP_TEMPLATE = "This API needs a bot builder app with the '{scope}' scope"
# 403 for an app whose scope is granted but not published, naming the scope.
UNPUBLISHED_TEMPLATE = "The '{scope}' API scope of this app is not published; publish the app scope and retry"
# 403 for an app without the route's scope (the platform's own wording is not documented).
MISSING_SCOPE_TEMPLATE = "This app does not have the '{scope}' API scope; add it to the app and publish"
# Scopes an app has unless told otherwise: every resource's, so apps made before scopes keep working.
ALL_SCOPES = frozenset(SCOPES.values())


@dataclass(frozen=True)
class SandboxApp:
    """An API app registered on the sandbox platform.

    Attributes:
        client_id: The app's client id (the JWT claim ``appId``).
        client_secret: Secret for HS256/HS512 tokens, if the app has one.
        public_key_pem: PEM public key for RS256/RS512 tokens, if the app has one.
        kind: ``bot`` (bot builder app, per-bot route) or ``admin`` (Bot Admin Console
            app, account route).
        bot_ids: Bots the app may read; None means every bot.
        scope_published: False simulates granted but unpublished scopes.
        enforce_jti: Require a fresh ``jti`` claim in every token.
        scopes: The API scopes granted (builder names: ``Bot Sessions``, ``Chat History``;
            an admin app's ``Bot Analytics > Chat History`` is ``Chat History`` here).
    """

    client_id: str
    client_secret: str | None = None
    public_key_pem: str | None = None
    kind: Literal["bot", "admin"] = "bot"
    bot_ids: tuple[str, ...] | None = None
    scope_published: bool = True
    enforce_jti: bool = False
    scopes: frozenset[str] = ALL_SCOPES

    def __post_init__(self) -> None:
        """Check that the app can verify some token and has a known kind."""
        if self.client_secret is None and self.public_key_pem is None:
            raise ValueError("a SandboxApp needs a client_secret or a public_key_pem")
        if self.kind not in ("bot", "admin"):
            raise ValueError(f"unknown app kind {self.kind!r}")
        if self.bot_ids is not None:
            object.__setattr__(self, "bot_ids", tuple(self.bot_ids))
        object.__setattr__(self, "scopes", frozenset(self.scopes))
        if not self.scopes <= ALL_SCOPES:
            unknown = sorted(self.scopes - ALL_SCOPES)
            raise ValueError(f"unknown scopes {unknown}; known: {sorted(ALL_SCOPES)}")

    def may_read(self, bot_id: str) -> bool:
        """Whether this app may read the sessions of ``bot_id``."""
        return self.bot_ids is None or bot_id in self.bot_ids

    def verification_keys(self) -> list[tuple[Any, list[str]]]:
        """Keys with the algorithms each may verify."""
        keys: list[tuple[Any, list[str]]] = []
        if self.client_secret is not None:
            keys.append((self.client_secret, list(HMAC_ALGORITHMS)))
        if self.public_key_pem is not None:
            keys.append((self.public_key_pem, list(RSA_ALGORITHMS)))
        return keys


def _unauthorized(msg: str, code: int | str = 401) -> ApiError:
    return ApiError(401, msg, code)


class Authenticator:
    """Verifies ``auth`` header tokens against the registered apps; remembers used jtis."""

    def __init__(self, apps: list[SandboxApp]) -> None:
        self.apps = {app.client_id: app for app in apps}
        self._seen_jti: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def authenticate(self, token: str | None) -> tuple[SandboxApp, dict[str, Any]]:
        """Find the app of a token and verify it.

        Args:
            token: The ``auth`` header value, or None if absent.

        Returns:
            The app and the verified claims.

        Raises:
            ApiError: 401 for a missing, malformed, unknown, badly signed or replayed token.
        """
        if not token:
            raise _unauthorized("auth header with a JWT is required")
        app = self._find_app(token)
        claims = self._verify(app, token)
        if claims.get("sub") in (None, ""):
            raise _unauthorized("JWT claim 'sub' is required")
        if app.enforce_jti:
            self._check_jti(app, claims.get("jti"))
        return app, claims

    def _find_app(self, token: str) -> SandboxApp:
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise _unauthorized(f"Invalid JWT token: {exc}") from exc
        app = self.apps.get(str(unverified.get("appId")))
        if app is None:
            raise _unauthorized("Invalid SDK credentials", 4002)
        return app

    def _verify(self, app: SandboxApp, token: str) -> dict[str, Any]:
        options: dict[str, Any] = {"verify_sub": False, "verify_aud": False}
        for key, algorithms in app.verification_keys():
            try:
                return jwt.decode(token, key, algorithms=algorithms, options=options, leeway=LEEWAY_SECONDS)
            except jwt.InvalidAlgorithmError:
                continue
            except jwt.ExpiredSignatureError as exc:
                raise _unauthorized("JWT token has expired") from exc
            except jwt.PyJWTError as exc:
                raise _unauthorized("Invalid SDK credentials", 4002) from exc
        raise _unauthorized("Invalid SDK credentials: unsupported signing algorithm", 4002)

    def _check_jti(self, app: SandboxApp, jti: Any) -> None:
        if jti in (None, ""):
            raise _unauthorized("JTI is enforced for this app: the JWT needs a 'jti' claim", "JTI")
        with self._lock:
            key = (app.client_id, str(jti))
            if key in self._seen_jti:
                raise _unauthorized("JTI has already been used", "JTI")
            self._seen_jti.add(key)


def authorize(app: SandboxApp, route: Route, store: SessionStore) -> frozenset[str] | None:
    """Check that an authenticated app may read what a route serves.

    Args:
        app: The app the token belongs to.
        route: The route asked.
        store: The account's sessions (for the bots that exist).

    Returns:
        The bots the answer may show; None for every bot.

    Raises:
        ApiError: 403 for the wrong kind of app, a foreign bot, a scope the app lacks or an
            unpublished scope; 404 for an unknown bot.
    """
    bots = _route_bots(app, route, store)
    if route.scope not in app.scopes:
        raise ApiError(403, MISSING_SCOPE_TEMPLATE.format(scope=_scope_label(app, route)), "Forbidden")
    if not app.scope_published:
        raise ApiError(403, UNPUBLISHED_TEMPLATE.format(scope=route.scope), "ScopeNotPublished")
    return bots


def _scope_label(app: SandboxApp, route: Route) -> str:
    """The route's scope as the app's kind names it in the platform's console."""
    return f"Bot Analytics > {route.scope}" if app.kind == "admin" else route.scope


def _route_bots(app: SandboxApp, route: Route, store: SessionStore) -> frozenset[str] | None:
    if route.bot_id is None:
        if app.kind != "admin":
            raise ApiError(403, ADMIN_APP_TEMPLATE.format(scope=route.scope), "Forbidden")
        return None if app.bot_ids is None else frozenset(app.bot_ids)
    if app.kind != "bot":
        raise ApiError(403, BOT_APP_TEMPLATE.format(scope=route.scope), "Forbidden")
    if not store.has_bot(route.bot_id):
        raise ApiError(404, f"Bot {route.bot_id} not found", "BotNotFound")
    if not app.may_read(route.bot_id):
        raise ApiError(403, "The app has no access to this bot", "Forbidden")
    return frozenset({route.bot_id})
