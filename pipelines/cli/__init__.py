"""The `kore-sessions` command: its parser, the commands, the demo and the id lookup.

Importing it chooses Arrow's allocator for the whole program, before pyarrow loads: Arrow's C++
code (its compute kernels, the Parquet writer, the arrays modules make as they are imported)
allocates from a default pool it picks as pyarrow is imported, from ARROW_DEFAULT_MEMORY_POOL.
pyarrow's wheels pick mimalloc, whose 1 GB arena kept 35-50 MB it had freed through a
1,000,000-session load, under the models' build that follows; on the system allocator
`kore-sessions load` with its models peaked about 30 MB lower at 1,000,000 sessions and 50-70 MB
lower at 200,000, in the same time.
`heap.tune_process_heap` moves only pyarrow's own calls once pyarrow is loaded. A value of yours
wins.
"""

import os

# The variable is named here and in `kore_sessions.source.heap`: the source cannot import the
# command above it, and the command cannot import the source before this line without loading
# pyarrow.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")

from kore_sessions.cli.parser import main  # pyarrow loads from here on

__all__ = ["main"]
