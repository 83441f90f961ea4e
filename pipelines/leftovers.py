"""A first run that fails before loading anything leaves no file or folder behind.

A run creates its DuckDB file, dlt's working folder, the lock and the rate budget as it goes.
When it fails before any load package was loaded or left to finish, those it created are
removed again, so the next try starts as clean as the first; anything that existed before the
run, or holds data, stays.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import dlt

from sources.kore_sessions.budget import BUDGET_FILE_NAME

from .lock import DUCKDB_TURN_SUFFIX

# Files SQLite and DuckDB keep beside their database while it is open.
BESIDE_DATABASE = ("-wal", "-shm", ".wal")


@dataclass(frozen=True)
class Made:
    """Something a run may create, and how it goes again: a file, a folder with all it holds
    (dlt's working folder of the pipeline), or a folder only if nothing else is in it."""

    path: Path
    kind: str = "file"  # "file", "tree" or "empty folder"

    def remove(self) -> None:
        """Remove it (quietly: what is gone or still in use stays as it is)."""
        with suppress(OSError):
            if self.kind == "tree":
                shutil.rmtree(self.path)
            elif self.kind == "empty folder":
                self.path.rmdir()
            else:
                self.path.unlink()


def run_files(pipelines_dir: Path, pipeline_name: str, duckdb_path: Path | None) -> list[Made]:
    """What a load may create, innermost first (files before the folders that hold them)."""
    budget = pipelines_dir / BUDGET_FILE_NAME
    files = [
        pipelines_dir / f"{pipeline_name}.lock",
        budget,
        *(Path(f"{budget}{s}") for s in BESIDE_DATABASE),
    ]
    if duckdb_path is not None:
        files += [duckdb_path, Path(f"{duckdb_path}{DUCKDB_TURN_SUFFIX}")]
        files += [Path(f"{duckdb_path}{s}") for s in BESIDE_DATABASE]
    folders = [Made(pipelines_dir / pipeline_name, "tree"), Made(pipelines_dir, "empty folder")]
    folders.append(Made(pipelines_dir.parent, "empty folder"))  # dlt's home, if this run made it
    if duckdb_path is not None:
        folders.append(Made(duckdb_path.parent, "empty folder"))  # e.g. --duckdb-file new/x.duckdb
    return [*(Made(path) for path in files), *folders]


def loaded_anything(pipeline: dlt.Pipeline | None) -> bool:
    """Whether a load package was loaded, or is left to finish (both must be kept)."""
    if pipeline is None:
        return False
    try:
        return bool(pipeline.has_pending_data or pipeline.list_completed_load_packages())
    except Exception:  # a half-made working folder holds nothing to keep
        return False


@contextmanager
def nothing_left_if_failed(made: Sequence[Made], kept: Callable[[], bool]) -> Iterator[None]:
    """Remove what this block created if it fails and `kept()` says nothing is worth keeping.

    Args:
        made: What the block may create, innermost first.
        kept: Asked after a failure: whether what was made must stay (data was loaded).
    """
    existed = {item.path: item.path.exists() for item in made}
    try:
        yield
    except BaseException:
        if not kept():
            for item in made:
                if not existed[item.path] and item.path.exists():
                    item.remove()
        raise
