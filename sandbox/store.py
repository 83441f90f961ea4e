"""The account's sessions, indexed by id, by bot and by start time, as the API reads them."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from kore_sessions.sandbox.data import GeneratedSession


def session_order(session: GeneratedSession) -> tuple[datetime, str]:
    """The API's order of sessions, oldest first: start time, then session id.

    Args:
        session: Any session.

    Returns:
        The sort key.
    """
    return session.start, session.session_id


class SessionStore:
    """The sessions, indexed by id, by bot and by start time."""

    def __init__(self, sessions: Iterable[GeneratedSession], extra_bots: Iterable[str] = ()) -> None:
        """Index the sessions.

        Args:
            sessions: All sessions of the account (ids must be unique).
            extra_bots: Bots that exist even without sessions.
        """
        ordered = sorted(sessions, key=session_order)
        self.by_id: dict[str, GeneratedSession] = {}
        for session in ordered:
            if session.session_id in self.by_id:
                raise ValueError(f"duplicate session id {session.session_id}")
            self.by_id[session.session_id] = session
        self._all = _Index(ordered)
        grouped: dict[str, list[GeneratedSession]] = {bot_id: [] for bot_id in extra_bots}
        for session in ordered:
            grouped.setdefault(session.bot_id, []).append(session)
        self._by_bot = {bot_id: _Index(items) for bot_id, items in grouped.items()}

    @property
    def bot_ids(self) -> list[str]:
        """Every known bot id."""
        return list(self._by_bot)

    def has_bot(self, bot_id: str) -> bool:
        """Whether ``bot_id`` is a bot of the account."""
        return bot_id in self._by_bot

    def newest_first(
        self, bots: frozenset[str] | None, date_from: datetime, date_to: datetime
    ) -> Iterator[GeneratedSession]:
        """Sessions of ``bots`` (None: all) with ``date_from <= start <= date_to``, newest first."""
        if bots is not None and len(bots) == 1:
            index = self._by_bot.get(next(iter(bots)))
            if index is not None:
                yield from index.newest_first(date_from, date_to)
            return
        for session in self._all.newest_first(date_from, date_to):
            if bots is None or session.bot_id in bots:
                yield session

    def everything(self, bots: frozenset[str] | None) -> list[GeneratedSession]:
        """Every session of ``bots`` (None: all), newest first."""
        low, high = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
        return list(self.newest_first(bots, low, high))

    def views(self, now: datetime, legacy: bool, bot_id: str | None = None) -> list[dict[str, Any]]:
        """Every session the API shows at ``now`` (newest first), optionally for one bot.

        Args:
            now: The sandbox time.
            legacy: Give the pre-9.0 session shape.
            bot_id: Only this bot's sessions; None for all.

        Returns:
            The session views, as listing requests would return them.
        """
        bots = None if bot_id is None else frozenset({bot_id})
        views = (session.view(now, legacy=legacy) for session in self.everything(bots))
        return [view for view in views if view is not None]

    def without(self, session_ids: Iterable[str]) -> SessionStore:
        """The same account without some sessions; every bot stays.

        Args:
            session_ids: The sessions to leave out.

        Returns:
            A new store.
        """
        gone = set(session_ids)
        kept = [session for session in self.by_id.values() if session.session_id not in gone]
        return SessionStore(kept, self.bot_ids)


class _Index:
    """Sessions sorted by (start, id) with their start times for bisection."""

    def __init__(self, ordered: Sequence[GeneratedSession]) -> None:
        self.sessions = list(ordered)
        self.starts = [session.start for session in ordered]

    def newest_first(self, date_from: datetime, date_to: datetime) -> Iterator[GeneratedSession]:
        """Sessions with ``date_from <= start <= date_to``, newest first."""
        low = bisect_left(self.starts, date_from)
        high = bisect_right(self.starts, date_to)
        for position in range(high - 1, low - 1, -1):
            yield self.sessions[position]
