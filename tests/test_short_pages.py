"""Pages cut short: the gap is asked for, a window short of its total is read again, and one that
stays short fails the run naming it; never a silent loss."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from math import ceil
from pathlib import Path

import pytest
from kore_sessions.sandbox import SandboxServer
from kore_sessions.source.sessions import extract

from .cli_helpers import PIPELINE_FOLDER, cli_env, expected, kore, loaded, normalized
from .conftest import BOTS, HISTORY_START, NOW, Loader, api_time


def cursors(cwd: Path) -> dict[str, str | None]:
    """Each bot's cursor in the command's pipeline state."""
    state = json.loads((cwd / PIPELINE_FOLDER / "state.json").read_text())
    bots = state["sources"]["kore_sessions"]["resources"]["sessions"]["bots"]
    return {bot: bots[bot].get("cursor") for bot in bots}


@pytest.mark.parametrize("rate", [0.3, 1.0], ids=["sometimes", "always"])
def test_pages_cut_short_are_filled_and_nothing_is_lost(
    live_server: SandboxServer, tmp_path: Path, rate: float
) -> None:
    """A server that leaves the last third out of some (or every) page, while its total and
    `moreAvailable` say the page was whole: the load asks for each gap and ends with every
    session, in one reading of each window."""
    live_server.set_fault_rates({"short": rate}, seed=3)
    unlimited = ["--requests-per-minute", "10000", "--requests-per-hour", "100000"]
    result = kore(["load", "--no-models", *unlimited], cli_env(live_server, tmp_path), tmp_path)
    assert result.returncode == 0, result.stderr
    assert any(record.fault == "short" for record in live_server.requests)
    live_server.clear_faults()
    assert normalized(loaded(tmp_path)) == expected(live_server)
    assert "reading it again" not in result.stderr, "the gaps were filled without reading windows again"
    pages = ceil(len(live_server.visible_sessions()) / 16) + 12  # at a cap learned from a cut page
    assert len(live_server.requests) <= 3 * pages, "a gap costs a request or two, not a window"


def test_a_window_that_stays_short_of_its_total_fails_and_keeps_its_cursor(
    live_server: SandboxServer, tmp_path: Path
) -> None:
    """A session the listings count in their total but never give: the window is read three
    times, then the run fails in one line naming the bot, the window and the counts, after
    loading all else it read (the other bot's sessions too); that bot's cursor stays where it
    was, so once the server gives the session, the next run loads it."""
    env = cli_env(live_server, tmp_path)
    assert kore(["load", "--no-models"], env, tmp_path).returncode == 0
    before = cursors(tmp_path)
    newest = max(live_server.visible_sessions(BOTS[0]), key=lambda view: api_time(view["start_time"]))
    hidden = newest["sessionId"]  # in the next run's window (from the cursor less the lookback)
    live_server.hide_sessions(from_listing=[hidden], in_totals=True)
    failed = kore(["load", "--no-models", "--quiet"], env, tmp_path)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert BOTS[0] in lines[0] and "window" in lines[0] and "3 readings" in lines[0], lines[0]
    assert " of the " in lines[0] and "sessions its total counts" in lines[0]
    after = cursors(tmp_path)
    assert after[BOTS[0]] == before[BOTS[0]], "the cursor did not move past the short window"
    assert "everything else this run read was loaded" in lines[0]
    live_server.hide_sessions()
    again = kore(["load", "--no-models"], env, tmp_path)
    assert again.returncode == 0, again.stderr
    assert hidden in loaded(tmp_path)
    assert normalized(loaded(tmp_path)) == expected(live_server)


def test_a_short_window_of_one_bot_does_not_hold_the_other_bots_back(
    live_server: SandboxServer, tmp_path: Path
) -> None:
    """One bot's window stays short from the first backfill on: the run fails naming it, yet
    every session of the other bot is loaded and its cursor set; once the API gives the
    session, the next run completes the first bot."""
    newest = max(live_server.visible_sessions(BOTS[0]), key=lambda view: api_time(view["start_time"]))
    live_server.hide_sessions(from_listing=[newest["sessionId"]], in_totals=True)
    env = cli_env(live_server, tmp_path, SOURCES__KORE_SESSIONS__REQUESTS_PER_MINUTE="10000")
    failed = kore(["load", "--no-models", "--quiet"], env, tmp_path)
    assert failed.returncode == 1 and BOTS[0] in failed.stderr, failed.stderr
    other = {view["sessionId"] for view in live_server.visible_sessions(BOTS[1])}
    assert other <= set(loaded(tmp_path)), "the other bot was loaded"
    assert cursors(tmp_path)[BOTS[1]], "and its cursor moved"
    live_server.hide_sessions()
    assert kore(["load", "--no-models"], env, tmp_path).returncode == 0
    assert normalized(loaded(tmp_path)) == expected(live_server)


def test_a_merged_package_whose_first_window_stays_short_fails_and_records_no_range(
    loader: Loader, server: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bounded backfill merges, and its packages are cut to their sessions after each bot's
    first window. When that first window stays short of its total, the run fails naming it
    (it does not take the windows it cut as a next package, again and again), and the range
    is not recorded as loaded: `loaded_from` stays where the incremental run began."""
    monkeypatch.setattr(extract, "SESSIONS_PER_MERGED_PACKAGE", 2)  # every package cut to a window
    later = HISTORY_START + timedelta(days=8)
    loader.run(start_date=later.isoformat())
    loaded_from = {bot: state["loaded_from"] for bot, state in loader.state()["bots"].items()}
    first = min(server.visible_sessions(BOTS[0]), key=lambda view: api_time(view["start_time"]))
    server.hide_sessions(from_listing=[first["sessionId"]], in_totals=True)
    bounded = {"start_date": HISTORY_START.isoformat(), "end_date": NOW.isoformat()}
    worker = threading.Thread(target=loader.run, kwargs=bounded, daemon=True)
    worker.start()
    worker.join(timeout=120)
    assert not worker.is_alive(), "the run took the short window's package again and again"
    short = loader.run_record.short_windows
    assert len(short) == 1 and BOTS[0] in short[0], short  # what the CLI fails on, in one line
    after = {bot: state["loaded_from"] for bot, state in loader.state()["bots"].items()}
    assert after[BOTS[0]] == loaded_from[BOTS[0]], "the range was not loaded whole"
