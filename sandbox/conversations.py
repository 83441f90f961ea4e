"""The messages of each generated session, derived from the session alone.

Each session's conversation is drawn from a ``random.Random`` seeded by its session id, so it
is the same on every run and for every server holding the session. What a conversation owes its
session:

- **Count.** A session's ``messages`` (its final ``noOfMessagesExchanged``) is the number of
  messages it has, every type counted: what the v1 routes serve once the session is closed and
  arrived. v2 serves fewer: it leaves out alert-task and action-task messages (``ms`` 0 and 2).
- **Times.** Message ``k`` of ``n`` is created at the instant the session's view starts counting
  ``k`` messages (``start + ceil(k * span / n)`` in whole ms; the first at ``start``): while a
  session is open, the v1 routes serve as many of its messages as its view counts, unless some
  arrive late. Every ``createdOn`` lies between the session's start and end.
- **Sides.** Non-interactive sessions hold only bot messages. An interactive session of two or
  more messages opens with the user and ends with the bot; a drop-off ends with one of
  ``DROP_OFF_PROMPTS``, an agent transfer with one of ``AGENT_HANDOFF_TEXTS``.
- **Arrival.** No message is served before its session; a share ``LATE_MESSAGE_SHARE`` arrives
  some minutes after its ``createdOn`` on its own, so a loader must re-read with a lookback.
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime

from kore_sessions.sandbox import chat_texts as texts
from kore_sessions.sandbox.chat_message import GeneratedMessage
from kore_sessions.sandbox.data import MS, VOICE_CHANNELS, GeneratedSession

# Share of messages served only some minutes after their createdOn (an index that lags).
LATE_MESSAGE_SHARE = 0.03
# Seconds (low, high) after its createdOn a late message is served.
LATE_MESSAGE_DELAY = (60.0, 600.0)
# Share of user texts carrying a phone number or an e-mail address.
PERSONAL_SHARE = 0.15
# Share of messages in a non-text component (image, attachment...).
MEDIA_SHARE = 0.05
# Shares of a bot's mid-conversation messages that are action-task messages, and control messages.
ACTION_SHARE, CONTROL_SHARE = 0.08, 0.03
# Share of a non-interactive session's messages pushed by an alert task.
ALERT_SHARE = 0.5
# Share of messages carrying the undocumented `__v` and `resourceid` fields.
UNDOCUMENTED_SHARE = 0.3
# Channels whose user identity (channelUId) is a phone number, or an e-mail address.
PHONE_CHANNELS = VOICE_CHANNELS | {"sms"}
EMAIL_CHANNELS = frozenset({"email"})
# Seed prefixes: a session's conversation, and a user's personal-looking data.
SEED_PREFIX, USER_SEED_PREFIX = "messages:", "user:"

# (type, ms, cT, text) of one message before its ids and times are drawn.
_Draft = tuple[str, int, str, str]


def message_times(session: GeneratedSession) -> list[datetime]:
    """When each message of a session is created (see the module's docstring).

    Args:
        session: The session.

    Returns:
        ``session.messages`` times, oldest first.
    """
    count, span = session.messages, (session.end - session.start) // MS
    if count < 1:
        return []
    return [session.start] + [session.start + -(-k * span // count) * MS for k in range(2, count + 1)]


def conversation(session: GeneratedSession) -> tuple[GeneratedMessage, ...]:
    """Every message of a session, oldest first.

    Args:
        session: The session.

    Returns:
        ``session.messages`` messages.
    """
    rng = random.Random(f"{SEED_PREFIX}{session.session_id}")
    phone, email = personal_data(session.user_id)
    drafts = _drafts(rng, session, phone, email)
    uid = email if session.channel in EMAIL_CHANNELS else session.user_id
    if session.channel in PHONE_CHANNELS:
        uid = str(dict(session.session_tags).get("callerNumber", phone))
    return tuple(
        _message(rng, session, created, draft, uid)
        for created, draft in zip(message_times(session), drafts, strict=True)
    )


def personal_data(user_id: str) -> tuple[str, str]:
    """A user's personal-looking phone number and e-mail address (fixed per user).

    Args:
        user_id: The end user's id.

    Returns:
        ``(phone, email)``.
    """
    rng = random.Random(f"{USER_SEED_PREFIX}{user_id}")
    phone = f"+1 {rng.randint(200, 999)} 555 {rng.randint(0, 9999):04d}"
    email = f"{rng.choice(texts.FIRST_NAMES)}.{rng.choice(texts.LAST_NAMES)}@example.org"
    return phone, email


def _sides(rng: random.Random, session: GeneratedSession) -> list[str]:
    count = session.messages
    if count < 1:
        return []
    if session.session_type == "non-interactive" or count == 1:
        return ["outgoing"] * count
    sides = ["incoming"]
    for _ in range(count - 2):
        bot_again = sides[-1] == "outgoing" and rng.random() < 0.25
        sides.append("outgoing" if sides[-1] == "incoming" or bot_again else "incoming")
    return [*sides, "outgoing"]


def _drafts(rng: random.Random, session: GeneratedSession, phone: str, email: str) -> list[_Draft]:
    sides = _sides(rng, session)
    drafts: list[_Draft] = []
    for index, side in enumerate(sides):
        if session.session_type == "non-interactive":
            alert = rng.random() < ALERT_SHARE
            drafts.append(("outgoing", 0 if alert else 1, "text", rng.choice(texts.ALERT_TEXTS)))
        elif side == "incoming":
            drafts.append(_user_draft(rng, index == 0, phone, email))
        elif index == len(sides) - 1:
            drafts.append(_closing_draft(rng, session.containment))
        else:
            drafts.append(_bot_draft(rng))
    return drafts


def _user_draft(rng: random.Random, opening: bool, phone: str, email: str) -> _Draft:
    if opening:
        return "incoming", 1, "text", rng.choice(texts.OPENING_TEXTS)
    draw = rng.random()
    if draw < PERSONAL_SHARE:
        return "incoming", 1, "text", rng.choice(texts.PERSONAL_TEXTS).format(phone=phone, email=email)
    if draw < PERSONAL_SHARE + MEDIA_SHARE:
        return "incoming", 1, *rng.choice(texts.USER_MEDIA)
    return "incoming", 1, "text", rng.choice(texts.USER_TEXTS)


def _bot_draft(rng: random.Random) -> _Draft:
    draw = rng.random()
    if draw < ACTION_SHARE:
        return "outgoing", 2, "text", rng.choice(texts.ACTION_TEXTS)
    if draw < ACTION_SHARE + CONTROL_SHARE:
        return "ctrlmsg", 3, "contextUpdate", texts.CONTROL_TEXT
    if draw < ACTION_SHARE + CONTROL_SHARE + MEDIA_SHARE:
        return "outgoing", 3, *rng.choice(texts.BOT_MEDIA)
    return "outgoing", 1, "text", rng.choice(texts.BOT_REPLIES)


def _closing_draft(rng: random.Random, containment: str) -> _Draft:
    if containment == "dropOff":
        return "outgoing", 1, "text", rng.choice(texts.DROP_OFF_PROMPTS)
    if containment == "agent":
        return "outgoing", 1, "text", rng.choice(texts.AGENT_HANDOFF_TEXTS)
    return "outgoing", 1, "text", rng.choice(texts.BOT_REPLIES)


def _message(
    rng: random.Random, session: GeneratedSession, created: datetime, draft: _Draft, uid: str
) -> GeneratedMessage:
    kind, source, component_type, text = draft
    arrives = created
    if rng.random() < LATE_MESSAGE_SHARE:
        low, high = LATE_MESSAGE_DELAY
        arrives += rng.randint(int(low * 1000), int(high * 1000)) * MS
    status = "received" if kind == "incoming" else rng.choice(("delivered",) * 9 + ("pending",))
    undocumented = {"__v": 0, "resourceid": "messagestore"} if rng.random() < UNDOCUMENTED_SHARE else {}
    return GeneratedMessage(
        message_id=f"ms-{_uuid(rng)}",
        session=session,
        created=created,
        visible_at=max(arrives, session.visible_from),
        type=kind,
        ms=source,
        status=status,
        component_type=component_type,
        component_id=f"cp-{_uuid(rng)}",
        text=text,
        lang=rng.choice(session.session_lang),
        channel_uid=uid,
        lag_ms=rng.randint(0, 20),
        message_tags=(("sentiment", rng.choice(("positive", "neutral", "negative"))),)
        if kind == "incoming" and rng.random() < 0.1
        else (),
        extra=undocumented,
    )


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))
