"""One run of a pipeline at a time: an exclusive lock on a file beside its working folder.

dlt keeps a pipeline's packages and state in one working folder; two runs in it at once remove
each other's files (`FileNotFoundError: ... load/normalized/...`) whatever the destination.
The lock is `fcntl.flock` on `<pipelines dir>/<pipeline name>.lock`: the kernel releases it
when its process ends, even by SIGKILL, so a lock left by a killed run is simply taken by the
next one. The file keeps the holder's pid, command and start, for the message of the run that
finds it taken.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO

from dlt.common.pipeline import get_dlt_pipelines_dir


class RunLockedError(Exception):
    """Another run of the same pipeline holds the lock."""


class RunLock:
    """An exclusive, non-blocking lock on a file; use as a context manager."""

    def __init__(self, path: Path, purpose: str) -> None:
        """Name the lock file and what the run does (shown to a run that finds it taken).

        Args:
            path: The lock file (created with its folder when missing).
            purpose: The command holding the lock, e.g. "kore-sessions load".
        """
        self.path = path
        self.purpose = purpose
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock, or fail at once.

        Raises:
            RunLockedError: another process holds it; the message names it and the file.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(handle)
            handle.close()
            raise RunLockedError(
                f"another run of this pipeline is in progress ({holder}); lock file {self.path}: "
                "wait for it to finish (a lock left by a killed run is taken over automatically)"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(_this_process(self.purpose)))
        handle.flush()
        self._file = handle

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
    """What a run that finds the lock taken is told about its holder."""
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": purpose,
        "started": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "argv": " ".join(sys.argv[1:])[:200],
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


def pipeline_lock(pipelines_dir: str | Path | None, pipeline_name: str, purpose: str) -> RunLock:
    """The lock of one pipeline: `<pipelines dir>/<pipeline name>.lock` (dlt's folder by default)."""
    folder = Path(pipelines_dir) if pipelines_dir else Path(get_dlt_pipelines_dir())
    return RunLock(folder.expanduser().resolve() / f"{pipeline_name}.lock", purpose)
