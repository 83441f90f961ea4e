"""The order the suite's modules go to the pytest-xdist workers (`--dist loadfile`).

A module goes whole to one worker, in collection order. Two things keep the four workers busy
to the end:

- the test that stops PostgreSQL (`stoppable_postgres`, see `tests/postgres_turns.py`) goes
  first: every other test waits while it runs, and at the start that is a few seconds of
  short first tests, not the longest test then running;
- then the longest modules (longest first), so that the last modules handed out are short
  and the workers finish together. `LONGEST_MODULES` is measured (seconds of one run with
  `--durations=0`, summed by module); a module not listed goes after them, as collected.
"""

from __future__ import annotations

import pytest

# The slowest modules, longest first, by their summed test durations in one run on 2 cores
# (`pytest --durations=0`): 95 s for test_pipeline down to 21 s for test_personal_data_rule
# (test_bench: one test of 13 to 30 s, that starts a benchmark of its own).
LONGEST_MODULES = (
    "test_pipeline.py",
    "test_bench.py",
    "test_models_spec.py",
    "test_cli_promises.py",
    "test_cli.py",
    "test_faults.py",
    "test_clocks.py",
    "test_report.py",
    "test_failures_beside_a_run.py",
    "test_cli_models.py",
    "test_run_lock.py",
    "test_models.py",
    "test_concurrency.py",
    "test_audit.py",
    "test_erasures_hold.py",
    "test_partitions.py",
    "test_budget.py",
    "test_dagster.py",
    "test_first_hour.py",
    "test_audit_claims.py",
    "test_report_reads_marts.py",
    "test_open_sessions_unfound.py",
    "test_personal_data_rule.py",
)


def schedule_rank(item: pytest.Item) -> tuple[int, int]:
    """Where a test goes: (0, _) with the server stopped, (1, rank) a long module, (2, 0) else."""
    if "stoppable_postgres" in getattr(item, "fixturenames", ()):
        return (0, 0)
    module = item.path.name
    if module in LONGEST_MODULES:
        return (1, LONGEST_MODULES.index(module))
    return (2, 0)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules of a test that stops PostgreSQL first (that test first in it), then the longest
    modules, longest first; otherwise the collection order stands (a stable sort)."""
    module_rank: dict[str, tuple[int, int]] = {}
    for item in items:
        module, rank = item.nodeid.split("::")[0], schedule_rank(item)
        module_rank[module] = min(rank, module_rank.get(module, rank))
    items.sort(key=lambda item: (module_rank[item.nodeid.split("::")[0]], schedule_rank(item) != (0, 0)))
