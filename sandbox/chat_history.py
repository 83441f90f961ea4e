"""The messages a sandbox serves: generated from its sessions once, again when the sessions change."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from kore_sessions.sandbox.message_store import MessageStore
from kore_sessions.sandbox.messages_api import VERSION_LIMITS
from kore_sessions.sandbox.store import SessionStore


class ChatHistory:
    """The Conversation History API's data and setting: the messages of a session store, and
    the page cap.

    Attributes:
        page_cap: Largest page of messages returned whatever ``limit`` asks (besides the
            version's own maximum).
    """

    def __init__(self, page_cap: int = VERSION_LIMITS[2]) -> None:
        """Start without messages: they are generated when first asked for.

        Args:
            page_cap: Largest page of messages returned whatever ``limit`` asks.
        """
        if page_cap < 1:
            raise ValueError("message_page_cap must be >= 1")
        self.page_cap = page_cap
        self._store: MessageStore | None = None
        self._sessions: SessionStore | None = None
        self._lock = threading.Lock()

    def store(self, sessions: SessionStore) -> MessageStore:
        """The messages of ``sessions`` (generated on first use, and again for other sessions).

        Args:
            sessions: The account's sessions now.

        Returns:
            Their messages.
        """
        with self._lock:
            if self._store is None or self._sessions is not sessions:
                self._store = MessageStore(sessions.by_id.values())
                self._sessions = sessions
            return self._store

    def visible(
        self, sessions: SessionStore, now: datetime, bot_id: str | None = None, version: int = 1
    ) -> list[dict[str, Any]]:
        """Every message the API serves at ``now`` on every channel, newest first.

        Args:
            sessions: The account's sessions now.
            now: The sandbox time.
            bot_id: Only this bot's messages; None for all.
            version: The API version (2 leaves out alert and action task messages).

        Returns:
            The message views, in the API's default order.
        """
        bots = None if bot_id is None else frozenset({bot_id})
        messages = self.store(sessions).everything(bots)
        return [m.view() for m in reversed(messages) if m.is_visible(now) and m.in_version(version)]
