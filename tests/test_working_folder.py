"""A pipeline folder that a killed run left half made is mended before the next run."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kore_sessions.sandbox import SandboxServer

from .cli_helpers import PIPELINE_FOLDER, expected, kore, loaded, normalized
from .conftest import Loader, assert_matches_sandbox, sandbox_at_real_now
from .test_first_backfill import rows_twice
from .test_lagging_state import day_sessions, env_of, partition_env, partitions


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


# A patch: the process dies inside dlt's third save of the pipeline's schema, with the temporary
# file written and not yet renamed (named as dlt names it, beginning with a digit: a schema name
# may not, which is what failed every later sync).
KILLED_INSIDE_A_SCHEMA_SAVE = """
import os
from dlt.common.storages.file_storage import FileStorage
from dlt.common.utils import uniq_id
_save_atomic = FileStorage.save_atomic
_saves = []
def save_atomic(storage_path, relative_path, data, file_type="t"):
    if os.path.basename(os.path.normpath(storage_path)) == "schemas":
        _saves.append(relative_path)
        if len(_saves) == 3:
            with open(os.path.join(storage_path, "0" + uniq_id(8)[1:]), "w") as temporary:
                temporary.write(data[: len(data) // 2])
            os._exit(9)
    return _save_atomic(storage_path, relative_path, data, file_type)
FileStorage.save_atomic = staticmethod(save_atomic)
"""


def test_a_schema_save_killed_before_its_rename_leaves_no_schema_behind(tmp_path: Path) -> None:
    """The temporary file a killed save of the schema left is not taken for a schema: the next
    load goes on and loads every session once."""
    with sandbox_at_real_now(day_sessions(tagged_day=1)) as server:
        env = env_of(server, tmp_path, "sessions")
        killed = kore(["load", "--no-models"], env, tmp_path, patch=KILLED_INSIDE_A_SCHEMA_SAVE)
        assert killed.returncode == 9, killed.stderr
        left = [path.name for path in (tmp_path / PIPELINE_FOLDER / "schemas").iterdir()]
        assert len(left) == 2 and "kore_sessions.schema.json" in left, left
        assert loaded(tmp_path), "a package was loaded first: dlt's sync does not wipe the folder"
        last = kore(["load", "--no-models"], env, tmp_path)
        assert last.returncode == 0, last.stderr
        assert [path.name for path in (tmp_path / PIPELINE_FOLDER / "schemas").iterdir()] == [
            "kore_sessions.schema.json"
        ]
        assert normalized(loaded(tmp_path)) == normalized(expected(server))
        assert set(rows_twice(tmp_path).values()) == {0}


def test_a_partition_mends_its_dead_schema_save_beside_another_partition_loading(tmp_path: Path) -> None:
    """Two partitions, a bot each, into one DuckDB file: the first dies inside a schema save;
    then both load at once, each in a process of its own. The first's dead file goes, nothing
    of the other's folder does, and each session is there once."""
    with sandbox_at_real_now(day_sessions(tagged_day=1, bots=2)) as server:
        env, commands = partition_env(server, tmp_path), partitions()
        killed = kore(commands["part_a"], env, tmp_path, patch=KILLED_INSIDE_A_SCHEMA_SAVE)
        assert killed.returncode == 9, killed.stderr
        plain = "# a process of its own, not the test's fork"
        with ThreadPoolExecutor(2) as pool:
            runs = list(pool.map(lambda args: kore(args, env, tmp_path, patch=plain), commands.values()))
        assert [run.returncode for run in runs] == [0, 0], [run.stderr for run in runs]
        for name in commands:
            schemas = tmp_path / PIPELINE_FOLDER.parent / name / "schemas"
            assert [path.name for path in schemas.iterdir()] == ["kore_sessions.schema.json"], name
        assert normalized(loaded(tmp_path)) == normalized(expected(server))
        assert set(rows_twice(tmp_path).values()) == {0}
