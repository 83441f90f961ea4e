"""DuckDB's memory while models build: sized by the build's threads and the sessions loaded, and
doubled when DuckDB runs out of it, up to DuckDB's own default.

A build's joins and aggregates spill to disk beyond the limit, but each thread holds buffers of
its own, and some steps (the tag rollup's join of tags and sessions) need more as the sessions
grow. A limit sized for both keeps a build beside its load within the load's memory; a build
that still runs out of it (a data set shaped unlike the measured one) is rolled back and built
again under twice the limit, so it never fails where a larger limit would have built it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import duckdb
from dlt.destinations.sql_client import SqlClientBase

logger = logging.getLogger("kore_sessions")

# DuckDB's memory a build thread needs for each started BUILD_SESSIONS_STEP sessions loaded.
# Measured on the models over the bench's sessions (about 1.4 session tags, 1.6 user tags and 1.06
# languages a session), the build alone on 2 threads: over 200,000 sessions it ran out of 48, 64,
# 72 and 80 MB and built under 96 (DuckDB only spills a join it expects to be large); over
# 1,000,000 under 72, 80 and 96 MB (not 64); over 2,000,000 under 96 MB (not 80); over 4,000,000
# under 192 MB (not 128). Over 1,000,000 sessions 4 threads built under 192 MB (not 96) and 8
# under 384: each thread holds buffers of its own. The old build (1 GB) peaked at 1.26 GB over
# 1,000,000 sessions in 6.6 s; under 96 MB this one peaks at 179 MB in 3.7-4.3 s. Built by
# `kore-sessions load` right after loading 200,000 sessions, the rollups (then deduplicating both
# tag scopes in one UNION and adding up every session in each of the six rollups) ran out of
# 96 MB in 6 of 19 runs, and building again under 192 MB took the command to 403-423 MB; since
# each scope is deduplicated on its own and the day, week, month and channel rollups add up
# counted groups, 0 of 18 (333-343 MB).
MEMORY_PER_BUILD_THREAD_MB = 48
BUILD_SESSIONS_STEP = 2_000_000
# The line a build that ran out of its limit says before it is built again under more (the
# limit's MB in place of %s): the benchmark counts them.
REBUILD_NOTICE = "models: DuckDB ran out of memory; building again under %s MB"


def build_memory_mb(threads: int, sessions: int) -> int:
    """The memory limit (MB) a build starts under: MEMORY_PER_BUILD_THREAD_MB a thread (at least
    one) for each started BUILD_SESSIONS_STEP sessions (at least one step)."""
    steps = max(1, -(-sessions // BUILD_SESSIONS_STEP))
    return MEMORY_PER_BUILD_THREAD_MB * max(1, threads) * steps


@dataclass
class BuildMemory:
    """The memory limit a model build runs under, and its growth when DuckDB runs out of it.

    Attributes:
        client: The build's SQL client (None: not DuckDB, nothing to set).
        limit_mb: The build's limit (None: the user's own, which holds).
        ceiling_mb: The most it may grow to: DuckDB's own default.
    """

    client: SqlClientBase[Any] | None = None
    limit_mb: int | None = None
    ceiling_mb: float = 0.0

    def set_limit(self, limit_mb: int) -> None:
        """Run the build under `limit_mb` MB, or under DuckDB's own default where that is lower."""
        assert self.client is not None
        if limit_mb < self.ceiling_mb:
            self.client.execute_sql("SET memory_limit = %s", f"{limit_mb}MB")
            self.limit_mb = limit_mb
        else:
            self.client.execute_sql("RESET memory_limit")
            self.limit_mb = int(self.ceiling_mb)

    def raise_limit(self) -> bool:
        """Double the build's limit (at most to the ceiling) for the next attempt; False when it
        cannot grow (not ours, at the ceiling already, or no ceiling known)."""
        if self.client is None or self.limit_mb is None or not math.isfinite(self.ceiling_mb):
            return False  # not ours, or DuckDB's default unreadable: no ceiling to grow to
        if self.limit_mb >= int(self.ceiling_mb):
            return False
        self.set_limit(2 * self.limit_mb)
        logger.warning(REBUILD_NOTICE, self.limit_mb)
        return True


def out_of_memory(error: BaseException) -> bool:
    """Whether DuckDB ran out of its memory limit (dlt wraps DuckDB's error in its own)."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, duckdb.OutOfMemoryException):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
