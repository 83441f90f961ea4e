"""The partitions of `kore_sessions.orchestration.partitions` with Dagster NOT importable.

An Airflow DAG (or any other orchestrator) calls the same functions the Dagster job does, so
they must import and work without the `dagster` extra. Each test runs a fresh interpreter
whose first act is a meta-path finder refusing `dagster` and every `dagster_*` package; the
interpreter then computes the configured partitions, or loads them and builds the models.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import duckdb
from kore_sessions.sandbox import SandboxServer

from .cli_helpers import cli_env, expected, loaded, normalized
from .conftest import BOTS, counted_in_sandbox
from .forked_command import run_python

# Python run first in the child: after it, `import dagster` (or `dagster_webserver`, ...)
# raises ModuleNotFoundError, as in an environment without the extra.
BLOCK_DAGSTER = """
import importlib.abc
import sys


class NoDagster(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0].startswith("dagster"):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
        return None


sys.meta_path.insert(0, NoDagster())
"""
# The child's report: what it saw of Dagster, printed last as one JSON line.
REPORT_DAGSTER = """
try:
    import kore_sessions.orchestration.dagster_defs  # noqa: F401
    report["dagster_defs_imported"] = True
except ImportError:
    report["dagster_defs_imported"] = False
report["dagster_modules"] = sorted(m for m in sys.modules if m.split(".")[0].startswith("dagster"))
print(json.dumps(report))
"""
# Configured the documented way: a TOML table in `.dlt/config.toml` of the working folder.
CONFIG_TOML = """
[orchestration]
max_concurrent = 2

[orchestration.partitions]
emea = ["st-1", "st-2", "st-1"]
us = "st-3"
"""


def run_without_dagster(body: str, env: dict[str, str], cwd: Path) -> dict[str, Any]:
    """Run `body` in a fresh interpreter that cannot import Dagster; its JSON report."""
    script = f"{BLOCK_DAGSTER}\nimport json\nreport = {{}}\n{body}\n{REPORT_DAGSTER}"
    result = run_python(["-c", script], env, cwd)
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    assert report.pop("dagster_defs_imported") is False, "the blocker must keep Dagster out"
    assert report.pop("dagster_modules") == [], "nothing of Dagster was imported"
    return report


def clean_env(tmp_path: Path) -> dict[str, str]:
    """The test's environment without any outside orchestration, source or destination keys."""
    prefixes = ("ORCHESTRATION__", "SOURCES__", "DESTINATION__")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env["DLT_DATA_DIR"] = str(tmp_path / "dlt_home")
    env["RUNTIME__DLTHUB_TELEMETRY"] = "false"
    return env


def test_the_partitions_of_configured_bots_are_computed_without_dagster(tmp_path: Path) -> None:
    (tmp_path / ".dlt").mkdir()
    (tmp_path / ".dlt" / "config.toml").write_text(CONFIG_TOML, encoding="utf-8")
    body = """
from kore_sessions.orchestration import partitions as kp
settings, parts = kp.configured_partitions()
report["max_concurrent"] = settings.max_concurrent
report["partitions"] = [[p.group, p.bot_ids, p.pipeline_name, p.source_options()] for p in parts]
report["default"] = [[p.group, p.bot_ids, p.pipeline_name] for p in kp.parse_partitions(None)]
"""
    report = run_without_dagster(body, clean_env(tmp_path), tmp_path)
    emea = ["st-1", "st-2"]
    assert report == {
        "max_concurrent": 2,
        "partitions": [
            ["emea", emea, "kore_sessions_emea", {"bot_ids": emea, "all_bots": False}],
            ["us", ["st-3"], "kore_sessions_us", {"bot_ids": ["st-3"], "all_bots": False}],
        ],
        "default": [["all", None, "kore_sessions"]],
    }


def test_partitions_load_and_the_models_build_once_without_dagster(
    live_server: SandboxServer, tmp_path: Path
) -> None:
    """What an Airflow task per partition, then one for the models, would do."""
    groups = {"first": [BOTS[0]], "second": [BOTS[1]]}
    env = cli_env(live_server, tmp_path, ORCHESTRATION__PARTITIONS=json.dumps(groups))
    env = {k: v for k, v in env.items() if k != "SOURCES__KORE_SESSIONS__BOT_IDS"}
    body = """
from kore_sessions.orchestration import partitions as kp
settings, parts = kp.configured_partitions()
loads = [kp.load_partition(p, settings, "airflow") for p in parts]
report["loads"] = [kp.summary_metadata(p, s) for p, s in zip(parts, loads)]
report["models"] = kp.build_containment_models(settings, "airflow")
"""
    report = run_without_dagster(body, env, tmp_path)
    assert [load["pipeline"] for load in report["loads"]] == ["kore_sessions_first", "kore_sessions_second"]
    assert [load["bots"] for load in report["loads"]] == [BOTS[0], BOTS[1]]
    assert report["models"]["built"] is True, report["models"]
    assert normalized(loaded(tmp_path)) == expected(live_server)
    with duckdb.connect(str(tmp_path / "kore_warehouse.duckdb"), read_only=True) as con:
        total = con.sql("SELECT SUM(sessions) FROM kore_sessions.fct_containment_daily").fetchall()[0][0]
    assert total == counted_in_sandbox(live_server)
