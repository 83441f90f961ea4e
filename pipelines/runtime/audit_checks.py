"""What an audit found: the check of each UTC day, bot and resource, the range it covered, and
the table and summary `kore-sessions audit` prints."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from kore_sessions.source.api.day_counts import SpanCounter
from kore_sessions.source.api.rules import bot_label
from kore_sessions.source.messages.history_rules import MESSAGES_TABLE
from kore_sessions.source.sessions.spec import SESSIONS_TABLE

# The resources an audit checks, in the order it prints them.
AUDITED_RESOURCES = (SESSIONS_TABLE, MESSAGES_TABLE)


@dataclass
class DayCheck:
    """The counts of one UTC day (the part of it that is due) of one bot and one resource."""

    day: date
    bot: str
    start: datetime
    end: datetime
    api: int
    warehouse: int
    repaired: bool = False
    resource: str = SESSIONS_TABLE

    @property
    def difference(self) -> int:
        """Records the warehouse lacks (positive) or holds beyond the API (negative)."""
        return self.api - self.warehouse


@dataclass
class AuditResult:
    """What one audit found (and repaired).

    Attributes:
        checks: Every day x bot x resource checked (after a repair: as checked again).
        notes: Lines said before the table (bots never loaded, cursors that stopped).
        bots: The bots audited.
        requests: Requests sent, the repair's included.
        reloaded: Sessions a repair fetched again.
        deleted: Sessions a repair deleted (the API called them invalid).
        messages_reloaded: Messages a repair fetched again.
        messages_deleted: Messages a repair deleted (its complete reload no longer listed them).
        differed_before_repair: Checks that differed before a repair (None: no repair asked).
        models_rebuilt: A repair rebuilt the models.
        seconds: How long the audit took.
    """

    checks: list[DayCheck] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    bots: tuple[str, ...] = ()
    requests: int = 0
    reloaded: int = 0
    deleted: int = 0
    messages_reloaded: int = 0
    messages_deleted: int = 0
    differed_before_repair: int | None = None
    models_rebuilt: bool = False
    seconds: float = 0.0

    @property
    def differing(self) -> list[DayCheck]:
        """Checks whose counts differ."""
        return [check for check in self.checks if check.difference]

    def of(self, resource: str) -> list[DayCheck]:
        """The checks of one resource."""
        return [check for check in self.checks if check.resource == resource]

    def lines(self) -> list[str]:
        """The table of checks and the summary, as printed."""
        width = max([len(check.bot) for check in self.checks] + [3])
        kind = max(len(name) for name in AUDITED_RESOURCES)
        head = f"{'day':<10}  {'bot':<{width}}  {'resource':<{kind}}"
        lines = [f"{head}  {'API':>8}  {'warehouse':>9}  {'difference':>10}"]
        order = {name: index for index, name in enumerate(AUDITED_RESOURCES)}
        for check in sorted(self.checks, key=lambda c: (order.get(c.resource, 0), c.day, c.bot)):
            mark = "  repaired" if check.repaired else ""
            lines.append(
                f"{check.day.isoformat():<10}  {check.bot:<{width}}  {check.resource:<{kind}}  "
                f"{check.api:>8}  {check.warehouse:>9}  {check.difference:>+10}{mark}"
            )
        return [*self.notes, *lines, self.summary()]

    def summary(self) -> str:
        """One line: what was checked, what differs, what was repaired (messages after sessions,
        when they were audited)."""
        text = f"audit: {self._counts(SESSIONS_TABLE, 'sessions missing')}"
        audits_messages = bool(self.of(MESSAGES_TABLE))
        if audits_messages:
            text += f"; messages: {self._counts(MESSAGES_TABLE, 'messages missing')}"
        text += f", {self.requests} requests, {self.seconds:.1f} s"
        if self.differed_before_repair is not None:
            text += (
                f"; repair: {self.differed_before_repair} differed, {self.reloaded} sessions reloaded, "
                f"{self.deleted} deleted"
            )
            if audits_messages:
                text += f", {self.messages_reloaded} messages reloaded, {self.messages_deleted} deleted"
        if self.models_rebuilt:
            text += "; models rebuilt"
        return text

    def _counts(self, resource: str, missing_words: str) -> str:
        """What was checked of one resource and how much differs."""
        checks = self.of(resource)
        differing = [check for check in checks if check.difference]
        missing = sum(c.difference for c in differing if c.difference > 0)
        extra = -sum(c.difference for c in differing if c.difference < 0)
        checked = f"{len(checks)} day x bot checked, {len(differing)} differ"
        return f"{checked} ({missing} {missing_words}, {extra} extra)"


@dataclass(frozen=True)
class AuditRange:
    """The instants an audit covers, [start, end] inclusive, and the time of the check."""

    start: datetime
    end: datetime
    now: datetime

    @classmethod
    def last_days(cls, days: int, now: datetime) -> AuditRange:
        """The last `days` UTC days, today included, ending now."""
        first = datetime.combine(now.date() - timedelta(days=days - 1), datetime.min.time(), UTC)
        return cls(first, now, now)


@dataclass(frozen=True)
class Audited:
    """One resource as the audit checks it.

    Attributes:
        resource: Its name (`sessions`, `messages`), as printed and recorded.
        noun: One of its records, in the notes (`session`).
        bots_state: Its state per bot key (cursor, `loaded_from`).
        counter: The API's count of a bot's records in a range.
        held: The warehouse's count: (sql client, bot, start, end) -> records held.
        page_size: The page size of its reload (how far a range is narrowed).
        first_start: Where a bot it has never loaded is due from.
    """

    resource: str
    noun: str
    bots_state: Mapping[str, Any]
    counter: SpanCounter
    held: Callable[[Any, str, datetime, datetime], int]
    page_size: int
    first_start: Callable[[str], datetime]

    def label(self, bot: str) -> str:
        """How a bot is named in the notes (with the resource, but for sessions)."""
        label = bot_label(bot)
        return label if self.resource == SESSIONS_TABLE else f"{label} ({self.resource})"
