"""A load step ends (DuckDB's checkpoint, the turn given back) in a thread of its own while the next
package is extracted; the next step and the end of the run wait for it, and its error is raised
there (`kore_sessions.runtime.step_end`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import dlt
import pytest
from kore_sessions.runtime import pipeline as runtime_pipeline
from kore_sessions.runtime.step_end import StepEnd
from kore_sessions.sandbox import SandboxServer

from .conftest import Loader, assert_matches_sandbox


def _closing(record: list[str], name: str, seconds: float = 0.0, error: Exception | None = None) -> ExitStack:
    """A step whose end sleeps, then notes `name` (or raises `error`)."""

    def close() -> None:
        time.sleep(seconds)
        if error is not None:
            raise error
        record.append(name)

    step = ExitStack()
    step.callback(close)
    return step


@pytest.mark.unit
def test_the_error_a_step_ended_with_is_raised_by_the_wait_once() -> None:
    end = StepEnd()
    end.start(_closing([], "a", error=OSError("turn not given back")))
    with pytest.raises(OSError, match="turn not given back"):
        end.wait()
    end.wait()  # raised once; nothing running now


@pytest.mark.unit
def test_a_step_ends_after_the_one_before_it() -> None:
    record: list[str] = []
    end = StepEnd()
    end.start(_closing(record, "first", seconds=0.2))
    end.start(_closing(record, "second"))
    end.wait()
    assert record == ["first", "second"]


def test_the_next_package_is_extracted_while_the_last_step_checkpoints(
    server: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each step's end takes 0.3 s more here: an extract begins while one runs, in the thread of
    the step's end, and every session is loaded once, the file checkpointed at the end."""
    events: list[tuple[str, float, str]] = []
    kept_open = runtime_pipeline.duckdb_kept_open

    @contextmanager
    def slow_end(database: Path | None, settings: dict[str, Any] | None = None) -> Iterator[None]:
        with kept_open(database, settings):
            yield
            events.append(("end", time.monotonic(), threading.current_thread().name))
            time.sleep(0.3)
        events.append(("ended", time.monotonic(), threading.current_thread().name))

    extract = dlt.Pipeline.extract

    def noted_extract(self: Any, *args: Any, **kwargs: Any) -> Any:
        events.append(("extract", time.monotonic(), threading.current_thread().name))
        return extract(self, *args, **kwargs)

    monkeypatch.setattr(runtime_pipeline, "duckdb_kept_open", slow_end)
    monkeypatch.setattr(dlt.Pipeline, "extract", noted_extract)
    loader = Loader(server, tmp_path)
    summary = loader.run(window_hours=48, windows_per_package=2, appended_windows_per_package=2)
    assert summary.packages >= 3
    ends = [(at, thread) for kind, at, thread in events if kind == "end"]
    ended = [at for kind, at, _ in events if kind == "ended"]
    extracts = [at for kind, at, _ in events if kind == "extract"]
    assert {thread for _, thread in ends} == {"load-step-end"}
    assert any(start < at < done for (start, _), done in zip(ends, ended, strict=True) for at in extracts)
    assert ended[-1] < time.monotonic() and not Path(f"{tmp_path / 'w.duckdb'}.wal").exists()
    assert_matches_sandbox(loader, server)
