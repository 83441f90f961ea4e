"""Which tag values the report may print: never one that could point at a person.

The report reads no per-session table, so user ids, caller numbers and call ids can only reach
it as tag values of `fct_containment_by_tag`. Every tag value the page shows passes
`select_tags`, which lists no value of a tag whose name says it is personal, no value of a tag
with more than `TAG_MAX_DISTINCT` values in the period (values that many are identifiers, not
categories), and no value that looks like a phone number, an e-mail address, an IP address or
an id, whatever the tag.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from .counts import TagCounts

# A tag with more values than this in the period is not sliced: few values make a category.
TAG_MAX_DISTINCT = 25
# Values listed per tag, most sessions first, so one tag does not fill the page.
TAG_VALUES_SHOWN = 10
# Tags listed, most tagged sessions first, so the section stays readable.
TAG_NAMES_SHOWN = 12
# Tag names that hold personal data (lower case, without separators): none of their values show.
PERSONAL_NAME = re.compile(
    r"caller|phone|mobile|msisdn|^ani$|dnis|e?mail|userid|callid|sessionid|customerid"
    r"|account(?:id|number|no)|ssn|address|firstname|lastname|fullname|^ip$|ipaddress|token|password|secret"
)
# Values that look personal: a phone or other long number (7+ digits, separators allowed), an
# e-mail or SIP address (any `@`), an IPv4 address, a UUID, a long hex id (MongoDB ObjectId,
# hashes) or a long token mixing letters and digits (`u-...`, `st-...` ids, API keys).
PERSONAL_VALUE = re.compile(
    r"\d(?:[\s().\-/]*\d){6,}"
    r"|@"
    r"|\b\d{1,3}(?:\.\d{1,3}){3}\b"
    r"|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"|\b[0-9a-f]{12,}\b"
    r"|\b(?=[\w-]*\d)(?=[\w-]*[a-z])[\w-]{16,}\b",
    re.IGNORECASE,
)
# Characters dropped from a tag name before PERSONAL_NAME looks at it.
NAME_SEPARATORS = re.compile(r"[\s_\-.]")


def looks_personal_name(name: str) -> bool:
    """Whether a tag's name says its values are personal (e.g. `callerNumber`, `user_id`).

    Args:
        name: The tag's name.

    Returns:
        True for a name that holds personal data.
    """
    return bool(PERSONAL_NAME.search(NAME_SEPARATORS.sub("", name.lower())))


def looks_personal_value(value: str | None) -> bool:
    """Whether a tag value looks like a phone number, an address or an id.

    Args:
        value: The tag value as text, or None.

    Returns:
        True for a value the report must not print.
    """
    return value is not None and bool(PERSONAL_VALUE.search(value))


@dataclass(frozen=True)
class TagSlice:
    """One tag as the report shows it: the values it may print and what it leaves out.

    Attributes:
        scope: `session` or `user`.
        name: The tag's name.
        distinct_values: Values the tag had in the period.
        shown: The values to print, most sessions first.
        withheld: Why no value is printed (a personal name, too many values), or "".
        personal: Values left out because they look personal.
        more: Other values left out to keep the list short.
    """

    scope: str
    name: str
    distinct_values: int
    shown: list[TagCounts] = field(default_factory=list)
    withheld: str = ""
    personal: int = 0
    more: int = 0


@dataclass(frozen=True)
class TagSelection:
    """The tags of the period as the report shows them.

    Attributes:
        listed: Tags whose values may be listed, most tagged sessions first.
        withheld: Tags none of whose values may be listed, by name.
        left_out: Tags with listable values beyond `TAG_NAMES_SHOWN`, not shown.
    """

    listed: list[TagSlice]
    withheld: list[TagSlice]
    left_out: int


def select_tags(rows: Iterable[TagCounts]) -> TagSelection:
    """The tags to show, each with the values it may print.

    Args:
        rows: Period counts per tag value (at most `TAG_MAX_DISTINCT` values a tag needed;
            `distinct_values` says how many there were).

    Returns:
        The tags whose values may be listed, most tagged sessions first (at most
        `TAG_NAMES_SHOWN`, how many more there were), and the tags none of whose values may be
        (`withheld` says why), by name.
    """
    grouped: dict[tuple[str, str], list[TagCounts]] = {}
    for row in rows:
        grouped.setdefault((row.scope, row.name), []).append(row)
    order = sorted(grouped, key=lambda tag: (-sum(r.sessions for r in grouped[tag]), tag))
    slices = [_slice(scope, name, grouped[(scope, name)]) for scope, name in order]
    listed = [tag for tag in slices if not tag.withheld]
    withheld = sorted((tag for tag in slices if tag.withheld), key=lambda tag: (tag.name, tag.scope))
    return TagSelection(listed[:TAG_NAMES_SHOWN], withheld, max(0, len(listed) - TAG_NAMES_SHOWN))


def _slice(scope: str, name: str, rows: list[TagCounts]) -> TagSlice:
    """One tag's printable values."""
    distinct = max(row.distinct_values for row in rows)
    if looks_personal_name(name):
        return TagSlice(scope, name, distinct, withheld="named like personal data")
    if distinct > TAG_MAX_DISTINCT:
        return TagSlice(scope, name, distinct, withheld="too many to slice")
    safe = sorted(
        (row for row in rows if not looks_personal_value(row.value)),
        key=lambda row: (-row.sessions, row.value or ""),
    )
    shown = safe[:TAG_VALUES_SHOWN]
    personal = len(rows) - len(safe)
    return TagSlice(scope, name, distinct, shown, personal=personal, more=distinct - personal - len(shown))
