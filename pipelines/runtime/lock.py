"""One run of a pipeline at a time: the run lock.

dlt keeps a pipeline's packages and state in one working folder; two runs in it at once remove
each other's files (`FileNotFoundError: ... load/normalized/...`) whatever the destination.
The run lock is `fcntl.flock` on `<pipelines dir>/<pipeline name>.lock`: the kernel releases it
when its process ends, even by SIGKILL, so a lock left by a killed run is simply taken by the
next one. The file keeps the holder's pid, host, command (its name only, never its arguments,
which may name a person: `forget --user-id`) and start, for the message of the run that finds
it taken. Lock files are never deleted: a process may hold one at any moment.

A run lock is waited for (`audit`) the way the dataset's turn is (`kore_sessions.warehouse.turn`).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO

from dlt.common.pipeline import get_dlt_pipelines_dir
from kore_sessions.output.failures import ActionableError
from kore_sessions.warehouse.turn import TurnTimeoutError, Waiting, try_lock

logger = logging.getLogger("kore_sessions")

class RunLockedError(ActionableError):
    """Another run of the same pipeline holds the lock."""


class RunLock:
    """An exclusive lock on a file, refused at once or waited for; use as a context manager."""

    def __init__(self, path: Path, purpose: str, wait: bool = False) -> None:
        """Name the lock file and what the run does (shown to a run that finds it taken).

        Args:
            path: The lock file (created with its folder when missing).
            purpose: The command holding the lock, e.g. "kore-sessions load".
            wait: Wait for a taken lock (up to `TurnWait.timeout`, said once) instead of
                failing at once: for commands that run beside a load (`audit`, `models`).
        """
        self.path = path
        self.purpose = purpose
        self.wait = wait
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock, or fail (at once, or after waiting for it).

        Raises:
            RunLockedError: another process holds it; the message names it and the file.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+", encoding="utf-8")
        try:
            taken = self._take(handle)
        except BaseException:
            handle.close()
            raise
        if not taken:
            holder = _holder(handle)
            handle.close()
            still = " still" if self.wait else ""
            raise RunLockedError(
                f"another run of this pipeline is{still} in progress ({holder}); lock file {self.path}: "
                "wait for it to finish (a lock left by a killed run is taken over automatically)"
            )
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(_this_process(self.purpose)))
        handle.flush()
        self._file = handle

    def _take(self, handle: IO[str]) -> bool:
        """Whether the lock was taken: at once, or (waiting) within the timeout."""
        if not self.wait:
            return try_lock(handle)
        try:
            Waiting(f"the run of this pipeline holding {self.path}", None).until(lambda: try_lock(handle))
        except TurnTimeoutError:
            return False
        return True

    def release(self) -> None:
        """Give the lock up (the file stays, unlocked, for the next run)."""
        if self._file is None:
            return
        self._file.seek(0)
        self._file.truncate()
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()
        self._file = None

    def __enter__(self) -> RunLock:
        """Take the lock."""
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Give the lock up."""
        self.release()


def _this_process(purpose: str) -> dict[str, object]:
    """What a run that finds the lock taken is told about its holder (no argument values: they
    may name a person, and a killed run leaves the file behind)."""
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": purpose,
        "started": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _holder(handle: IO[str]) -> str:
    """The holder as recorded in the file, in words."""
    handle.seek(0)
    try:
        info = json.loads(handle.read() or "{}")
    except json.JSONDecodeError:
        info = {}
    if not isinstance(info, dict) or "pid" not in info:
        return "a process that has not written its name yet"
    where, what, since = info.get("host", "?"), info.get("command", "?"), info.get("started", "?")
    return f"pid {info['pid']} on {where}, {what} since {since}"


def pipeline_lock(
    pipelines_dir: str | Path | None, pipeline_name: str, purpose: str, wait: bool = False
) -> RunLock:
    """The lock of one pipeline: `<pipelines dir>/<pipeline name>.lock` (see `RunLock`)."""
    return RunLock(pipelines_folder(pipelines_dir) / f"{pipeline_name}.lock", purpose, wait)


def pipelines_folder(pipelines_dir: str | Path | None) -> Path:
    """Where the pipelines are kept: the folder given, else dlt's own."""
    folder = Path(pipelines_dir) if pipelines_dir else Path(get_dlt_pipelines_dir())
    return folder.expanduser().resolve()
