"""The one rule saying which tag names and tag values are personal data.

A tag whose name looks personal (a caller's number, an id, an address, a name), or any of whose
values looks personal (a phone number, an e-mail or SIP address, an IP address, an id), is
never sliced by the tag mart unless a user names it in `[models] tag_names`; the report prints
no value of a tag whose name looks personal and no value that looks personal, named or not.
The marts apply the rule in SQL on every warehouse, the report in Python; both read the two
patterns below, so they cannot drift apart:

- `NAME_PATTERN` is searched in the tag's name, lower-cased and without the separators
  `NAME_SEPARATORS` (`Caller-Number` reads `callernumber`); `VALUE_PATTERN` is searched in the
  name too, lower-cased, as a name can itself be data (`jane@example.com`).
- `VALUE_PATTERN` is searched in the tag's value, lower-cased.

The patterns are written in the part of regular-expression syntax that Python's `re`, RE2
(DuckDB, BigQuery), PostgreSQL's and Redshift's POSIX flavours, Snowflake's and Java's
(Databricks) all read the same way: bracket classes, groups, alternation, bounds and the
anchors `^` and `$`; no backslash, no lookaround, no `(?:`, no `[[:class:]]`. Python's `$`
also matches before a final newline, so Python reads it as `\\Z`, which is what `$` means to
the others. The models read the patterns from the settings table (`personal_name_pattern`,
`personal_value_pattern`), wrapped so that they match the whole text: Snowflake's `REGEXP_LIKE`
matches the whole text where the other warehouses search it.
"""

from __future__ import annotations

import re

# Characters dropped from a lower-cased tag name before NAME_PATTERN looks at it, so that
# `user_id`, `user-id`, `User Id` and `userId` read alike (the models drop the same four).
NAME_SEPARATORS = (" ", "_", "-", ".")

# Tag names that hold personal data, by what they name (lower case, without separators). Short
# fragments that occur inside everyday words are anchored to the start or the end of the name
# (`^cell` not `cancelled`, `^iban` not `taxibank`, `^ip` not `membership`).
NAME_FRAGMENTS = (
    "caller|callee",  # callerNumber, calleeId: voice calls
    "phone|telefon|mobile|^cell|cell$|msisdn|^ani$|dnis",  # phone numbers; ANI/DNIS: caller/dialled number
    "mail",  # email, e-mail address, mailbox
    "userid|customerid|callid|sessionid|account(id|number|no)",  # ids, also inside longer names
    "^ssn|ssn$|socialsecurity",  # social security numbers
    "address|zip|post(al)?code",  # postal (and e-mail, IP) addresses
    "name",  # first, last, full, user name, surname, any name
    "birth|^dob|dob$",  # date of birth
    "^ip|(client|remote|source|user)ip",  # IP addresses (ip, ipAddress, ipv4, clientIp)
    "passport|licen[cs]e|^iban|iban$|card(number|no)",  # documents, bank and card numbers
    "token|password|secret",  # credentials
    "number|nummer|^dni$|id$",  # any number (German nummer), id (userId, guid; Spanish DNI)
)
NAME_PATTERN = "|".join(NAME_FRAGMENTS)

# Shortest run of letters, digits, `_` and `-` holding a digit that is taken for an id or a key
# (`u-...`, `st-...`, API keys, hashes); shorter runs are codes such as `plan_2024` or `es-es`.
TOKEN_LENGTH = 16
# One character of such a run (a lower-cased value holds no capitals).
TOKEN_CHARACTER = "[a-z0-9_-]"
# A run of TOKEN_LENGTH token characters with a digit somewhere, without lookahead: one branch
# per place of the digit. A longer run holding a digit holds such a run.
LONG_TOKEN = "|".join(
    f"{TOKEN_CHARACTER}{{{before}}}[0-9]{TOKEN_CHARACTER}{{{TOKEN_LENGTH - 1 - before}}}"
    for before in range(TOKEN_LENGTH)
)
# Tag values that look personal (lower case): what each alternative catches.
VALUE_FRAGMENTS = (
    "[0-9]([ ()./-]*[0-9]){6,}",  # a phone or other long number: 7+ digits, separators allowed
    "@",  # an e-mail or SIP address
    "[0-9]{1,3}([.][0-9]{1,3}){3}",  # an IPv4 address
    "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",  # a UUID
    "[0-9a-f]{12,}",  # a long hex id (MongoDB ObjectId, hash)
    LONG_TOKEN,  # a long token mixing letters and digits
)
VALUE_PATTERN = "|".join(VALUE_FRAGMENTS)

# Any text, as the models' whole-text patterns surround the rule: a class, not `.`, because
# Snowflake's `.` stops at a newline; the texts the patterns read are lower-cased, so they hold
# no `A`.
ANY_TEXT = "[^A]*"

_NAME = re.compile(NAME_PATTERN.replace("$", r"\Z"))
_VALUE = re.compile(VALUE_PATTERN.replace("$", r"\Z"))


def normalized_name(name: str) -> str:
    """A tag's name as NAME_PATTERN reads it: lower case, without separators.

    Args:
        name: The tag's name.

    Returns:
        The name lower-cased, without the NAME_SEPARATORS.
    """
    text = name.lower()
    for separator in NAME_SEPARATORS:
        text = text.replace(separator, "")
    return text


def looks_personal_name(name: str) -> bool:
    """Whether a tag's name says its values are personal (e.g. `callerNumber`, `user_id`, `ANI`),
    or is itself personal data (a bot that names tags after values: an e-mail, a phone number).

    Args:
        name: The tag's name.

    Returns:
        True for a name that holds or names personal data.
    """
    return _NAME.search(normalized_name(name)) is not None or looks_personal_value(name)


def looks_personal_value(value: str | None) -> bool:
    """Whether a tag value looks like a phone number, an address or an id.

    Args:
        value: The tag value as text, or None.

    Returns:
        True for a value that points at a person; False for None.
    """
    return value is not None and _VALUE.search(value.lower()) is not None


def whole_text(pattern: str) -> str:
    """`pattern` as a pattern that matches a whole text containing a match of it.

    Searching for the result and matching the whole text with it give the same answer, so every
    warehouse's regular-expression function reads it the same way (Snowflake's `REGEXP_LIKE`
    matches the whole text; DuckDB's `REGEXP_MATCHES`, PostgreSQL's `~` and BigQuery's
    `REGEXP_CONTAINS` search it).

    Args:
        pattern: A pattern of this module.

    Returns:
        The pattern between two runs of any text.
    """
    return f"{ANY_TEXT}({pattern}){ANY_TEXT}"


# The patterns the models read from the settings table.
SQL_NAME_PATTERN = whole_text(NAME_PATTERN)
SQL_VALUE_PATTERN = whole_text(VALUE_PATTERN)
