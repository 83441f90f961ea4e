"""The benchmark's backfill part runs end to end at its smallest size, and its four loads (the
pipeline, the floor, dlt alone appending and merging) each hold exactly the sandbox's visible
sessions."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kore_sessions.cli.parser import setup_logging
from kore_sessions.sandbox import GeneratedSession, generate_sessions, make_bot_ids
from kore_sessions.warehouse import build_memory

from bench import harness
from bench.command_load import model_rebuilds

REPO_ROOT = Path(__file__).resolve().parents[1]


def run_module(args: list[str], tmp_path: Path) -> str:
    """`python -m ARGS` from the repository root with a bare environment (its HOME and TMPDIR in
    `tmp_path`); fails the test on a non-zero exit. Returns what it printed."""
    result = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TMPDIR": str(tmp_path)},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def test_quick_backfill_part_loads_every_session_four_ways(tmp_path: Path) -> None:
    output = run_module(["bench.run_bench", "--quick", "--part", "a"], tmp_path)
    table = dict(re.findall(r"^a\s+(.+?)\s{2,}(.+)$", output, re.MULTILINE))
    for load in ("pipeline", "floor", "dlt alone (append)", "dlt alone (merge)"):
        assert table[f"{load} rows check"] == "ok"
    assert re.fullmatch(r"x\d+\.\d\d \(<= x1\.4: (yes|NO)\)", table["time pipeline/dlt alone (append)"])
    assert re.fullmatch(r"x\d+\.\d\d", table["time pipeline/dlt alone (merge)"])
    for load in ("pipeline", "floor", "dlt alone (append)", "dlt alone (merge)"):
        cpu = re.fullmatch(r"(\d+\.\d) s \((\d+\.\d\d) cores\)", table[f"{load} CPU"])
        assert cpu is not None and float(cpu[1]) > 0, table[f"{load} CPU"]
    (bound,) = (value for name, value in table.items() if name.startswith("least time on "))
    with_build = table["least time with the pages' build / dlt alone (append)"]
    assert re.fullmatch(r"x\d+\.\d\d", bound) and re.fullmatch(r"x\d+\.\d\d", with_build)
    assert float(with_build[1:]) > float(bound[1:])  # the columnar build costs more than flat rows
    assert re.search(r"CPU s; 0 pages not columnar\)", output)  # each page timed as the pipeline builds it


def test_quick_messages_backfill_asks_the_fewest_requests(tmp_path: Path) -> None:
    """The messages backfill (`bench.messages_backfill`) at its smallest size: every load holds
    the sandbox's sessions and messages, and each asks getMessagesV2 exactly as often as the
    plan's windows and channels need (a request more or less fails here)."""
    output = run_module(["bench.messages_backfill", "--quick"], tmp_path)
    table = dict(re.findall(r"^m\s+(.+?)\s{2,}(.+)$", output, re.MULTILINE))
    for load in ("small pipeline", "pipeline", "floor"):
        assert re.fullmatch(r"\d+\.\d s \(\d+\.\d\d cores\)", table[f"{load} CPU"]), table[f"{load} CPU"]
        assert table[f"{load} sessions check"] == "ok"
        assert table[f"{load} messages check"] == "ok"
        made_and_minimum = table[f"{load} message requests / minimum"]
        requests = re.fullmatch(r"(\d+) / (\d+) \(equal: yes\)", made_and_minimum)
        assert requests is not None and requests[1] == requests[2], made_and_minimum
    assert re.fullmatch(r"x\d+\.\d\d", table["time pipeline/floor"])
    assert re.fullmatch(r"x\d+\.\d\d \(within 10%: (yes|NO)\)", table["peak RSS full/small pipeline"])


def test_fast_server_serves_the_sandboxs_message_pages() -> None:
    """The bench's messages route (pre-encoded pages) answers plain getMessagesV2 requests with
    what the sandbox itself answers: same total, order, moreAvailable and messages."""
    import orjson
    from kore_sessions.sandbox.app import SandboxApi
    from kore_sessions.sandbox.messages import Request
    from kore_sessions.sandbox.routes import match_route
    from kore_sessions.source.api.timestamps import format_api_timestamp

    from bench.fast_server import Encoded, FastSandboxServer

    data = harness.make_data(600, 2, 8, seed=3)
    app = harness.sandbox_app()
    server = FastSandboxServer(data.sessions, apps=[app], now=harness.NOW, message_page_cap=150)
    index = server.encode_messages()
    sandbox = SandboxApi(server, [app])
    spans = [(data.start, data.start + timedelta(days=6)), (harness.NOW - timedelta(days=3), harness.NOW)]
    for bot in data.bots:
        for channel in [*index.channels(bot), "line"]:
            for (date_from, date_to), skip in [(span, skip) for span in spans for skip in (0, 150, 290, 900)]:
                body = {"dateFrom": format_api_timestamp(date_from), "dateTo": format_api_timestamp(date_to)}
                body |= {"skip": skip, "limit": 10_000, "channelType": channel}
                path = f"/api/public/bot/{bot}/getMessagesV2"
                request = Request("POST", path, {}, orjson.dumps(body), None, harness.NOW)
                route = match_route(path)
                assert route is not None
                fast = server.api._answer(route, route.bots, request)
                slow = sandbox._answer(route, route.bots, request)
                assert isinstance(fast, Encoded)
                assert orjson.loads(fast.data) == json.loads(json.dumps(slow))


def test_the_offload_probe_builds_the_same_tables_in_worker_processes(tmp_path: Path) -> None:
    """`bench.offload_probe` at a small size: the pages built in worker processes equal those
    built here (it exits 1 otherwise), and it prints both CPU figures and their ratio."""
    output = run_module(["bench.offload_probe", "--sessions", "3000", "--workers", "1"], tmp_path)
    assert re.search(r"^3,000 sessions in 3 pages of up to 1,000", output, re.MULTILINE)
    assert re.search(r"^1 worker processes: \d+\.\d{3} CPU s of this process", output, re.MULTILINE)
    assert re.search(r"^this process's CPU offloaded / here: x\d+\.\d\d$", output, re.MULTILINE)


def test_quick_command_part_loads_every_session_with_the_command(tmp_path: Path) -> None:
    output = run_module(["bench.run_bench", "--quick", "--part", "l"], tmp_path)
    table = dict(re.findall(r"^l\s+(.+?)\s{2,}(.+)$", output, re.MULTILINE))
    sizes = ("8,000", "20,000", "40,000")
    assert [table[f"command {size} rows check"] for size in sizes] == ["ok", "ok", "ok"]
    assert [table[f"command {size} model builds run again"] for size in sizes] == ["0", "0", "0"]
    assert table["check's floor rows check"] == "ok"
    verdict = table["time command/check's floor"]
    ratio = re.fullmatch(r"x(\d+\.\d\d) \(<= x2\.5: (yes|NO)\); pairs x(\d+\.\d\d), x(\d+\.\d\d)", verdict)
    assert ratio, verdict
    median, within, *pairs = ratio.groups()
    assert float(pairs[0]) <= float(pairs[1])  # two pairs in turn, their ratios sorted
    assert abs(float(median) - (float(pairs[0]) + float(pairs[1])) / 2) <= 0.011  # each rounded
    assert within == ("yes" if float(median) <= 2.5 else "NO")
    assert re.fullmatch(r"\d+\.\d s \(median of 2: \d+\.\d, \d+\.\d\)", table["command 20,000 time"])
    assert re.fullmatch(r"\d+ MB \(highest of 2\)", table["command 20,000 peak RSS"])
    checked = (r"^   command 20,000: \d+ rows.*: ok$", r"^   check's floor: \d+ rows.*: ok$")
    assert [len(re.findall(line, output, re.MULTILINE)) for line in checked] == [2, 2]
    for requests in table["command 20,000 requests / minimum"].split("; "):  # each run's, unless all alike
        made, minimum = re.match(r"(\d+) / (\d+)", requests).groups()
        assert int(made) == int(minimum) > 0
    assert table["peak RSS at 40,000 <= 400 MB"] == "yes"
    assert re.fullmatch(r"x\d+\.\d\d \(<= x1\.1: (yes|NO)\)", table["peak RSS 40,000 / 8,000"])


class _SilentClient:
    """A SQL client that runs nothing (a build's limit set and reset)."""

    def execute_sql(self, sql: str, *args: object) -> None:
        """Take the statement and do nothing."""


@pytest.mark.unit
def test_part_l_counts_the_model_builds_the_command_ran_again(capsys: pytest.CaptureFixture[str]) -> None:
    """Each line a build that ran out of DuckDB's memory prints under `--quiet`, as the command's
    logging prints it, counts once; the build's other lines do not."""
    logger = logging.getLogger("kore_sessions")
    saved = (logger.handlers[:], logger.level, logger.propagate, logger.disabled)
    try:
        setup_logging(quiet=True)
        memory = build_memory.BuildMemory(_SilentClient(), limit_mb=96, ceiling_mb=1000.0)  # type: ignore[arg-type]
        assert memory.raise_limit() and memory.raise_limit()
        printed = capsys.readouterr().err
    finally:
        logger.handlers[:], logger.level, logger.propagate, logger.disabled = saved
    assert printed.count("[kore-sessions] models: DuckDB ran out of memory") == 2
    built = "[kore-sessions] models: 18 built (5 views, 13 tables) in 1.1 s, duckdb dialect"
    assert model_rebuilds(printed + built + "\n") == 2
    assert model_rebuilds(built) == 0


def test_the_command_peak_is_the_commands_own_not_its_parents(tmp_path: Path) -> None:
    """A launcher forked from a parent that holds 300 MB reports a small command's peak as small,
    and a command that touches 200 MB as at least that."""
    held = bytearray(300 * 2**20)  # resident: bytearray zero-fills what it allocates
    peaks = []
    for size_mb in (0, 200):
        result = tmp_path / f"peak-{size_mb}.json"
        command = [sys.executable, "-c", f"b = bytearray({size_mb} * 2**20)"]
        launcher = [sys.executable, "-m", "bench.command_peak", str(result), *command]
        subprocess.run(launcher, cwd=REPO_ROOT, check=True)
        figures = json.loads(result.read_text())
        assert figures["returncode"] == 0
        peaks.append(figures["peak_rss_kb"] / 1024)
    assert len(held) == 300 * 2**20
    assert peaks[0] < 100 and peaks[1] >= 200, peaks


def test_the_sandbox_clock_is_the_last_sunday_noon_whole_weeks_from_its_anchor() -> None:
    """The bench's clock is the last Sunday noon (UTC) up to the machine's: the same all week,
    whole weeks from its anchor, never a week or more behind."""
    anchor = harness.CLOCK_ANCHOR
    assert (anchor.weekday(), anchor.hour, anchor.minute) == (6, 12, 0)
    shifts = [timedelta(days=days) for days in (0, 3, 6.999, 7, 400.2, -0.001)]
    for moment in [anchor + shift for shift in shifts]:
        now = harness.sandbox_now(moment)
        assert now <= moment < now + timedelta(weeks=1)
        assert (now - anchor) % timedelta(weeks=1) == timedelta(0)
    assert harness.sandbox_now(anchor + timedelta(days=6)) == anchor
    assert datetime.now(UTC) >= harness.NOW


def test_a_data_set_moved_by_whole_weeks_is_the_same_sessions() -> None:
    """What the clock relies on: the generator's sessions up to two Sunday noons five weeks apart
    are the same, moved by five weeks (ids aside: like ObjectIds, they follow their start); up to
    a moment three days later they are not."""
    bots = make_bot_ids(2, seed=7)

    def moved(end: datetime) -> list[tuple[object, ...]]:
        sessions = generate_sessions(bots, end - timedelta(days=10), end, 30, seed=7)
        return [_relative(session, end) for session in sessions]

    anchor = harness.CLOCK_ANCHOR
    assert moved(anchor) == moved(anchor + timedelta(weeks=5))
    assert moved(anchor) != moved(anchor + timedelta(days=3))


def _relative(session: GeneratedSession, end: datetime) -> tuple[object, ...]:
    """A session with its times as offsets from `end` and without its id."""
    return (
        session.bot_id, session.start - end, session.end - end, session.visible_at - end, session.channel,
        session.containment, session.session_lang, session.user_tags, session.session_tags, session.messages,
    )  # fmt: skip
