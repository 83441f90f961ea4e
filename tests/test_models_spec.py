"""The containment models checked against numbers worked out by hand from the spec.

The spec ("Containment, as the vendor's dashboards define it") and the models' contract:
by default only closed, interactive, non-developer sessions count; an open session counts
as self-service with the containment the API shows; a pre-9.0 row (no session type, no
status) counts as interactive and closed; the day is the start date in the reporting time
zone; weeks start on Monday and months on the 1st, in that zone too.

The hand-made data set below (23 sessions, three bots, one served in the pre-9.0 shape)
is loaded through the real pipeline; every expected number is written out by hand next
to the sessions it comes from, in tables of (mart, settings) -> rows that parametrized
tests read. A mart's key is the one its grain header states. A larger generated data set
is then checked against rates computed in Python from the API's own JSON, independently
of the SQL.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from kore_sessions.sandbox import GeneratedSession, SandboxApp, SandboxServer, generate_sessions
from kore_sessions.warehouse.model_files import discover_models
from kore_sessions.warehouse.model_settings import ModelSettings
from kore_sessions.warehouse.models import build_models
from kore_sessions.warehouse.personal_data import looks_personal_name, looks_personal_value

from .conftest import BOTS, CLIENT_ID, CLIENT_SECRET, NOW, Loader, api_time, tag_text

A, B = BOTS  # two 9.x bots
L = "st-aaaaaaaa-0000-4000-8000-00000000000c"  # a bot on a pre-9.0 platform
NY = "America/New_York"  # UTC-4 until 2026-11-01 06:00 UTC, UTC-5 after (DST ends)
IST = "Asia/Kolkata"  # UTC+5:30
PAGE_CAP = 500  # larger than either data set: paging is tested elsewhere
COUNTS = ("sessions", "self_service", "drop_off", "agent")  # the four counts every table gives
RATES = ("containment_rate", "drop_off_rate", "agent_transfer_rate")  # shares of `sessions`
OUTCOMES = {"self_service", "drop_off", "agent"}  # the outcomes the hand-made sessions have
# Every session counted, whatever its status, type or user.
ALL_IN = ModelSettings(include_active=True, include_non_interactive=True, include_developer=True)
# Each model's key, as its grain header states it: rows are read and compared by it.
KEYS = {model.name: model.grain for model in discover_models()}
# The marts: each is checked for unique, non-null keys.
MARTS = [model.name for model in discover_models() if model.layer == "marts"]
# The marts the tables below give rows of.
DAILY = "fct_containment_daily"
WEEKLY = "fct_containment_weekly"
MONTHLY = "fct_containment_monthly"
BY_CHANNEL = "fct_containment_daily_by_channel"
BY_LANGUAGE = "fct_containment_daily_by_language"
BY_TAG = "fct_containment_by_tag"
BEHAVIOUR = "fct_session_behaviour_daily"
# The tag tables give the four counts only: no active sessions, no time zone checked.
COUNTS_ONLY = {BY_TAG}
# The settings the tables are computed for, by the name the test ids use.
SETTINGS = {
    "default": ModelSettings(),
    "active": ModelSettings(include_active=True),
    "non-interactive": ModelSettings(include_non_interactive=True),
    "developer": ModelSettings(include_developer=True),
    "everything": ALL_IN,
    "new-york": ModelSettings(reporting_time_zone=NY),
    "new-york-active": ModelSettings(reporting_time_zone=NY, include_active=True),
    "kolkata": ModelSettings(reporting_time_zone=IST),
    "kolkata-active": ModelSettings(reporting_time_zone=IST, include_active=True),
    "non-interactive-and-developer": ModelSettings(include_non_interactive=True, include_developer=True),
    "tags-allow-listed": ModelSettings(tag_names=("callId", "resolved")),
    "one-value-a-tag": ModelSettings(tag_max_values=1),
}


def utc(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """A moment of 2026 in UTC."""
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def d(month: int, day: int) -> date:
    """A date of 2026."""
    return date(2026, month, day)


def sid(name: str) -> str:
    """The 24-character session id of a hand-made session ("a01" -> "000...a01")."""
    return name.rjust(24, "0")


def session(
    name: str,
    bot: str,
    start: datetime,
    seconds: int,
    containment: str = "selfService",
    *,
    channel: str = "rtm",
    langs: tuple[str, ...] = ("en",),
    messages: int = 1,
    tasks: int = 0,
    non_interactive: bool = False,
    developer: bool = False,
    user_tags: tuple[tuple[str, Any], ...] = (),
    session_tags: tuple[tuple[str, Any], ...] = (),
    extra: dict[str, Any] | None = None,
) -> GeneratedSession:
    """One hand-made session lasting `seconds` (its final truth)."""
    return GeneratedSession(
        session_id=sid(name),
        bot_id=bot,
        user_id=f"u-{name}",
        channel=channel,
        start=start,
        end=start + timedelta(seconds=seconds),
        session_type="non-interactive" if non_interactive else "interactive",
        containment=containment,
        is_developer=developer,
        session_lang=langs,
        user_tags=user_tags,
        session_tags=session_tags,
        messages=messages,
        tasks=tasks,
        extra=extra or {},
    )


# NOW is Sunday 2026-11-01 12:00 UTC. Local days noted as UTC / New York / Kolkata.
SESSIONS_9X = [
    # 10-25 Sun / 10-25 Sun / 10-26 Mon (Kolkata: next week)
    session("a01", A, utc(10, 25, 23, 50), 120, messages=4, tasks=1),
    # 10-26 Mon / 10-25 Sun (New York: previous week) / 10-26; two languages
    session(
        "a02",
        A,
        utc(10, 26, 0, 10),
        60,
        "dropOff",
        langs=("en", "es"),
        messages=2,
        session_tags=(("intent", "Track Order"),),
    ),
    # 10-26 / 10-26 / 10-26 23:50 (Kolkata midnight is 18:30 UTC)
    session("a03", A, utc(10, 26, 18, 20), 200, channel="msteams", messages=6, tasks=2),
    # 10-26 / 10-26 / 10-27 00:10
    session(
        "a04", A, utc(10, 26, 18, 40), 400, "agent", channel="msteams", langs=("de",), messages=10, tasks=1
    ),
    # 10-31 Sat (October) / 10-31 / 11-01 05:00 (November)
    session("a05", A, utc(10, 31, 23, 30), 90, channel="slack", langs=("fr",), messages=3, tasks=1),
    # 11-01 / 10-31 22:00 EDT (October) / 11-01; a language listed twice counts once
    session("a06", A, utc(11, 1, 2), 60, "agent", langs=("en", "en"), messages=8, tasks=2),
    # developer session: out of scope by default
    session("a07", A, utc(11, 1, 3, 30), 120, "dropOff", developer=True, messages=2),
    # non-interactive: out of scope by default
    session("a08", A, utc(11, 1, 4), 10, channel="api", non_interactive=True, messages=1),
    # 11-01 / 11-01 00:30 EDT (a fixed UTC-5 would put it on 10-31) / 11-01
    session("a09", A, utc(11, 1, 4, 30), 300, channel="email", messages=6, tasks=3),
    # no language at all: 'unknown'
    session("a10", A, utc(11, 1, 7), 30, langs=(), messages=2, tasks=1),
    # open at NOW (ends 13:00): the API shows selfService, 5 messages, 1 task, 3600 s so far
    session(
        "a11",
        A,
        utc(11, 1, 11),
        7200,
        "dropOff",
        messages=10,
        tasks=2,
        user_tags=(("regular", "returning"),),
    ),
    # bot B, all on 10-28 UTC and New York; tags of every JSON type
    session(
        "b01",
        B,
        utc(10, 28, 12),
        100,
        messages=5,
        tasks=1,
        user_tags=(("regular", "vip"), ("regular", "vip")),
        session_tags=(("intent", "Pay Bill"), ("csatScore", 5), ("waitSeconds", 63.6), ("resolved", True)),
    ),
    session(
        "b02",
        B,
        utc(10, 28, 13),
        200,
        "agent",
        messages=12,
        tasks=2,
        user_tags=(("regular", "vip"),),
        session_tags=(("intent", "Pay Bill"), ("resolved", False)),
    ),
    session(
        "b03",
        B,
        utc(10, 28, 14),
        50,
        "dropOff",
        channel="sms",
        langs=("es",),
        messages=3,
        user_tags=(("regular", "newuser"), ("premium", True)),
    ),
    session("b04", B, utc(10, 28, 15), 5, non_interactive=True, session_tags=(("intent", "Pay Bill"),)),
    session(
        "b05",
        B,
        utc(10, 28, 16),
        80,
        "agent",
        developer=True,
        messages=6,
        tasks=1,
        user_tags=(("regular", "vip"),),
        session_tags=(("intent", "Pay Bill"), ("escalated", True)),
    ),
    # 10-28 / 10-28 / 10-29 00:30
    session(
        "b06",
        B,
        utc(10, 28, 19),
        40,
        channel="korevg",
        messages=3,
        tasks=1,
        session_tags=(("callId", "c-0001"),),
    ),
    # isDeveloper null: counts as not developer
    session("b07", B, utc(10, 29, 9), 70, "agent", messages=4, tasks=1, extra={"isDeveloper": None}),
]

# Served in the pre-9.0 shape: sessionType holds the containment, no sessionStatus.
SESSIONS_LEGACY = [
    session("c01", L, utc(10, 30, 10), 60, messages=2, tasks=1),
    # non-interactive in truth, but the old API cannot say so: counts as interactive
    session(
        "c02",
        L,
        utc(10, 30, 11),
        30,
        "dropOff",
        channel="ivrVoice",
        non_interactive=True,
        messages=1,
        user_tags=(("regular", "newuser"),),
    ),
    session("c03", L, utc(10, 30, 12), 90, "agent", developer=True, messages=5, tasks=1),
    # open at NOW, shown as selfService with no status: counts as closed (1800 s, 3 messages, 1 task)
    session("c04", L, utc(11, 1, 11, 30), 3600, "agent", messages=6, tasks=2),
    # 10-30 / 10-30 / 10-31 03:30
    session("c05", L, utc(10, 30, 22), 45, "dropOff", messages=3),
]


def bot_app() -> list[SandboxApp]:
    """The one bot-builder app both sandboxes accept."""
    return [SandboxApp(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, kind="bot")]


@dataclasses.dataclass
class Loaded:
    """A data set loaded into one warehouse, and the settings its models were last built with.

    Every test builds the models with its settings (`build`) before reading them, so the
    raw tables are shared by the module's tests; a build is skipped when the models already
    have those settings.
    """

    loader: Loader
    views: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # as the API shows them
    built_with: ModelSettings | None = None  # None: not built yet, or built without settings

    def build(self, settings: ModelSettings | None) -> Loader:
        """The loader, its models built with `settings` (None: `build_models` without settings)."""
        if settings is None or settings != self.built_with:
            build_models(self.loader.pipeline, settings)
            self.built_with = settings
        return self.loader


@pytest.fixture(scope="module")
def loads() -> Iterator[dict[tuple[str, str], Loaded]]:
    """The data sets this module loaded, by (data set, warehouse); each is loaded once."""
    loaded: dict[tuple[str, str], Loaded] = {}
    yield loaded
    for data in loaded.values():
        data.loader.drop_dataset()


@pytest.fixture
def hand(
    warehouse: str, loads: dict[tuple[str, str], Loaded], tmp_path_factory: pytest.TempPathFactory
) -> Loaded:
    """The hand-made sessions loaded into `warehouse`: the 9.x bots, then the pre-9.0 one."""
    if ("hand", warehouse) not in loads:
        with (
            SandboxServer(SESSIONS_9X, apps=bot_app(), now=NOW, page_cap=PAGE_CAP) as server,
            SandboxServer(SESSIONS_LEGACY, apps=bot_app(), now=NOW, page_cap=PAGE_CAP, legacy=True) as old,
        ):
            loader = Loader(server, tmp_path_factory.mktemp(f"hand_{warehouse}"), warehouse)
            loads["hand", warehouse] = Loaded(loader)
            loader.run()
            summary = loader.run(host=old.url, bot_ids=[L])
            assert summary.legacy_bots == [L]
    return loads["hand", warehouse]


@pytest.fixture
def generated(
    warehouse: str, loads: dict[tuple[str, str], Loaded], tmp_path_factory: pytest.TempPathFactory
) -> Loaded:
    """Two weeks of generated sessions of two bots, loaded into `warehouse`."""
    if ("generated", warehouse) not in loads:
        sessions = generate_sessions(BOTS, NOW - timedelta(days=13), NOW, per_day=40, seed=29)
        with SandboxServer(sessions, apps=bot_app(), now=NOW, page_cap=PAGE_CAP) as server:
            loader = Loader(server, tmp_path_factory.mktemp(f"generated_{warehouse}"), warehouse)
            loads["generated", warehouse] = data = Loaded(loader)
            loader.run()
            data.views = server.visible_sessions()
    return loads["generated", warehouse]


# reading the marts ----------------------------------------------------------------------


def read(loader: Loader, table: str, values: Sequence[str]) -> dict[tuple, tuple]:
    """Rows of a model keyed by its grain header's key; a repeated key fails."""
    keys = KEYS[table]
    rows = loader.query(f"SELECT {', '.join([*keys, *values])} FROM {table}")
    found: dict[tuple, tuple] = {}
    for row in rows:
        key = tuple(row[: len(keys)])
        assert key not in found, f"{table}: key {key} appears twice"
        found[key] = tuple(row[len(keys) :])
    return found


def check_containment(
    loader: Loader, table: str, expected: Mapping[tuple, tuple[int, ...]], time_zone: str
) -> None:
    """Counts (and active_sessions and the time zone, but in COUNTS_ONLY marts) equal `expected`.

    The rates must be the counts' shares of `sessions`, as floating point.
    """
    with_active = table not in COUNTS_ONLY
    values = [*COUNTS, *(["active_sessions"] if with_active else []), *RATES]
    if with_active:
        values.append("reporting_time_zone")
    got = read(loader, table, values)
    width = 5 if with_active else 4
    counts = {key: tuple(int(v) for v in row[:width]) for key, row in got.items()}
    assert counts == expected, f"{table} counts"
    for key, row in got.items():
        sessions, self_service, drop_off, agent = counts[key][:4]
        rates = [float(v) for v in row[width : width + 3]]
        wanted = [self_service / sessions, drop_off / sessions, agent / sessions]
        assert rates == pytest.approx(wanted), f"{table} rates of {key}"
        if with_active:
            assert row[-1] == time_zone, f"{table} reporting_time_zone of {key}"


# The columns of fct_session_behaviour_daily the behaviour tables give, in their order.
BEHAVIOUR_VALUES = (
    "sessions", "interactive_sessions", "non_interactive_sessions", "developer_sessions",
    "interactive_share", "developer_share", "messages_per_session", "tasks_per_session",
    "duration_p50_seconds", "duration_p90_seconds", "duration_p95_seconds",
)  # fmt: skip


def behaviour(loader: Loader) -> dict[tuple, tuple]:
    """fct_session_behaviour_daily keyed by its grain: four counts, then the floats."""
    got = read(loader, BEHAVIOUR, BEHAVIOUR_VALUES)
    return {k: (*(int(v) for v in row[:4]), *(float(v) for v in row[4:])) for k, row in got.items()}


def approx_rows(expected: Mapping[tuple, tuple]) -> dict[tuple, Any]:
    """`expected` with every row compared approximately."""
    return {key: pytest.approx(row) for key, row in expected.items()}


def without(table: Mapping[tuple, tuple], *keys: tuple) -> dict[tuple, tuple]:
    """`table` without the rows of `keys`, which must be there."""
    missing = [key for key in keys if key not in table]
    if missing:
        raise KeyError(f"rows to leave out are not in the table: {missing}")
    return {key: row for key, row in table.items() if key not in keys}


# the rows the hand-made sessions give ---------------------------------------------------
# Containment rows: (sessions, self_service, drop_off, agent, active_sessions); tag rows
# leave out active_sessions. A table written as {**BASE, ...} differs from BASE in the rows
# given, each with the sessions that make the difference.

DAILY_UTC = {
    (d(10, 25), A): (1, 1, 0, 0, 0),  # a01
    (d(10, 26), A): (3, 1, 1, 1, 0),  # a02 a03 a04
    (d(10, 31), A): (1, 1, 0, 0, 0),  # a05
    (d(11, 1), A): (3, 2, 0, 1, 0),  # a06 a09 a10 (not a07 dev, a08 non-int, a11 open)
    (d(10, 28), B): (4, 2, 1, 1, 0),  # b01 b02 b03 b06 (not b04, b05)
    (d(10, 29), B): (1, 0, 0, 1, 0),  # b07 (isDeveloper null)
    (d(10, 30), L): (3, 1, 2, 0, 0),  # c01 c02 c05 (not c03 dev)
    (d(11, 1), L): (1, 1, 0, 0, 0),  # c04 (no status: closed)
}
# (containment_rate, drop_off_rate, agent_transfer_rate) of DAILY_UTC
DAILY_UTC_RATES = {
    (d(10, 25), A): (1.0, 0.0, 0.0),
    (d(10, 26), A): (1 / 3, 1 / 3, 1 / 3),
    (d(10, 31), A): (1.0, 0.0, 0.0),
    (d(11, 1), A): (2 / 3, 0.0, 1 / 3),
    (d(10, 28), B): (0.5, 0.25, 0.25),
    (d(10, 29), B): (0.0, 0.0, 1.0),
    (d(10, 30), L): (1 / 3, 2 / 3, 0.0),
    (d(11, 1), L): (1.0, 0.0, 0.0),
}
DAILY_NEW_YORK = {
    (d(10, 25), A): (2, 1, 1, 0, 0),  # a01 19:50, a02 20:10 EDT
    (d(10, 26), A): (2, 1, 0, 1, 0),  # a03 a04
    (d(10, 31), A): (2, 1, 0, 1, 0),  # a05 19:30, a06 22:00 EDT
    (d(11, 1), A): (2, 2, 0, 0, 0),  # a09 00:30 EDT, a10 02:00 EST
    (d(10, 28), B): (4, 2, 1, 1, 0),
    (d(10, 29), B): (1, 0, 0, 1, 0),
    (d(10, 30), L): (3, 1, 2, 0, 0),  # c05 18:00 EDT
    (d(11, 1), L): (1, 1, 0, 0, 0),  # c04 06:30 EST
}
WEEKLY_UTC = {
    (d(10, 19), A): (1, 1, 0, 0, 0),  # a01 on Sunday 10-25
    (d(10, 26), A): (7, 4, 1, 2, 0),  # a02 a03 a04 a05 a06 a09 a10
    (d(10, 26), B): (5, 2, 1, 2, 0),
    (d(10, 26), L): (4, 2, 2, 0, 0),
}
MONTHLY_UTC = {
    (d(10, 1), A): (5, 3, 1, 1, 0),  # a01..a05
    (d(11, 1), A): (3, 2, 0, 1, 0),  # a06 a09 a10
    (d(10, 1), B): (5, 2, 1, 2, 0),
    (d(10, 1), L): (3, 1, 2, 0, 0),
    (d(11, 1), L): (1, 1, 0, 0, 0),
}
BY_CHANNEL_UTC = {
    (d(10, 25), A, "rtm"): (1, 1, 0, 0, 0),  # a01
    (d(10, 26), A, "rtm"): (1, 0, 1, 0, 0),  # a02
    (d(10, 26), A, "msteams"): (2, 1, 0, 1, 0),  # a03 a04
    (d(10, 31), A, "slack"): (1, 1, 0, 0, 0),  # a05
    (d(11, 1), A, "rtm"): (2, 1, 0, 1, 0),  # a06 a10
    (d(11, 1), A, "email"): (1, 1, 0, 0, 0),  # a09
    (d(10, 28), B, "rtm"): (2, 1, 0, 1, 0),  # b01 b02
    (d(10, 28), B, "sms"): (1, 0, 1, 0, 0),  # b03
    (d(10, 28), B, "korevg"): (1, 1, 0, 0, 0),  # b06
    (d(10, 29), B, "rtm"): (1, 0, 0, 1, 0),  # b07
    (d(10, 30), L, "rtm"): (2, 1, 1, 0, 0),  # c01 c05
    (d(10, 30), L, "ivrVoice"): (1, 0, 1, 0, 0),  # c02
    (d(11, 1), L, "rtm"): (1, 1, 0, 0, 0),  # c04
}
BY_LANGUAGE_UTC = {
    (d(10, 25), A, "en"): (1, 1, 0, 0, 0),  # a01
    (d(10, 26), A, "en"): (2, 1, 1, 0, 0),  # a02 (en+es) a03
    (d(10, 26), A, "es"): (1, 0, 1, 0, 0),  # a02
    (d(10, 26), A, "de"): (1, 0, 0, 1, 0),  # a04
    (d(10, 31), A, "fr"): (1, 1, 0, 0, 0),  # a05
    (d(11, 1), A, "en"): (2, 1, 0, 1, 0),  # a06 (en listed twice) a09
    (d(11, 1), A, "unknown"): (1, 1, 0, 0, 0),  # a10
    (d(10, 28), B, "en"): (3, 2, 0, 1, 0),  # b01 b02 b06
    (d(10, 28), B, "es"): (1, 0, 1, 0, 0),  # b03
    (d(10, 29), B, "en"): (1, 0, 0, 1, 0),  # b07
    (d(10, 30), L, "en"): (3, 1, 2, 0, 0),  # c01 c02 c05
    (d(11, 1), L, "en"): (1, 1, 0, 0, 0),  # c04
}
# (sessions, self_service, drop_off, agent) of distinct in-scope sessions
BY_TAG_UTC = {
    (d(10, 26), A, "session", "intent", "Track Order"): (1, 0, 1, 0),
    (d(10, 28), B, "user", "regular", "vip"): (2, 1, 0, 1),  # b01 (tag listed twice) b02
    (d(10, 28), B, "user", "regular", "newuser"): (1, 0, 1, 0),
    (d(10, 28), B, "user", "premium", "true"): (1, 0, 1, 0),
    (d(10, 28), B, "session", "intent", "Pay Bill"): (2, 1, 0, 1),  # b01 b02
    (d(10, 28), B, "session", "csatScore", "5"): (1, 1, 0, 0),
    (d(10, 28), B, "session", "waitSeconds", "63.6"): (1, 1, 0, 0),
    (d(10, 28), B, "session", "resolved", "true"): (1, 1, 0, 0),
    (d(10, 28), B, "session", "resolved", "false"): (1, 0, 0, 1),
    (d(10, 30), L, "user", "regular", "newuser"): (1, 0, 1, 0),  # c02
}  # b01's callId is a call's id, not a kind of session: only an allow list slices by it

# (mart, settings) -> its rows. The daily default is in test_daily_defaults_with_rates.
CONTAINMENT: dict[tuple[str, str], dict[tuple, tuple[int, ...]]] = {
    (DAILY, "active"): {
        **DAILY_UTC,
        (d(11, 1), A): (4, 3, 0, 1, 1),  # + a11, open: self-service as shown
        (d(11, 1), L): (1, 1, 0, 0, 0),  # c04 has no status: not an active session
    },
    (DAILY, "non-interactive"): {
        **DAILY_UTC,
        (d(11, 1), A): (4, 3, 0, 1, 0),  # + a08
        (d(10, 28), B): (5, 3, 1, 1, 0),  # + b04
    },
    (DAILY, "developer"): {
        **DAILY_UTC,
        (d(11, 1), A): (4, 2, 1, 1, 0),  # + a07
        (d(10, 28), B): (5, 2, 1, 2, 0),  # + b05
        (d(10, 30), L): (4, 1, 2, 1, 0),  # + c03
    },
    (DAILY, "everything"): {
        **DAILY_UTC,
        (d(11, 1), A): (6, 4, 1, 1, 1),  # a06..a11
        (d(10, 28), B): (6, 3, 1, 2, 0),  # b01..b06
        (d(10, 30), L): (4, 1, 2, 1, 0),
    },
    (DAILY, "new-york"): DAILY_NEW_YORK,
    (DAILY, "new-york-active"): {
        **DAILY_NEW_YORK,
        (d(11, 1), A): (3, 3, 0, 0, 1),  # + a11 06:00 EST
    },
    (DAILY, "kolkata"): {
        (d(10, 26), A): (3, 2, 1, 0, 0),  # a01 05:20, a02 05:40, a03 23:50
        (d(10, 27), A): (1, 0, 0, 1, 0),  # a04 00:10
        (d(11, 1), A): (4, 3, 0, 1, 0),  # a05 05:00, a06, a09, a10
        (d(10, 28), B): (3, 1, 1, 1, 0),  # b01 b02 b03
        (d(10, 29), B): (2, 1, 0, 1, 0),  # b06 00:30, b07
        (d(10, 30), L): (2, 1, 1, 0, 0),  # c01 c02
        (d(10, 31), L): (1, 0, 1, 0, 0),  # c05 03:30
        (d(11, 1), L): (1, 1, 0, 0, 0),  # c04
    },
    (WEEKLY, "default"): WEEKLY_UTC,
    (WEEKLY, "active"): {**WEEKLY_UTC, (d(10, 26), A): (8, 5, 1, 2, 1)},  # + a11
    (WEEKLY, "new-york"): {
        **WEEKLY_UTC,
        (d(10, 19), A): (2, 1, 1, 0, 0),  # a01 a02 on Sunday 10-25 local
        (d(10, 26), A): (6, 4, 0, 2, 0),
    },
    (WEEKLY, "kolkata"): {
        **without(WEEKLY_UTC, (d(10, 19), A)),
        (d(10, 26), A): (8, 5, 1, 2, 0),  # a01 is Monday 10-26 local
    },
    (MONTHLY, "default"): MONTHLY_UTC,
    (MONTHLY, "active"): {**MONTHLY_UTC, (d(11, 1), A): (4, 3, 0, 1, 1)},  # + a11
    (MONTHLY, "new-york"): {
        **MONTHLY_UTC,
        (d(10, 1), A): (6, 3, 1, 2, 0),  # a01..a06
        (d(11, 1), A): (2, 2, 0, 0, 0),  # a09 a10
    },
    (MONTHLY, "kolkata"): {
        **MONTHLY_UTC,
        (d(10, 1), A): (4, 2, 1, 1, 0),  # a01..a04
        (d(11, 1), A): (4, 3, 0, 1, 0),  # a05 a06 a09 a10
        (d(10, 1), L): (3, 1, 2, 0, 0),  # c05 on 10-31 local
    },
    (BY_CHANNEL, "default"): BY_CHANNEL_UTC,
    (BY_CHANNEL, "everything"): {
        **BY_CHANNEL_UTC,
        (d(11, 1), A, "rtm"): (4, 2, 1, 1, 1),  # a06 a07 a10 a11
        (d(11, 1), A, "api"): (1, 1, 0, 0, 0),  # a08
        (d(10, 28), B, "rtm"): (4, 2, 0, 2, 0),  # b01 b02 b04 b05
        (d(10, 30), L, "rtm"): (3, 1, 1, 1, 0),  # c01 c03 c05
    },
    (BY_LANGUAGE, "default"): BY_LANGUAGE_UTC,
    (BY_LANGUAGE, "kolkata"): {
        (d(10, 26), A, "en"): (3, 2, 1, 0, 0),  # a01 a02 a03
        (d(10, 26), A, "es"): (1, 0, 1, 0, 0),  # a02
        (d(10, 27), A, "de"): (1, 0, 0, 1, 0),  # a04
        (d(11, 1), A, "fr"): (1, 1, 0, 0, 0),  # a05
        (d(11, 1), A, "en"): (2, 1, 0, 1, 0),  # a06 a09
        (d(11, 1), A, "unknown"): (1, 1, 0, 0, 0),  # a10
        (d(10, 28), B, "en"): (2, 1, 0, 1, 0),  # b01 b02
        (d(10, 28), B, "es"): (1, 0, 1, 0, 0),  # b03
        (d(10, 29), B, "en"): (2, 1, 0, 1, 0),  # b06 b07
        (d(10, 30), L, "en"): (2, 1, 1, 0, 0),  # c01 c02
        (d(10, 31), L, "en"): (1, 0, 1, 0, 0),  # c05
        (d(11, 1), L, "en"): (1, 1, 0, 0, 0),  # c04
    },
    (BY_TAG, "default"): BY_TAG_UTC,
    (BY_TAG, "developer"): {
        **BY_TAG_UTC,
        (d(10, 28), B, "user", "regular", "vip"): (3, 1, 0, 2),  # + b05
        (d(10, 28), B, "session", "intent", "Pay Bill"): (3, 1, 0, 2),  # + b05
        (d(10, 28), B, "session", "escalated", "true"): (1, 0, 0, 1),  # b05 only
    },
    (BY_TAG, "non-interactive"): {
        **BY_TAG_UTC,
        (d(10, 28), B, "session", "intent", "Pay Bill"): (3, 2, 0, 1),  # + b04
    },
    (BY_TAG, "active"): {**BY_TAG_UTC, (d(11, 1), A, "user", "regular", "returning"): (1, 1, 0, 0)},  # a11
    (BY_TAG, "tags-allow-listed"): {  # only the named tags, callId too (the user asked for it)
        (d(10, 28), B, "session", "resolved", "true"): (1, 1, 0, 0),
        (d(10, 28), B, "session", "resolved", "false"): (1, 0, 0, 1),
        (d(10, 28), B, "session", "callId", "c-0001"): (1, 1, 0, 0),
    },
    (BY_TAG, "one-value-a-tag"): {  # regular, intent and resolved show 2+ values in the data
        key: row for key, row in BY_TAG_UTC.items() if key[3] not in ("regular", "intent", "resolved")
    },
    (BY_TAG, "new-york"): {
        **without(BY_TAG_UTC, (d(10, 26), A, "session", "intent", "Track Order")),
        (d(10, 25), A, "session", "intent", "Track Order"): (1, 0, 1, 0),  # a02 20:10 EDT
    },
}

BEHAVIOUR_UTC = {
    # sessions, interactive, non-interactive, developer, interactive share, developer share,
    # messages/session, tasks/session, duration p50, p90, p95 (s)
    (d(10, 25), A): (1, 1, 0, 0, 1.0, 0.0, 4.0, 1.0, 120, 120, 120),
    # 60 200 400 s
    (d(10, 26), A): (3, 3, 0, 0, 1.0, 0.0, 6.0, 1.0, 200, 360, 380),
    (d(10, 31), A): (1, 1, 0, 0, 1.0, 0.0, 3.0, 1.0, 90, 90, 90),
    # a06 a07(dev) a08(non-int) a09 a10: 10 30 60 120 300 s; 19 messages, 6 tasks
    (d(11, 1), A): (5, 4, 1, 1, 0.8, 0.2, 3.8, 1.2, 60, 228, 264),
    # b01..b06: 5 40 50 80 100 200 s; 30 messages, 5 tasks
    (d(10, 28), B): (6, 5, 1, 1, 5 / 6, 1 / 6, 5.0, 5 / 6, 65, 150, 175),
    (d(10, 29), B): (1, 1, 0, 0, 1.0, 0.0, 4.0, 1.0, 70, 70, 70),
    # c01 c02 c03(dev) c05, all interactive for want of a type: 30 45 60 90 s
    (d(10, 30), L): (4, 4, 0, 1, 1.0, 0.25, 2.75, 0.5, 52.5, 81, 85.5),
    # c04, no status (closed), as the API showed it at NOW
    (d(11, 1), L): (1, 1, 0, 0, 1.0, 0.0, 3.0, 1.0, 1800, 1800, 1800),
}
# settings -> fct_session_behaviour_daily; only the status filter applies to this mart.
BEHAVIOUR_BY_SETTINGS = {
    "default": BEHAVIOUR_UTC,
    "non-interactive-and-developer": BEHAVIOUR_UTC,
    "active": {
        **BEHAVIOUR_UTC,
        # + a11: 3600 s so far, 5 messages, 1 task -> 10 30 60 120 300 3600 s
        (d(11, 1), A): (6, 5, 1, 1, 5 / 6, 1 / 6, 4.0, 7 / 6, 90, 1950, 2775),
    },
}

# bot, day (UTC), outcome, counted under the defaults
SESSIONS_UTC = {
    "a01": (A, d(10, 25), "self_service", True),
    "a02": (A, d(10, 26), "drop_off", True),
    "a03": (A, d(10, 26), "self_service", True),
    "a04": (A, d(10, 26), "agent", True),
    "a05": (A, d(10, 31), "self_service", True),
    "a06": (A, d(11, 1), "agent", True),
    "a07": (A, d(11, 1), "drop_off", False),
    "a08": (A, d(11, 1), "self_service", False),
    "a09": (A, d(11, 1), "self_service", True),
    "a10": (A, d(11, 1), "self_service", True),
    "a11": (A, d(11, 1), "self_service", False),
    "b01": (B, d(10, 28), "self_service", True),
    "b02": (B, d(10, 28), "agent", True),
    "b03": (B, d(10, 28), "drop_off", True),
    "b04": (B, d(10, 28), "self_service", False),
    "b05": (B, d(10, 28), "agent", False),
    "b06": (B, d(10, 28), "self_service", True),
    "b07": (B, d(10, 29), "agent", True),
    "c01": (L, d(10, 30), "self_service", True),
    "c02": (L, d(10, 30), "drop_off", True),
    "c03": (L, d(10, 30), "agent", False),
    "c04": (L, d(11, 1), "self_service", True),
    "c05": (L, d(10, 30), "drop_off", True),
}


# the loaded rows the expectations rest on -------------------------------------------------


def test_loaded_rows_have_the_shapes_the_expectations_assume(hand: Loaded) -> None:
    rows = hand.loader.sessions()
    assert len(rows) == len(SESSIONS_9X) + len(SESSIONS_LEGACY)
    open_row = rows[sid("a11")]
    assert (open_row[7], open_row[9], open_row[10], open_row[11]) == ("selfService", "active", 5, 1)
    assert (open_row[5] - open_row[4]).total_seconds() == 3600
    assert rows[sid("b07")][8] is None, "isDeveloper null is loaded as NULL"
    legacy_containment = {"c01": "selfService", "c02": "dropOff", "c03": "agent", "c04": "selfService"}
    for name, containment in legacy_containment.items():
        legacy = rows[sid(name)]
        assert (legacy[6], legacy[7], legacy[9]) == (None, containment, None), name
    assert (rows[sid("c04")][5] - rows[sid("c04")][4]).total_seconds() == 1800


def test_model_settings_contract() -> None:
    settings = ModelSettings()
    assert (
        settings.reporting_time_zone,
        settings.include_active,
        settings.include_non_interactive,
        settings.include_developer,
    ) == ("UTC", False, False, False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.include_active = True  # type: ignore[misc]


# the containment marts ---------------------------------------------------------------------


def test_daily_defaults_with_rates(hand: Loaded) -> None:
    """Built without settings, the daily mart counts by the defaults; its rates, by hand."""
    loader = hand.build(None)
    check_containment(loader, DAILY, DAILY_UTC, "UTC")
    rates = read(loader, DAILY, RATES)
    assert {k: tuple(float(v) for v in r) for k, r in rates.items()} == approx_rows(DAILY_UTC_RATES)


# By scenario, then mart: the tests of one scenario share one build of the models.
CONTAINMENT_CASES = sorted(CONTAINMENT, key=lambda case: (case[1], case[0]))


@pytest.mark.parametrize(
    ("mart", "scenario"),
    CONTAINMENT_CASES,
    ids=[f"{mart.removeprefix('fct_containment_')}-{scenario}" for mart, scenario in CONTAINMENT_CASES],
)
def test_containment_by_hand(hand: Loaded, mart: str, scenario: str) -> None:
    settings = SETTINGS[scenario]
    check_containment(hand.build(settings), mart, CONTAINMENT[(mart, scenario)], settings.reporting_time_zone)


# session behaviour -------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", list(BEHAVIOUR_BY_SETTINGS))
def test_behaviour_by_hand(hand: Loaded, scenario: str) -> None:
    loader = hand.build(SETTINGS[scenario])
    assert behaviour(loader) == approx_rows(BEHAVIOUR_BY_SETTINGS[scenario])


def test_behaviour_kolkata(hand: Loaded) -> None:
    got = behaviour(hand.build(SETTINGS["kolkata"]))
    assert {key: row[0] for key, row in got.items()} == {
        (d(10, 26), A): 3,  # a01 a02 a03
        (d(10, 27), A): 1,  # a04
        (d(11, 1), A): 6,  # a05..a10
        (d(10, 28), B): 5,  # b01..b05
        (d(10, 29), B): 2,  # b06 b07
        (d(10, 30), L): 3,  # c01 c02 c03
        (d(10, 31), L): 1,  # c05
        (d(11, 1), L): 1,  # c04
    }
    # a01 a02 a03: 120 60 200 s, 12 messages, 3 tasks
    assert got[(d(10, 26), A)] == pytest.approx((3, 3, 0, 0, 1.0, 0.0, 4.0, 1.0, 120, 184, 192))
    assert got[(d(10, 27), A)] == pytest.approx((1, 1, 0, 0, 1.0, 0.0, 10.0, 1.0, 400, 400, 400))


# fct_sessions ------------------------------------------------------------------------------


def fct_sessions(loader: Loader) -> dict[str, tuple]:
    """fct_sessions by session id: bot, day, outcome, counted."""
    rows = read(loader, "fct_sessions", ["bot_id", "day", "outcome", "is_counted"])
    return {key[0]: (row[0], row[1], row[2], bool(row[3])) for key, row in rows.items()}


def test_fct_sessions(hand: Loaded) -> None:
    got = fct_sessions(hand.build(SETTINGS["default"]))
    assert got == {sid(name): row for name, row in SESSIONS_UTC.items()}
    got = fct_sessions(hand.build(SETTINGS["kolkata-active"]))
    assert {name: got[sid(name)][1:] for name in ("a01", "a04", "a05", "a11", "b06", "c05")} == {
        "a01": (d(10, 26), "self_service", True),
        "a04": (d(10, 27), "agent", True),
        "a05": (d(11, 1), "self_service", True),
        "a11": (d(11, 1), "self_service", True),
        "b06": (d(10, 29), "self_service", True),
        "c05": (d(10, 31), "drop_off", True),
    }
    assert all(row[3] for row in fct_sessions(hand.build(ALL_IN)).values())


def test_personal_data_stays_out_of_fct_sessions_unless_asked_for(hand: Loaded) -> None:
    query = "SELECT COUNT(user_id), COUNT(call_id) FROM fct_sessions"
    assert hand.build(SETTINGS["default"]).query(query) == [(0, 0)]
    personal = hand.build(ModelSettings(include_personal_data=True))
    assert personal.query(f"{query} WHERE user_id LIKE 'u-%'") == [(len(SESSIONS_UTC), 1)], "b01's callId"


# keys and accepted values ------------------------------------------------------------------


def assert_marts_are_sound(loader: Loader) -> None:
    """Unique, non-null keys; accepted values; counts that add up; periods that start right."""
    for table in MARTS:
        columns = ", ".join(KEYS[table])
        repeated = loader.query(
            f"SELECT {columns}, COUNT(*) FROM {table} GROUP BY {columns} HAVING COUNT(*) > 1"
        )
        assert repeated == [], f"{table}: repeated keys"
        nulls = " OR ".join(f"{key} IS NULL" for key in KEYS[table])
        assert loader.query(f"SELECT COUNT(*) FROM {table} WHERE {nulls}") == [(0,)], f"{table}: null key"
        assert loader.query(f"SELECT COUNT(*) FROM {table}")[0][0] > 0, f"{table} is empty"
    outcomes = {row[0] for row in loader.query("SELECT DISTINCT outcome FROM fct_sessions")}
    assert outcomes <= OUTCOMES
    scopes = {row[0] for row in loader.query(f"SELECT DISTINCT tag_scope FROM {BY_TAG}")}
    assert scopes <= {"session", "user"}
    for table in [t for t in MARTS if t.startswith("fct_containment")]:
        rows = loader.query(f"SELECT {', '.join(COUNTS)} FROM {table}")
        for sessions, self_service, drop_off, agent in rows:
            assert sessions > 0 and self_service + drop_off + agent == sessions, table
    for (week_start,) in loader.query(f"SELECT DISTINCT week_start FROM {WEEKLY}"):
        assert week_start.isoweekday() == 1, week_start
    for (month_start,) in loader.query(f"SELECT DISTINCT month_start FROM {MONTHLY}"):
        assert month_start.day == 1, month_start


@pytest.mark.parametrize("scenario", ["default", "everything", "kolkata-active"])
def test_marts_keys_and_values_hand(hand: Loaded, scenario: str) -> None:
    assert_marts_are_sound(hand.build(SETTINGS[scenario]))


# a larger generated data set against an independent computation ---------------------------


def period_start(day: date, period: str) -> date:
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day


def in_scope(view: dict[str, Any], settings: ModelSettings) -> bool:
    status = view.get("sessionStatus") or "closed"
    kind = view.get("sessionType") or "interactive"
    status_ok = status == "closed" or (settings.include_active and status == "active")
    kind_ok = kind == "interactive" or (settings.include_non_interactive and kind == "non-interactive")
    return status_ok and kind_ok and (settings.include_developer or not view.get("isDeveloper"))


# Where `expected_counts` counts each containment type: (sessions, self_service, drop_off, agent).
OUTCOME_INDEX = {"selfService": 1, "dropOff": 2, "agent": 3}


def expected_counts(
    views: list[dict[str, Any]], settings: ModelSettings, period: str = "day", by: str | None = None
) -> dict[tuple, tuple[int, ...]]:
    """(sessions, self_service, drop_off, agent, active_sessions) per period and bot (and `by`)."""
    zone = ZoneInfo(settings.reporting_time_zone)
    found: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for view in views:
        if not in_scope(view, settings):
            continue
        start = period_start(api_time(view["start_time"]).astimezone(zone).date(), period)
        if by == "channel":
            keys = [(start, view["botId"], view["channel"])]
        elif by == "language":
            keys = [(start, view["botId"], lang) for lang in sorted(set(view["session_lang"]) or {"unknown"})]
        else:
            keys = [(start, view["botId"])]
        for key in keys:
            row = found[key]
            row[0] += 1
            row[OUTCOME_INDEX[view["containmentType"]]] += 1
            row[4] += view.get("sessionStatus") == "active"
    return {key: tuple(row) for key, row in found.items()}


def expected_tags(views: list[dict[str, Any]], settings: ModelSettings) -> dict[tuple, tuple[int, ...]]:
    """Tag counts per UTC day, for tags whose values are not JSON objects, of the tags the README
    says are sliced: the allow list, else few distinct values and nothing that looks personal."""
    sliced = sliced_tags(views, settings)
    found: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for view in views:
        if not in_scope(view, settings):
            continue
        day = api_time(view["start_time"]).date()
        tags = {
            (scope, tag["name"], tag_text(tag["value"]))
            for scope, key in (("user", "userTags"), ("session", "sessionTags"))
            for tag in view["tags"][key]
            if not isinstance(tag["value"], dict)
        }
        for scope, name, value in tags:
            if (scope, name) not in sliced:
                continue
            row = found[(day, view["botId"], scope, name, value)]
            row[0] += 1
            row[OUTCOME_INDEX[view["containmentType"]]] += 1
    return {key: tuple(row) for key, row in found.items()}


def sliced_tags(views: list[dict[str, Any]], settings: ModelSettings) -> set[tuple[str, str]]:
    """(scope, name) of the tags the tag mart slices by, over every loaded session: the allow list,
    else few values, a name that does not look personal and no value that does (the rule of
    `kore_sessions.warehouse.personal_data`, which tests/test_personal_data_rule.py runs in each engine)."""
    values: dict[tuple[str, str], set[str | None]] = defaultdict(set)
    for view in views:
        for scope, key in (("user", "userTags"), ("session", "sessionTags")):
            for tag in view["tags"][key]:
                values[(scope, tag["name"])].add(tag_text(tag["value"]))
    if settings.tag_names:
        return {tag for tag in values if tag[1] in settings.tag_names}
    return {
        (scope, name)
        for (scope, name), seen in values.items()
        if len(seen - {None}) <= settings.tag_max_values
        and not looks_personal_name(name)
        and not any(looks_personal_value(value) for value in seen)
    }


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def expected_behaviour(views: list[dict[str, Any]]) -> dict[tuple, tuple]:
    """The behaviour mart for closed sessions, in UTC."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for view in views:
        if view["sessionStatus"] == "closed":
            groups[(api_time(view["start_time"]).date(), view["botId"])].append(view)
    found = {}
    for key, group in groups.items():
        count = len(group)
        interactive = sum(v["sessionType"] == "interactive" for v in group)
        developer = sum(bool(v["isDeveloper"]) for v in group)
        durations = [(api_time(v["end_time"]) - api_time(v["start_time"])).total_seconds() for v in group]
        found[key] = (
            count,
            interactive,
            count - interactive,
            developer,
            interactive / count,
            developer / count,
            sum(v["noOfMessagesExchanged"] for v in group) / count,
            sum(v["noOfTasksExecuted"] for v in group) / count,
            percentile(durations, 0.5),
            percentile(durations, 0.9),
            percentile(durations, 0.95),
        )
    return found


# The marts the generated data set is checked in, with the period and slice `expected_counts`
# counts them by.
GENERATED_MARTS = (
    (DAILY, "day", None),
    (WEEKLY, "week", None),
    (MONTHLY, "month", None),
    (BY_CHANNEL, "day", "channel"),
    (BY_LANGUAGE, "day", "language"),
)
# The settings the generated data set is built with, by the name the test ids use.
GENERATED_SETTINGS = {
    "default": ModelSettings(),
    "kolkata": ModelSettings(reporting_time_zone=IST),
    "everything-kolkata": dataclasses.replace(ALL_IN, reporting_time_zone=IST),
    "everything-new-york": dataclasses.replace(ALL_IN, reporting_time_zone=NY),
}


def test_generated_sessions_have_what_the_checks_need(generated: Loaded) -> None:
    statuses = {v["sessionStatus"] for v in generated.views}
    assert statuses == {"active", "closed"}, "the data set has open sessions"
    views = generated.views
    assert any(v["isDeveloper"] for v in views) and any(v["sessionType"] != "interactive" for v in views)


@pytest.mark.parametrize("scenario", list(GENERATED_SETTINGS))
def test_generated_sessions_match_an_independent_computation(generated: Loaded, scenario: str) -> None:
    settings = GENERATED_SETTINGS[scenario]
    loader = generated.build(settings)
    for mart, period, by in GENERATED_MARTS:
        expected = expected_counts(generated.views, settings, period, by)
        check_containment(loader, mart, expected, settings.reporting_time_zone)
    assert_marts_are_sound(loader)
    if settings.reporting_time_zone == "UTC":
        check_utc_only_marts(loader, generated.views, settings)


def check_utc_only_marts(loader: Loader, views: list[dict[str, Any]], settings: ModelSettings) -> None:
    """The tag and behaviour marts and fct_sessions, which the Python side counts in UTC only."""
    got_tags = read(loader, BY_TAG, COUNTS)
    assert {
        key: tuple(int(v) for v in row)
        for key, row in got_tags.items()
        if key[3] not in ("profile", "cart")  # JSON objects: text form not specified
    } == expected_tags(views, settings)
    assert behaviour(loader) == approx_rows(expected_behaviour(views))
    counted = {row[0] for row in loader.query("SELECT session_id FROM fct_sessions WHERE is_counted")}
    assert counted == {v["sessionId"] for v in views if in_scope(v, settings)}
    assert loader.query("SELECT COUNT(*) FROM fct_sessions")[0][0] == len(views)
