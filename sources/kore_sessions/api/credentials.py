"""Credentials of a Kore.ai app and the JWT minted from them for each request."""

import time
import uuid
import warnings
from typing import Any, ClassVar

import jwt
from dlt.common.configuration import configspec
from dlt.common.configuration.exceptions import ConfigurationValueError
from dlt.common.configuration.specs import CredentialsConfiguration
from dlt.common.typing import TSecretStrValue
from jwt.warnings import InsecureKeyLengthWarning

from kore_sessions.source.api.rules import DEFAULT_ALGORITHM, KEY_PAIR_ALGORITHMS, SECRET_ALGORITHMS

# Lifetime of a minted token; Kore documents no `exp`, a short one is harmless.
TOKEN_LIFETIME_SECONDS = 300


@configspec
class KoreCredentials(CredentialsConfiguration):
    """A Kore.ai app: its client id, and its client secret or private key.

    Resolved by dlt from `[sources.kore_sessions.credentials]` in `.dlt/secrets.toml` or from
    `SOURCES__KORE_SESSIONS__CREDENTIALS__CLIENT_ID` / `__CLIENT_SECRET` / `__PRIVATE_KEY`.
    """

    client_id: str = None
    client_secret: TSecretStrValue | None = None
    private_key: TSecretStrValue | None = None
    algorithm: str = DEFAULT_ALGORITHM
    subject: str = "kore-sessions"

    __config_gen_annotations__: ClassVar[list[str]] = ["client_id", "client_secret"]

    def on_resolved(self) -> None:
        """Check the algorithm (whether its key is there is checked with the other options)."""
        self.algorithm = self.algorithm.upper()
        if self.algorithm not in SECRET_ALGORITHMS + KEY_PAIR_ALGORITHMS:
            allowed = ", ".join(SECRET_ALGORITHMS + KEY_PAIR_ALGORITHMS)
            raise ConfigurationValueError(
                f"credentials.algorithm {self.algorithm!r} is not supported; use one of {allowed}"
            )

    def mint_jwt(self) -> str:
        """Sign a fresh token for one request.

        Returns:
            The JWT for the `auth` header, with claims `appId`, `sub` and a unique `jti`
            (so apps that enforce JTI accept every request), plus `iat` and `exp`.
        """
        now = int(time.time())
        claims: dict[str, Any] = {
            "appId": self.client_id,
            "sub": self.subject,
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": now + TOKEN_LIFETIME_SECONDS,
        }
        key = self.client_secret if self.algorithm in SECRET_ALGORITHMS else self.private_key
        with warnings.catch_warnings():
            # A short secret is the app's, not ours to judge: a wrong one fails as a 401 with a
            # hint, and PyJWT's warning would only come before that line.
            warnings.simplefilter("ignore", InsecureKeyLengthWarning)
            return jwt.encode(claims, key, algorithm=self.algorithm)
