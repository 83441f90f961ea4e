"""`audit`'s exit code means what it says: 0 only when something was checked and all of it
matched; nothing to check, a bot never loaded and a loader that stopped moving are not green."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from kore_sessions.sandbox import SandboxServer

from .cli_helpers import cli_env, expected, kore, loaded, normalized
from .conftest import BOTS, REAL_NOW, api_time, sandbox_at_real_now, sessions_up_to_now

# The sandbox's clock stands this far behind the command's when the loads run; then it moves to
# the real now while no load runs: a loader that has been stuck for two days.
STUCK_FOR = timedelta(days=2)


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    """The sandbox with six days of both bots, its clock at the real now."""
    with sandbox_at_real_now(sessions_up_to_now(days=6, per_day=80, seed=91), page_cap=50) as running:
        yield running


def one_line(result: object) -> str:
    """The single line a command wrote on stderr."""
    lines = result.stderr.strip().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1, lines
    return lines[0]


def test_a_mistyped_pipeline_name_or_the_default_one_beside_partitions_is_not_green(
    server: SandboxServer, tmp_path: Path
) -> None:
    """Partitions loaded the bots; `audit` of a pipeline name that has no state (a typo, or the
    default one) checks nothing: exit 3, one line naming the pipelines that do have state.
    `--all-pipelines` audits each partition for its own bots, and passes."""
    env = cli_env(server, tmp_path)
    for name, bot in (("part_a", BOTS[0]), ("part_b", BOTS[1])):
        loaded_ok = kore(["load", "--no-models", "--pipeline-name", name, "--bot", bot], env, tmp_path)
        assert loaded_ok.returncode == 0, loaded_ok.stderr
    for flags in (["--pipeline-name", "part_c"], []):
        result = kore(["audit", "--quiet", *flags], env, tmp_path)
        assert result.returncode == 3, result.stdout + result.stderr
        line = one_line(result)
        assert "nothing to audit" in line and "part_a, part_b" in line and "--all-pipelines" in line
    every = kore(["audit", "--all-pipelines", "--quiet"], env, tmp_path)
    assert every.returncode == 0, every.stdout + every.stderr
    assert "pipeline part_a:" in every.stdout and "pipeline part_b:" in every.stdout
    assert every.stdout.count(" 0 differ") == 2 and " 0 day x bot checked" not in every.stdout


def test_a_bot_never_loaded_counts_its_sessions_as_missing(server: SandboxServer, tmp_path: Path) -> None:
    """Both bots are configured, only the first was ever loaded: the second's settled sessions
    are missing (exit 3), not 'nothing due'; once it is loaded, the audit passes."""
    env = cli_env(server, tmp_path)
    assert kore(["load", "--no-models", "--bot", BOTS[0]], env, tmp_path).returncode == 0
    result = kore(["audit", "--days", "3", "--quiet"], env, tmp_path)
    assert result.returncode == 3, result.stdout + result.stderr
    assert f"bot {BOTS[1]}: never loaded" in result.stdout
    rows = [line.split() for line in result.stdout.splitlines() if BOTS[1] in line and line[:4].isdigit()]
    # Every session the API shows of the bot is missing (a day's settled part may hold none).
    assert rows and all(row[-2] == "0" and int(row[-1]) == int(row[-3]) for row in rows), result.stdout
    assert sum(int(row[-1]) for row in rows) > 0, result.stdout
    assert kore(["load", "--no-models"], env, tmp_path).returncode == 0
    again = kore(["audit", "--days", "3", "--quiet"], env, tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr


def test_a_loader_stuck_for_days_audits_red_and_the_repair_closes_it(
    server: SandboxServer, tmp_path: Path
) -> None:
    """The loads ran while the API stood two days back; then the API moved on to now and no load
    ran. The sessions it shows between the cursor and the grace period are missing: exit 3, with
    a note naming where the cursor stands; `--repair` loads them; the audit then passes, and the
    next load changes nothing."""
    server.set_now(REAL_NOW - STUCK_FOR)
    env = cli_env(server, tmp_path)
    assert kore(["load", "--no-models"], env, tmp_path).returncode == 0
    server.set_now(REAL_NOW)
    stuck = kore(["audit", "--days", "4", "--quiet"], env, tmp_path)
    assert stuck.returncode == 3, stuck.stdout + stuck.stderr
    assert "the cursor stands at" in stuck.stdout
    summary = stuck.stdout.strip().splitlines()[-1]
    assert " 0 differ" not in summary and "sessions missing" in summary
    repaired = kore(["audit", "--days", "4", "--repair", "--quiet"], env, tmp_path)
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    settled = REAL_NOW - timedelta(hours=3)
    held = loaded(tmp_path)
    missing = [
        view["sessionId"]
        for view in server.visible_sessions()
        if api_time(view["start_time"]) <= settled and view["sessionId"] not in held
    ]
    assert not missing, f"{len(missing)} settled sessions still missing after the repair"
    assert kore(["load", "--no-models"], env, tmp_path).returncode == 0
    assert normalized(loaded(tmp_path)) == expected(server)
    assert kore(["audit", "--days", "4", "--quiet"], env, tmp_path).returncode == 0
