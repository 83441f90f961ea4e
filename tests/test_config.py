"""Unit tests of settings validation: one clear error per bad setting."""

from datetime import UTC, datetime
from typing import Any

import pytest
from kore_sessions.source.api.rules import ALL_BOTS_KEY
from kore_sessions.source.config import ConfigError, RunConfig, parse_bot_ids
from kore_sessions.source.options import KoreSessionsOptions

pytestmark = pytest.mark.unit

GOOD: dict[str, Any] = {
    "host": "https://platform.kore.ai/",
    "bot_ids": "st-a, st-b",
    "all_bots": False,
    "start_date": "2026-01-01",
    "end_date": None,
    "page_size": 100,
    "window_hours": 144,
    "lookback_minutes": 60,
    "requests_per_minute": 60,
    "requests_per_hour": 1800,
}


def build_run_config(**settings: Any) -> RunConfig:
    """The run configuration of these option values, on a fixed clock."""
    return KoreSessionsOptions(**settings).run_config(clock=lambda: datetime(2026, 2, 1, tzinfo=UTC))


def test_good_settings_resolve() -> None:
    config = build_run_config(**GOOD)
    assert config.host == "https://platform.kore.ai"
    assert config.bot_keys == ("st-a", "st-b")
    assert not config.bounded
    assert build_run_config(**{**GOOD, "bot_ids": None, "all_bots": True}).bot_keys == (ALL_BOTS_KEY,)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('["a", "b"]', ["a", "b"]),
        ("a", ["a"]),
        ("a,b,a", ["a", "b", "a"]),
        (["x"], ["x"]),
        (None, []),
    ],
)
def test_bot_ids_forms(value: Any, expected: list[str]) -> None:
    assert parse_bot_ids(value) == expected


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"host": "platform.kore.ai"}, "not a URL"),
        ({"host": "ftp://x"}, "not a URL"),
        ({"bot_ids": None}, "no bot"),
        ({"all_bots": True}, "not both"),
        ({"start_date": "01/02/2026"}, "start_date"),
        ({"end_date": "2025-12-01"}, "not after start_date"),
        ({"start_date": None, "end_date": "2026-01-02"}, "needs a start_date"),
        ({"page_size": 0}, "page_size"),
        ({"page_size": 100_001}, "page_size"),
        ({"window_hours": 168}, "under 7 days"),
        ({"window_hours": 0}, "positive"),
        ({"requests_per_minute": 0}, "requests_per_minute"),
        ({"lookback_minutes": -1}, "lookback_minutes"),
        ({"windows_per_package": 0}, "windows_per_package must be at least 1"),
        ({"appended_windows_per_package": 0}, "appended_windows_per_package must be at least 1"),
    ],
)
def test_bad_settings_fail_with_one_line(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        build_run_config(**{**GOOD, **change})
    assert "\n" not in str(caught.value)
