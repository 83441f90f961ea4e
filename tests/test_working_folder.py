"""A pipeline folder that a killed run left half made is mended before the next run."""

from __future__ import annotations

import shutil
from pathlib import Path

from kore_sessions.sandbox import SandboxServer

from .conftest import Loader, assert_matches_sandbox


def test_a_load_storage_killed_while_being_made_is_finished(server: SandboxServer, tmp_path: Path) -> None:
    """dlt makes `load/` before `load/normalized/` and takes the storage as ready once `load/`
    exists: a kill in between must not fail every later run."""
    loader = Loader(server, tmp_path)
    loader.run()
    load = Path(loader.pipeline.working_dir) / "load"
    for name in ("normalized", "new", "loaded"):
        shutil.rmtree(load / name)
    again = Loader(server, tmp_path)
    summary = again.run()
    assert summary.packages == 1
    assert_matches_sandbox(again, server)
