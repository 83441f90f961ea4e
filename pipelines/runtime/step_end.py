"""The end of a load step (DuckDB's one checkpoint, the warehouse's turn given back) run in a thread
of its own while the next package is extracted.

A first backfill's checkpoints took 0.3-1.5 s each (2.2 s of a 500k backfill's 15.3 s) on the
main thread, with the next package's extract waiting. Extracting touches neither the warehouse
nor its turn, so it goes on beside the checkpoint; the next load step, and the end of the run,
wait for it first, and an error it ended with is raised there.
"""

from __future__ import annotations

import threading
from contextlib import ExitStack


class StepEnd:
    """The end of the last load step, running in a thread until `wait` returns."""

    def __init__(self) -> None:
        """Nothing running yet."""
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def start(self, step: ExitStack) -> None:
        """Close `step` (what the load step entered: its turn, the DuckDB file kept open) in a
        thread; the previous end is waited for first."""
        self.wait()
        self._thread = threading.Thread(target=self._close, args=(step,), name="load-step-end", daemon=False)
        self._thread.start()

    def wait(self) -> None:
        """Wait for the end in progress, if any; raise the error it ended with."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        thread.join()
        error, self._error = self._error, None
        if error is not None:
            raise error

    def _close(self, step: ExitStack) -> None:
        """The thread: the step's contexts exited, as at the end of a `with` that succeeded."""
        try:
            step.close()
        except BaseException as error:  # raised by `wait`, in the thread that runs the load
            self._error = error
