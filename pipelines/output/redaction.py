"""Keep credentials and personal data out of everything the command prints.

Two rules, applied to every output line (the one-line failure, progress lines, Dagster's
failure descriptions):

- credentials are masked: every value of a setting whose name says it carries one, every
  value dlt reads from a secrets provider (`secrets.toml`), and the password of any URL with
  userinfo (`scheme://user:password@host`) or any `password=...` parameter wherever it shows,
  even when only a driver knew it;
- values a library quotes from the data (pyarrow's, DuckDB's and PostgreSQL's conversion and
  constraint messages) are withheld: a session's values may be a person's data.
"""

from __future__ import annotations

import logging
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from typing import Any

import dlt
from dlt.common.configuration.providers.doc import BaseDocProvider

# Config keys whose values are secret, asked of every dlt provider (a vault included).
SECRET_KEYS = (
    "sources.kore_sessions.credentials.client_secret",
    "sources.kore_sessions.credentials.private_key",
)
# Words in a setting's own name (an env variable, or the last part of `A__B__NAME` or of a
# toml key) that say its value is a credential. The last part only: `..._CREDENTIALS__CLIENT_ID`
# or `...__CREDENTIALS__HOST` are not secret, `DESTINATION__POSTGRES__CREDENTIALS` is. No bare
# `KEY` (bot ids, `MONKEY`) and no `PWD` (the shell's working folder).
CREDENTIAL_NAME_MARKERS = (
    "CREDENTIALS",
    "DSN",
    "PASSWORD",
    "PASSWD",
    "PASSPHRASE",
    "SECRET",
    "TOKEN",
    "PRIVATE_KEY",
    "API_KEY",
    "APIKEY",
    "ACCESS_KEY",
)
# How a setting's name is split into parts: dlt's env names (`A__B`) and toml paths (`a.b`).
NAME_PARTS = re.compile(r"__|\.")
# Secrets shorter than this are not redacted (they would mangle ordinary words).
MIN_SECRET_LENGTH = 6
# Endings of a DuckDB file: a credentials setting that names one holds a path, not a secret
# (masking it would hide which file a message is about).
DATABASE_FILE_SUFFIXES = (".duckdb", ".db")
# What a masked credential reads as.
MASK = "***"
# `scheme://user:password@host`: the password of a URL with userinfo, wherever a message quotes
# one (a password holding `@` runs to the last `@` before the host).
URL_PASSWORD = re.compile(
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/?#@\"']*:)(?P<secret>[^\s/?#]+?)(?=@[^\s/?#@]*(?:[\s/?#]|$))"
)
# Passwords of a URL that are placeholders of a documented form, not secrets
# (`postgresql://user:password@host:5432/database` in a hint, dlt's own messages).
PLACEHOLDER_PASSWORDS = frozenset({"password", "<password>", MASK})
# `password=...` and the like, in a keyword DSN (`host=h password=p`) or a URL's query
# (`?motherduck_token=...`): the value.
SECRET_PARAMETER = re.compile(
    r"(?i)(?P<head>\b[\w.\-]*(?:password|passwd|secret|token|api_key|apikey|access_key|private_key)=)"
    r"(?P<secret>[^\s&;,'\"]+)"
)
# What a withheld value is replaced by.
WITHHELD = "<value>"
# Messages of the libraries between a session and the warehouse that quote a value of the
# data; the group `value` is withheld. Each is a known message format, so ordinary messages are
# left alone.
VALUE_QUOTES = tuple(
    re.compile(pattern)
    for pattern in (
        # pyarrow: "Could not convert 'jane@example.com' with type str: tried to convert to int64"
        r"Could not convert (?P<value>.+?) with type \w+: tried to convert",
        # pyarrow casts: "Failed to parse string: 'jane' as a scalar of type int64"
        r"Failed to parse string: (?P<value>.+?) as a scalar of type",
        # DuckDB: "Could not convert string 'jane' to INT32"
        r"Could not convert string (?P<value>'.*?') to ",
        # DuckDB: 'invalid timestamp field format: "jane", expected format is ...'
        r"invalid \w+ field format: (?P<value>\".*?\"), expected",
        # PostgreSQL: 'invalid input syntax for type integer: "jane"'
        r"invalid input syntax for type [\w ]+?: (?P<value>\".*?\")(?=\s|$)",
        # PostgreSQL: "Key (user_id)=(jane) already exists."
        r"Key \([^()]*\)=\((?P<value>.*?)\)(?= already exists| is not present| conflicts with|\.?$)",
        # PostgreSQL: "Failing row contains (s-1, jane, ...)."
        r"Failing row contains \((?P<value>.*)\)",
        # PostgreSQL: 'Token "jane" is invalid.' (JSON input)
        r"Token (?P<value>\".*?\") is invalid",
        # pendulum: "Unable to parse string [jane]"
        r"Unable to parse string \[(?P<value>.*)\]",
        # DuckDB: 'Could not parse string "jane@x.com" according to format specifier "%Y"'
        r"Could not parse string (?P<value>\".*?\") according to format",
        # DuckDB: 'Malformed JSON at byte 0 of input: unexpected character.  Input: "{bad jane"'
        r"Malformed JSON.*?Input: (?P<value>.*)$",
    )
)
# A SQL excerpt a warehouse quotes (`LINE 1: INSERT ... VALUES ('jane', ...)`): its string
# literals are values of the data.
SQL_EXCERPT = re.compile(r"LINE \d+: [^\n]*")
SQL_STRING = re.compile(r"'(?:[^']|'')*'")


def known_secrets() -> list[str]:
    """Credential values configured for this process: the environment, dlt's providers, and
    the keys of SECRET_KEYS as dlt resolves them."""
    values = _environment_secrets()
    values += [part for provider in _doc_providers() for part in _provider_secrets(provider)]
    values += [part for key in SECRET_KEYS for part in secret_parts(_resolved(key))]
    return sorted({value for value in values if len(value) >= MIN_SECRET_LENGTH}, key=len, reverse=True)


def redact(text: str, secrets: list[str]) -> str:
    """Text with every secret value (each line of a multi-line key too), every URL's password
    and every `password=` parameter masked, and quoted values of the data withheld."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
        for line in secret.splitlines():
            if len(line.strip()) >= MIN_SECRET_LENGTH:
                text = text.replace(line.strip(), MASK)
    text = URL_PASSWORD.sub(_masked, text)
    text = SECRET_PARAMETER.sub(_masked, text)
    return withhold_values(text)


def withhold_values(text: str) -> str:
    """Text with the values a library quotes from the data replaced by WITHHELD."""
    for pattern in VALUE_QUOTES:
        text = pattern.sub(_withheld, text)
    return SQL_EXCERPT.sub(lambda match: SQL_STRING.sub(f"'{WITHHELD}'", match[0]), text)


def is_credential_name(name: str) -> bool:
    """True for a setting named like a credential: the last part of its name has a marker."""
    last = NAME_PARTS.split(name.upper())[-1]
    return any(marker in last for marker in CREDENTIAL_NAME_MARKERS)


def secret_parts(value: Any) -> list[str]:
    """The texts to mask of one credential setting.

    A connection string's password (and `password=`-like parameters), so that its user, host
    and database still show; any other text whole, unless it names a database file; every text
    of a table (`password` of `[destination.postgres.credentials]`, a key file's `private_key`).
    """
    if isinstance(value, Mapping):
        return [part for item in value.values() for part in secret_parts(item)]
    if isinstance(value, list | tuple):
        return [part for item in value for part in secret_parts(item)]
    if not isinstance(value, str) or _names_database_file(value):
        return []
    matches = [*URL_PASSWORD.finditer(value), *SECRET_PARAMETER.finditer(value)]
    passwords = [match["secret"] for match in matches]
    if not passwords:
        return [] if value.lower() in PLACEHOLDER_PASSWORDS else [value]
    return [password for password in passwords if password.lower() not in PLACEHOLDER_PASSWORDS]


class RedactingFilter(logging.Filter):
    """A logging filter that masks secrets and withholds data values in every record it passes
    (its traceback included, folded into the message)."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets = known_secrets()

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace the record's message (and traceback) by its redacted form."""
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + logging.Formatter().formatException(record.exc_info)
        record.msg = redact(message, self._secrets)
        record.args = None
        record.exc_info = None
        record.exc_text = None
        return True


def _masked(match: re.Match[str]) -> str:
    """A match of URL_PASSWORD or SECRET_PARAMETER with its secret masked (unless a placeholder)."""
    if match["secret"].lower() in PLACEHOLDER_PASSWORDS:
        return match[0]
    return match["head"] + MASK


def _withheld(match: re.Match[str]) -> str:
    """A match of VALUE_QUOTES with its `value` group replaced by WITHHELD."""
    start, end = match.span("value")
    return match.string[match.start() : start] + WITHHELD + match.string[end : match.end()]


def _names_database_file(value: str) -> bool:
    """True for a DuckDB credentials setting, which is the path of its file."""
    return "\n" not in value and "://" not in value and value.lower().endswith(DATABASE_FILE_SUFFIXES)


def _environment_secrets() -> list[str]:
    """The credentials of the environment: the values of variables named like one."""
    return [
        part for name, value in os.environ.items() if is_credential_name(name) for part in secret_parts(value)
    ]


def _doc_providers() -> list[BaseDocProvider]:
    """dlt's document providers of this process (secrets.toml, config.toml, a vault's cache)."""
    try:
        providers = dlt.config.config_providers
    except Exception:  # no run context: nothing configured, nothing to hide
        return []
    return [provider for provider in providers if isinstance(provider, BaseDocProvider)]


def _provider_secrets(provider: BaseDocProvider) -> list[str]:
    """The credentials a document provider holds: every value of a secrets provider
    (`secrets.toml`), the values of credential-named keys of any other (`config.toml`)."""
    try:
        document = tomllib.loads(provider.to_toml())
    except Exception:  # a custom provider whose document is not toml: skipped, not fatal to output
        return []
    everything = provider.supports_secrets
    return [
        part
        for path, value in _leaves(document)
        if everything or is_credential_name(path[-1])
        for part in secret_parts(value)
    ]


def _leaves(node: Mapping[str, Any], path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """`(key path, value)` of every value of a document that is not a table."""
    for key, value in node.items():
        if isinstance(value, Mapping):
            yield from _leaves(value, (*path, str(key)))
        else:
            yield (*path, str(key)), value


def _resolved(key: str) -> Any:
    """A key as dlt resolves it, or None when no provider can answer."""
    try:
        return dlt.secrets.get(key)
    except Exception:  # a provider that cannot answer has no secret to hide
        return None
