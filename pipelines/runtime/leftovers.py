"""What a failed run may remove: its own pipeline's working folder, if it made it, and nothing else.

The rule: a cleanup is a delete, so a run removes only what it alone made and no other process
can have touched, and it prefers making less to deleting more:
- It makes nothing in the warehouse before its first load step (no DuckDB file is opened before
  then), so a run that fails earlier has no warehouse file to remove, and one that fails later
  has loaded data there, or left a package to finish: neither is removed. A DuckDB file is
  never removed by a run, whoever made it: partitions share it.
- Lock files (the pipeline's run lock, the dataset's turn beside a DuckDB file) and the rate
  budget are shared by every process of the machine, which may hold or use them at any moment;
  the budget also remembers requests the server counted, which the next try must not forget.
  They are never removed.
- dlt's working folder of the pipeline is touched only by the holder of the pipeline's run lock.
  When this run made it and no package was loaded or left to finish, it is removed before the
  lock is released, so the next try starts as clean as the first.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import dlt


def loaded_anything(pipeline: dlt.Pipeline | None) -> bool:
    """Whether a load package was loaded, or is left to finish (both must be kept)."""
    if pipeline is None:
        return False
    try:
        return bool(pipeline.has_pending_data or pipeline.list_completed_load_packages())
    except Exception:  # a half-made working folder holds nothing to keep
        return False


@contextmanager
def working_folder_kept_only_if_used(folder: Path, kept: Callable[[], bool]) -> Iterator[None]:
    """Remove the pipeline's working folder if the block made it, then failed with nothing to keep.

    Enter it while holding the pipeline's run lock (nobody else touches the folder then).

    Args:
        folder: dlt's working folder of the pipeline (`<pipelines dir>/<pipeline name>`).
        kept: Asked after a failure: whether what was made must stay (data was loaded).
    """
    existed = folder.exists()
    try:
        yield
    except BaseException:
        if not existed and folder.is_dir() and not kept():
            shutil.rmtree(folder, ignore_errors=True)
        raise
