"""The `kore-sessions` command: its parser, the commands, the demo and the id lookup.

Importing it chooses Arrow's allocator for the whole program, before pyarrow loads: Arrow's C++
code (its compute kernels, the Parquet writer, the arrays modules make as they are imported)
allocates from a default pool it picks once, at its first allocation, from
ARROW_DEFAULT_MEMORY_POOL. pyarrow's wheels pick mimalloc, whose 1 GB arena kept 35-50 MB it had
freed through a 1,000,000-session load, under the models' build that follows; on the system
allocator `kore-sessions load` with its models peaked 40-50 MB lower, in the same time.
`heap.tune_process_heap` moves only pyarrow's own calls once pyarrow is loaded. A value of
yours wins.
"""

import os

ARROW_POOL_ENV = "ARROW_DEFAULT_MEMORY_POOL"
os.environ.setdefault(ARROW_POOL_ENV, "system")

from kore_sessions.cli.parser import main  # noqa: E402  (pyarrow loads from here on)

__all__ = ["ARROW_POOL_ENV", "main"]
