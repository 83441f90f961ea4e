"""One generated message of the Conversation History API and the JSON the API shows of it.

A :class:`GeneratedMessage` is final truth, like a
:class:`~kore_sessions.sandbox.data.GeneratedSession`: nothing about it changes with the clock
but whether it is served (``createdOn`` and its own arrival time against the sandbox's now).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kore_sessions.sandbox.data import CLOSING_TAGS, MS, GeneratedSession, Tag, format_time, tag_list

# The one account the sandbox serves: its organisation id and account id on every message.
ORG_ID = "o-5e1f4c2a-7b3d-4e8f-9a1b-2c3d4e5f6a7b"
ACCOUNT_ID = "5e1f4c2a7b3d4e8f9a1b2c3d"
# Message sources (`ms`) only v1 serves: 0 Alert task, 2 Action task.
V1_ONLY_SOURCES = frozenset({0, 2})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class GeneratedMessage:
    """The final truth of one message of a session.

    Attributes:
        message_id: ``ms-<uuid>``, stable for a session.
        session: The session it belongs to.
        created: ``createdOn``.
        visible_at: When the API starts serving it (its session's arrival, or later).
        type: ``incoming`` (user), ``outgoing`` (bot) or ``ctrlmsg``.
        ms: Source: 0 alert task, 1 text, 2 action task, 3 other.
        status: ``received``, ``delivered``, ``pending``...
        component_type: The component's ``cT``.
        component_id: The component's ``_id`` (``cp-<uuid>``).
        text: The component's ``data.text``.
        lang: ``lang``.
        channel_uid: The user's identity on the channel (``channels[0].channelUId``).
        lag_ms: Milliseconds from ``createdOn`` to ``lmodifiedOn`` and ``timestampValue``.
        message_tags: ``tags.messageTags`` as ``(name, value)`` pairs.
        extra: Undocumented fields appended to the JSON (``__v``, ``resourceid``).
    """

    message_id: str
    session: GeneratedSession
    created: datetime
    visible_at: datetime
    type: str
    ms: int
    status: str
    component_type: str
    component_id: str
    text: str
    lang: str
    channel_uid: str
    lag_ms: int = 0
    message_tags: tuple[Tag, ...] = field(default=(), hash=False)
    extra: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @property
    def session_id(self) -> str:
        """The session's id."""
        return self.session.session_id

    @property
    def bot_id(self) -> str:
        """The bot's id."""
        return self.session.bot_id

    @property
    def channel(self) -> str:
        """The channel (``chnl``), the session's."""
        return self.session.channel

    def is_visible(self, now: datetime) -> bool:
        """Whether the API serves the message at ``now``."""
        return now >= self.visible_at

    def in_version(self, version: int) -> bool:
        """Whether API version ``version`` serves the message (v2 leaves out alert and action tasks)."""
        return version == 1 or self.ms not in V1_ONLY_SOURCES

    def view(self) -> dict[str, Any]:
        """The message's API JSON (a new dict each call)."""
        session = self.session
        modified = self.created + self.lag_ms * MS
        body: dict[str, Any] = {
            "_id": self.message_id,
            "type": self.type,
            "status": self.status,
            "createdOn": format_time(self.created),
            "lmodifiedOn": format_time(modified),
            "timestampValue": (modified - _EPOCH) // MS,
            "createdBy": session.user_id,
            "lmodifiedBy": session.user_id,
            "botId": session.bot_id,
            "orgId": ORG_ID,
            "accountId": ACCOUNT_ID,
            "sessionId": session.session_id,
            "chnl": session.channel,
            "channels": [{"type": session.channel, "channelUId": self.channel_uid}],
            "components": [
                {
                    "_id": self.component_id,
                    "cT": self.component_type,
                    "data": {"text": self.text},
                    "thumbnails": [],
                }
            ],
            "tags": {
                "messageTags": tag_list(self.message_tags),
                "userTags": tag_list(session.user_tags),
                "sessionTags": tag_list(tuple(t for t in session.session_tags if t[0] not in CLOSING_TAGS)),
            },
            "isBB": int(session.is_developer),
            "isD": int(session.is_developer),
            "ms": self.ms,
            "lang": self.lang,
        }
        body.update(self.extra)
        return body


def message_order(message: GeneratedMessage) -> tuple[datetime, str]:
    """The sort key of the API's order of messages, oldest first: ``createdOn``, then ``_id``."""
    return message.created, message.message_id
