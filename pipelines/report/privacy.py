"""Which tag values the report may print: never one that could point at a person.

The report reads no per-session table, so user ids, caller numbers and call ids can only reach
it as tag values of `fct_containment_by_tag`. Every tag value the page shows passes
`select_tags`, which lists no value of a tag whose name looks personal, no value of a tag with
more than `TAG_MAX_DISTINCT` values in the period (values that many are identifiers, not
categories), and no value that looks personal (a phone number, an e-mail or IP address, an
id), whatever the tag. What looks personal is the rule of `kore_sessions.warehouse.personal_data`, the one
the tag mart slices by; the report applies it again to every tag the mart holds, so a tag a
user named in `[models] tag_names` (which the mart then slices whatever its name and values)
still shows no caller number, user id, call id or session id here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from kore_sessions.report.counts import TagCounts
from kore_sessions.warehouse.model_settings import DEFAULT_TAG_MAX_VALUES
from kore_sessions.warehouse.personal_data import looks_personal_name, looks_personal_value

# A tag with more values than this in the period is not sliced: few values make a category
# (the tag mart's own default cut-off).
TAG_MAX_DISTINCT = DEFAULT_TAG_MAX_VALUES
# Values listed per tag, most sessions first, so one tag does not fill the page.
TAG_VALUES_SHOWN = 10
# Tags listed, most tagged sessions first, so the section stays readable.
TAG_NAMES_SHOWN = 12


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
