"""Keep secrets out of everything the command prints."""

from __future__ import annotations

import logging
import os

import dlt

# Config keys whose values are secret.
SECRET_KEYS = (
    "sources.kore_sessions.credentials.client_secret",
    "sources.kore_sessions.credentials.private_key",
)
# Environment variable names that hold secrets by their name.
SECRET_NAME_MARKERS = ("SECRET", "PASSWORD", "PRIVATE_KEY", "TOKEN")
# Secrets shorter than this are not redacted (they would mangle ordinary words).
MIN_SECRET_LENGTH = 6
MASK = "***"


def known_secrets() -> list[str]:
    """Secret values configured for this process, from dlt's providers and the environment."""
    values = [os.environ[name] for name in os.environ if _is_secret_name(name)]
    for key in SECRET_KEYS:
        try:
            value = dlt.secrets.get(key)
        except Exception:  # a provider that cannot answer has no secret to hide
            value = None
        if isinstance(value, str):
            values.append(value)
    return [value for value in values if len(value) >= MIN_SECRET_LENGTH]


def redact(text: str, secrets: list[str]) -> str:
    """Text with every secret value (and each line of a multi-line key) masked."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
        for line in secret.splitlines():
            if len(line.strip()) >= MIN_SECRET_LENGTH:
                text = text.replace(line.strip(), MASK)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that masks secrets in every record it passes."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets = known_secrets()

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace the record's message by its redacted form."""
        record.msg = redact(record.getMessage(), self._secrets)
        record.args = None
        return True


def _is_secret_name(name: str) -> bool:
    """True for an environment variable named like a secret."""
    upper = name.upper()
    return any(marker in upper for marker in SECRET_NAME_MARKERS)
