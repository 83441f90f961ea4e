"""The heap settings: the collector is put back after an extraction, Arrow's pool at start."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from kore_sessions.source.heap import lean_heap
from kore_sessions.source.settings import COLLECTOR_THRESHOLDS


@pytest.fixture
def nothing_frozen() -> Iterator[None]:
    """A process that froze nothing itself (the suite freezes what it collected: thaw it)."""
    gc.unfreeze()
    yield
    gc.freeze()


@pytest.mark.usefixtures("nothing_frozen")
def test_lean_heap_raises_the_thresholds_and_puts_everything_back() -> None:
    before = gc.get_threshold()
    with lean_heap():
        assert gc.get_threshold() == COLLECTOR_THRESHOLDS
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


@pytest.mark.usefixtures("nothing_frozen")
def test_lean_heap_puts_everything_back_when_the_block_fails() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), lean_heap():
        raise RuntimeError("failed page")
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def _arrow_pool_backend(env: dict[str, str]) -> str:
    code = (
        "from kore_sessions.source.heap import tune_process_heap; import pyarrow as pa; "
        "tune_process_heap(); print(pa.default_memory_pool().backend_name)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return run.stdout.strip()


def test_the_program_freezes_what_its_imports_made_and_an_extraction_keeps_it_so() -> None:
    code = (
        "import gc; import kore_sessions.cli.parser; from kore_sessions.source.heap import "
        "lean_heap, tune_process_heap; tune_process_heap(); frozen = gc.get_freeze_count(); "
        "block = lean_heap(); block.__enter__(); block.__exit__(None, None, None); "
        "print(frozen, gc.get_freeze_count())"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    frozen, after = (int(number) for number in run.stdout.split())
    assert frozen > 100_000, "the imports' objects are frozen"
    assert after == frozen, "an extraction neither unfreezes them nor freezes more"


def test_arrow_allocates_from_the_system_unless_told_otherwise() -> None:
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    assert _arrow_pool_backend(env) == "system"
    assert _arrow_pool_backend({**env, "ARROW_DEFAULT_MEMORY_POOL": "mimalloc"}) == "mimalloc"


def test_pyarrows_own_calls_move_to_the_system_when_pyarrow_loaded_before_the_program() -> None:
    """A program that imported pyarrow before `kore_sessions.cli` (which then sets the variable
    too late for Arrow's C++ code) still gets pyarrow's own calls on the system allocator."""
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    code = (
        "import pyarrow as pa; import kore_sessions.cli; from kore_sessions.source.heap import "
        "tune_process_heap; tune_process_heap(); print(pa.default_memory_pool().backend_name)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert run.stdout.strip() == "system"


def _mimalloc_bytes_after_the_program_writes_parquet(env: dict[str, str]) -> int:
    """What Arrow's C++ code took from mimalloc in a process that started as `kore-sessions` does
    and then wrote a Parquet file (as dlt's normalize step does)."""
    code = (
        "import kore_sessions.cli, io; from kore_sessions.source.heap import tune_process_heap; "
        "tune_process_heap(); import pyarrow as pa, pyarrow.parquet as pq; "
        "pq.write_table(pa.table({'a': list(range(100_000))}), io.BytesIO()); "
        "print(pa.mimalloc_memory_pool().max_memory())"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return int(run.stdout)


def test_arrows_own_code_allocates_from_the_system_too() -> None:
    """Arrow's C++ pool is chosen as pyarrow is imported, which importing the program does:
    `pa.set_memory_pool` after the imports left its kernels and Parquet writer on mimalloc."""
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    assert _mimalloc_bytes_after_the_program_writes_parquet(env) == 0
    told = {**env, "ARROW_DEFAULT_MEMORY_POOL": "mimalloc"}
    assert _mimalloc_bytes_after_the_program_writes_parquet(told) > 0


@pytest.mark.usefixtures("nothing_frozen")
def test_objects_a_program_froze_itself_stay_frozen() -> None:
    gc.freeze()
    frozen = gc.get_freeze_count()
    with lean_heap():
        pass
    assert gc.get_freeze_count() == frozen
