"""The sessions the sandbox serves: one frozen record per session and its API view.

A :class:`GeneratedSession` holds the *final* truth of a session. The sandbox never
stores what the API showed earlier: :meth:`GeneratedSession.view` derives the JSON a
client sees at any sandbox time, so an open session turns into a closed one (with a
different containment, end time and counts) simply by moving the sandbox clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

SESSION_TYPES = ("interactive", "non-interactive")
CONTAINMENTS = ("selfService", "dropOff", "agent")
VOICE_CHANNELS = frozenset({"korevg", "ivrVoice"})
CALL_ID_TAG = "callId"
# Session tags that only exist once a call is over: hidden while the session is open.
CLOSING_TAGS = frozenset({"audioCodesCallDisconnect"})

Tag = tuple[str, Any]
# One millisecond: the API's time precision.
MS = timedelta(milliseconds=1)


def to_utc_ms(value: datetime) -> datetime:
    """Normalise a datetime to aware UTC, truncated to whole milliseconds.

    Args:
        value: Any datetime; a naive one is taken as UTC.

    Returns:
        The same instant in UTC with microseconds cut to milliseconds.
    """
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def format_time(value: datetime) -> str:
    """Format a datetime the way the API does: ``YYYY-MM-DDTHH:MM:SS.mmmZ``.

    Args:
        value: Any datetime; a naive one is taken as UTC.

    Returns:
        The ISO text with milliseconds and a ``Z`` suffix.
    """
    value = to_utc_ms(value)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def tag_list(tags: tuple[Tag, ...]) -> list[dict[str, Any]]:
    """Tags as the API lists them: ``[{"value": ..., "name": ...}]`` (the samples' key order)."""
    return [{"value": value, "name": name} for name, value in tags]


@dataclass(frozen=True)
class GeneratedSession:
    """The final truth of one bot session.

    Datetimes are normalised to aware UTC with millisecond precision (naive ones are
    taken as UTC); ``visible_at`` defaults to ``start``.

    Attributes:
        session_id: 24 lowercase hex characters, like a MongoDB ObjectId.
        bot_id: The bot (stream) id, ``st-<uuid>``.
        user_id: The end user's id, ``u-<uuid>``.
        channel: rtm, korevg, ivrVoice, msteams, slack, sms, email, facebook, api...
        start: When the session started.
        end: When the session ended (or will end).
        visible_at: When the API starts returning it (late arrivals: after start).
        session_type: ``interactive`` or ``non-interactive``.
        containment: Final containment: ``selfService``, ``dropOff`` or ``agent``.
        is_developer: Whether a developer started it (talk-to-bot).
        session_lang: Languages used in the session.
        user_tags: ``(name, value)`` pairs; values of any JSON type.
        session_tags: ``(name, value)`` pairs; values of any JSON type.
        messages: Final ``noOfMessagesExchanged``: also how many messages its conversation
            holds (``kore_sessions.sandbox.conversations``).
        tasks: Final ``noOfTasksExecuted``.
        extra: Extra fields appended to (or overriding) the API JSON.
    """

    session_id: str
    bot_id: str
    user_id: str
    channel: str
    start: datetime
    end: datetime
    visible_at: datetime | None = None
    session_type: str = "interactive"
    containment: str = "selfService"
    is_developer: bool = False
    session_lang: tuple[str, ...] = ("en",)
    user_tags: tuple[Tag, ...] = field(default=(), hash=False)
    session_tags: tuple[Tag, ...] = field(default=(), hash=False)
    messages: int = 1
    tasks: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        """Normalise the datetimes and check the invariants."""
        start = to_utc_ms(self.start)
        visible = start if self.visible_at is None else to_utc_ms(self.visible_at)
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", to_utc_ms(self.end))
        object.__setattr__(self, "visible_at", visible)
        if self.end < start or visible < start:
            raise ValueError(f"{self.session_id}: end and visible_at must not precede start")
        if self.session_type not in SESSION_TYPES:
            raise ValueError(f"{self.session_id}: bad session_type {self.session_type!r}")
        if self.containment not in CONTAINMENTS:
            raise ValueError(f"{self.session_id}: bad containment {self.containment!r}")

    @property
    def visible_from(self) -> datetime:
        """When the API starts returning the session (``visible_at``, never None)."""
        return self.visible_at or self.start

    @property
    def call_id(self) -> str | None:
        """The external voice call id (session tag ``callId``), if any."""
        for name, value in self.session_tags:
            if name == CALL_ID_TAG:
                return str(value)
        return None

    def is_visible(self, now: datetime) -> bool:
        """Whether the API returns this session at ``now``."""
        return now >= self.visible_from

    def is_active(self, now: datetime) -> bool:
        """Whether the session is still open at ``now``."""
        return now < self.end

    def containment_at(self, now: datetime) -> str:
        """The containment the API shows at ``now``: open sessions count as self-service."""
        return "selfService" if self.is_active(now) else self.containment

    def view(self, now: datetime, *, legacy: bool = False) -> dict[str, Any] | None:
        """The session's API JSON as the server shows it at ``now``.

        Args:
            now: The sandbox time.
            legacy: Give the pre-9.0 shape (no ``containmentType`` and no
                ``sessionStatus``; ``sessionType`` holds the containment).

        Returns:
            The session object, or None when it is not visible yet.
        """
        now = to_utc_ms(now)
        if not self.is_visible(now):
            return None
        active = self.is_active(now)
        messages, tasks = self._counts_at(now) if active else (self.messages, self.tasks)
        body: dict[str, Any] = {
            "sessionId": self.session_id,
            "botId": self.bot_id,
            "channel": self.channel,
            "userId": self.user_id,
            "start_time": format_time(self.start),
            "end_time": format_time(now if active else self.end),
            "session_lang": list(self.session_lang),
            "sessionType": self.session_type,
            "containmentType": self.containment_at(now),
            "isDeveloper": self.is_developer,
            "sessionStatus": "active" if active else "closed",
            "tags": self._tags_at(active),
            "noOfMessagesExchanged": messages,
            "noOfTasksExecuted": tasks,
        }
        if legacy:
            body["sessionType"] = body.pop("containmentType")
            del body["sessionStatus"]
        body.update(self.extra)
        return body

    def _counts_at(self, now: datetime) -> tuple[int, int]:
        # Whole milliseconds, so the count is exact at the instants the messages are created.
        span, elapsed = (self.end - self.start) // MS, (now - self.start) // MS
        if span <= 0:
            return self.messages, self.tasks
        messages = min(self.messages, max(1, self.messages * elapsed // span))
        return messages, self.tasks * elapsed // span

    def _tags_at(self, active: bool) -> dict[str, Any]:
        session_tags = [t for t in self.session_tags if not (active and t[0] in CLOSING_TAGS)]
        tags: dict[str, Any] = {
            "userTags": tag_list(self.user_tags),
            "sessionTags": tag_list(tuple(session_tags)),
        }
        if self.channel in VOICE_CHANNELS:
            tags["altText"] = []
        return tags
