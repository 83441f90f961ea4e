"""Deterministic, realistic Kore.ai sessions for the sandbox and the demo.

Everything is drawn from one ``random.Random`` seeded by ``seed``, so the same
arguments always give the same sessions, on any machine and Python version >= 3.11.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from kore_sessions.sandbox.data import VOICE_CHANNELS, GeneratedSession, Tag, to_utc_ms

CHANNEL_WEIGHTS: dict[str, int] = {
    "rtm": 38,
    "korevg": 14,
    "ivrVoice": 10,
    "msteams": 10,
    "slack": 8,
    "sms": 7,
    "email": 5,
    "facebook": 4,
    "api": 4,
}
LANGUAGE_WEIGHTS: dict[tuple[str, ...], int] = {
    ("en",): 86,
    ("en", "es"): 6,
    ("de",): 4,
    ("fr",): 4,
}
CONTAINMENT_WEIGHTS: dict[str, int] = {"selfService": 55, "dropOff": 30, "agent": 15}
# Monday .. Sunday; they average to 1 so ``per_day`` stays the mean daily volume.
WEEKDAY_FACTORS = (1.1, 1.15, 1.1, 1.05, 1.0, 0.8, 0.8)
DEVELOPER_SHARE = 0.03
NON_INTERACTIVE_SHARE = 0.15
LATE_ARRIVAL_SHARE = 0.03
# How late a late arrival shows up, in seconds after its start (an index that lags minutes).
LATE_ARRIVAL_DELAY = (60.0, 900.0)
LONG_SESSION_SHARE = 0.03
ACTIVE_WINDOW = timedelta(hours=2)
DEFAULT_ACTIVE_SHARE = 0.25
INTENTS = ("Check Balance", "Book Flight", "Reset Password", "Track Order", "Pay Bill")


def _hour_weights() -> tuple[float, ...]:
    raw = [0.15 + math.exp(-(((hour - 15) / 4.5) ** 2)) for hour in range(24)]
    total = sum(raw)
    return tuple(weight / total for weight in raw)


HOUR_WEIGHTS = _hour_weights()


@dataclass(frozen=True)
class _User:
    user_id: str
    tags: tuple[Tag, ...]


def make_bot_ids(count: int, seed: int = 0) -> list[str]:
    """Make deterministic Kore-like bot ids (``st-<uuid>``).

    Args:
        count: How many ids.
        seed: Seed; the same seed gives the same ids.

    Returns:
        The bot ids.
    """
    rng = random.Random(f"bots:{seed}")
    return [f"st-{_uuid(rng)}" for _ in range(count)]


def generate_sessions(
    bot_ids: Sequence[str],
    start: datetime,
    end: datetime,
    per_day: int,
    seed: int = 0,
    active_share: float = DEFAULT_ACTIVE_SHARE,
    late_share: float = LATE_ARRIVAL_SHARE,
    late_delay: tuple[float, float] = LATE_ARRIVAL_DELAY,
) -> list[GeneratedSession]:
    """Generate the final truth of every session of some bots over a period.

    Volume follows the weekday and a diurnal curve (peak around 15:00 UTC). Every
    session ends by ``end`` except a share ``active_share`` of those that started in
    the last two hours before ``end``: those are still open at ``end`` (some for hours).

    Args:
        bot_ids: The bots; each gets its own sessions.
        start: First possible start time (naive means UTC).
        end: Start times are before ``end``; also the "now" the open sessions refer to.
        per_day: Mean number of sessions per bot per day.
        seed: Seed; the same arguments always give the same sessions.
        active_share: Share, among sessions started in the last two hours, still open
            at ``end``.
        late_share: Share of sessions the API shows only some time after they started.
        late_delay: Seconds (low, high) after its start a late session becomes visible.

    Returns:
        The sessions, sorted by start time then session id.
    """
    if per_day < 0 or not 0.0 <= active_share <= 1.0 or not 0.0 <= late_share <= 1.0:
        raise ValueError("per_day must be >= 0, active_share and late_share within [0, 1]")
    start, end = to_utc_ms(start), to_utc_ms(end)
    rng = random.Random(seed)
    days = max((end - start).total_seconds() / 86400, 0.0)
    users = _make_users(rng, max(8, int(per_day * days * len(bot_ids) / 3)))
    maker = _SessionMaker(rng, users, end, active_share, late_share, late_delay)
    sessions: list[GeneratedSession] = []
    for bot_id in bot_ids:
        for moment in _start_times(rng, start, end, per_day):
            sessions.append(maker.make(bot_id, moment))
    sessions.sort(key=lambda s: (s.start, s.session_id))
    return sessions


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=5))


def _weighted(rng: random.Random, weights: dict[Any, int]) -> Any:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _ms(rng: random.Random, low_s: float, high_s: float) -> timedelta:
    return timedelta(milliseconds=rng.randint(int(low_s * 1000), int(high_s * 1000)))


def _start_times(rng: random.Random, start: datetime, end: datetime, per_day: int) -> list[datetime]:
    """Draw sorted start times: per hour bucket, a count from the volume curves."""
    moments: list[datetime] = []
    hour = start.replace(minute=0, second=0, microsecond=0)
    day_factor, day = 1.0, None
    while hour < end:
        if hour.date() != day:
            day, day_factor = hour.date(), rng.uniform(0.85, 1.15)
        low, high = max(hour, start), min(hour + timedelta(hours=1), end)
        span_ms = int((high - low).total_seconds() * 1000)
        expected = per_day * WEEKDAY_FACTORS[hour.weekday()] * HOUR_WEIGHTS[hour.hour]
        count = math.floor(expected * day_factor * span_ms / 3_600_000 + rng.random())
        for _ in range(count if span_ms > 0 else 0):
            moments.append(low + timedelta(milliseconds=rng.randrange(span_ms)))
        hour += timedelta(hours=1)
    moments.sort()
    return moments


def _make_users(rng: random.Random, count: int) -> list[_User]:
    return [_User(f"u-{_uuid(rng)}", _user_tags(rng)) for _ in range(count)]


def _user_tags(rng: random.Random) -> tuple[Tag, ...]:
    if rng.random() < 0.4:
        return ()
    candidates: list[Tag] = [
        ("regular", rng.choice(("newuser", "returning", "vip"))),
        ("loyaltyPoints", rng.randint(0, 5000)),
        ("premium", rng.random() < 0.3),
        ("profile", {"tier": rng.choice(("gold", "silver", "bronze")), "region": "us-east"}),
        ("satisfaction", round(rng.uniform(1, 5), 1)),
    ]
    return tuple(tag for index, tag in enumerate(candidates) if index == 0 or rng.random() < 0.4)


class _SessionMaker:
    """Draws one session's attributes; holds the ObjectId counter and the user pool."""

    def __init__(
        self,
        rng: random.Random,
        users: list[_User],
        end: datetime,
        active_share: float,
        late_share: float,
        late_delay: tuple[float, float],
    ) -> None:
        self.rng = rng
        self.users = users
        self.end = end
        self.active_share = active_share
        self.late_share = late_share
        self.late_delay = late_delay
        self.counter = rng.randrange(1 << 24)
        self.seen: set[str] = set()

    def make(self, bot_id: str, start: datetime) -> GeneratedSession:
        """Draw one session of ``bot_id`` starting at ``start``."""
        rng = self.rng
        user = self.users[int(len(self.users) * rng.random() ** 2)]
        developer = rng.random() < DEVELOPER_SHARE
        channel = "rtm" if developer else _weighted(rng, CHANNEL_WEIGHTS)
        interactive = rng.random() >= NON_INTERACTIVE_SHARE
        containment = _weighted(rng, CONTAINMENT_WEIGHTS) if interactive else "selfService"
        messages, tasks = self._counts(containment, interactive)
        late = rng.random() < self.late_share
        return GeneratedSession(
            session_id=self._object_id(start),
            bot_id=bot_id,
            user_id=user.user_id,
            channel=channel,
            start=start,
            end=self._end(start, interactive),
            visible_at=start + _ms(rng, *self.late_delay) if late else start,
            session_type="interactive" if interactive else "non-interactive",
            containment=containment,
            is_developer=developer,
            session_lang=_weighted(rng, LANGUAGE_WEIGHTS),
            user_tags=user.tags,
            session_tags=self._session_tags(channel, containment),
            messages=messages,
            tasks=tasks,
        )

    def _object_id(self, start: datetime) -> str:
        while True:
            self.counter = (self.counter + 1) % (1 << 24)
            oid = f"{int(start.timestamp()):08x}{self.rng.getrandbits(40):010x}{self.counter:06x}"
            if oid not in self.seen:
                self.seen.add(oid)
                return oid

    def _counts(self, containment: str, interactive: bool) -> tuple[int, int]:
        rng = self.rng
        if not interactive:
            return rng.randint(1, 2), 0
        if containment == "selfService":
            return rng.randint(2, 16), rng.randint(1, 3)
        if containment == "dropOff":
            return rng.randint(1, 8), rng.randint(0, 2)
        return rng.randint(4, 24), rng.randint(1, 3)

    def _duration(self, interactive: bool) -> timedelta:
        rng = self.rng
        if not interactive:
            return _ms(rng, 0.2, 45)
        if rng.random() < LONG_SESSION_SHARE:
            return _ms(rng, 3600, 6 * 3600)
        seconds = min(max(math.exp(rng.gauss(math.log(150), 1.0)), 2.0), 1800.0)
        return _ms(rng, seconds, seconds)

    def _end(self, start: datetime, interactive: bool) -> datetime:
        """End time: still open at ``self.end`` only for the chosen recent sessions."""
        natural = start + self._duration(interactive)
        if start >= self.end - ACTIVE_WINDOW and self.rng.random() < self.active_share:
            return max(natural, self.end + _ms(self.rng, 60, 3 * 3600))
        if natural <= self.end:
            return natural
        room_ms = int((self.end - start).total_seconds() * 1000)
        return start + timedelta(milliseconds=self.rng.randint(0, max(room_ms, 0)))

    def _session_tags(self, channel: str, containment: str) -> tuple[Tag, ...]:
        rng = self.rng
        if channel in VOICE_CHANNELS:
            return self._voice_tags(channel, containment)
        if rng.random() >= 0.3:
            return ()
        candidates: list[Tag] = [
            ("intent", rng.choice(INTENTS)),
            ("csatScore", rng.randint(1, 5)),
            ("resolved", containment == "selfService"),
            ("cart", {"items": rng.randint(1, 5), "total": round(rng.uniform(5, 300), 2)}),
            ("waitSeconds", round(rng.uniform(0.5, 90), 1)),
        ]
        return tuple(tag for index, tag in enumerate(candidates) if index == 0 or rng.random() < 0.35)

    def _voice_tags(self, channel: str, containment: str) -> tuple[Tag, ...]:
        rng = self.rng
        tags: list[Tag] = [("callId", _uuid(rng))]
        if channel == "korevg" or rng.random() < 0.5:
            tags.append(("welcomeMessageTwilio", "1"))
        tags.append(("callerNumber", f"+1{rng.randint(2_000_000_000, 9_999_999_999)}"))
        if containment == "agent":
            tags.append(("voiceAgentTransferStart", "1"))
        if rng.random() < 0.7:
            tags.append(("audioCodesCallDisconnect", "1"))
        return tuple(tags)
