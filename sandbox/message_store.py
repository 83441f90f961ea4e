"""The account's messages, derived from its sessions and indexed by bot and by ``createdOn``."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from datetime import datetime

from kore_sessions.sandbox.chat_message import GeneratedMessage, message_order
from kore_sessions.sandbox.conversations import conversation
from kore_sessions.sandbox.data import GeneratedSession


class MessageStore:
    """Every message of some sessions, oldest first, per bot and for the whole account."""

    def __init__(self, sessions: Iterable[GeneratedSession]) -> None:
        """Generate and index the messages.

        Args:
            sessions: All sessions of the account.
        """
        ordered = sorted((m for s in sessions for m in conversation(s)), key=message_order)
        self._all = _Index(ordered)
        grouped: dict[str, list[GeneratedMessage]] = {}
        for message in ordered:
            grouped.setdefault(message.bot_id, []).append(message)
        self._by_bot = {bot_id: _Index(items) for bot_id, items in grouped.items()}

    def between(
        self, bots: frozenset[str] | None, date_from: datetime, date_to: datetime
    ) -> list[GeneratedMessage]:
        """Messages of ``bots`` (None: all) with ``date_from <= createdOn <= date_to``, oldest first.

        Args:
            bots: The bots; None for every bot.
            date_from: Earliest ``createdOn``.
            date_to: Latest ``createdOn``.

        Returns:
            The messages in the API's ascending order.
        """
        if bots is not None and len(bots) == 1:
            index = self._by_bot.get(next(iter(bots)))
            return [] if index is None else index.between(date_from, date_to)
        found = self._all.between(date_from, date_to)
        return found if bots is None else [m for m in found if m.bot_id in bots]

    def everything(self, bots: frozenset[str] | None) -> list[GeneratedMessage]:
        """Every message of ``bots`` (None: all), oldest first."""
        if bots is None:
            return list(self._all.messages)
        return [m for m in self._all.messages if m.bot_id in bots]


class _Index:
    """Messages sorted by (createdOn, id) with their times for bisection."""

    def __init__(self, ordered: Sequence[GeneratedMessage]) -> None:
        self.messages = list(ordered)
        self.times = [message.created for message in ordered]

    def between(self, date_from: datetime, date_to: datetime) -> list[GeneratedMessage]:
        """Messages with ``date_from <= createdOn <= date_to``, oldest first."""
        return self.messages[bisect_left(self.times, date_from) : bisect_right(self.times, date_to)]
