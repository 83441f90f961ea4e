"""What the sessions resource keeps of one run besides its counts: the open sessions it must
refresh and found, and what its summary names (pre-9.0 servers, containment values the docs do
not list, open sessions not found).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from kore_sessions.source.api.run import SourceRun
from kore_sessions.source.sessions.schema import SESSIONS_TABLE


@dataclass
class SessionsRecord:
    """The sessions resource's record of one run (over all its load packages).

    Attributes:
        open_at_start: Per bot, the sessions open when the run began (refreshed at its end
            unless a window of the run fetched them).
        seen_open: Per bot, those of them fetched by a window of this run.
        legacy_bots: Bots whose server answered in the pre-9.0 shape.
        undocumented_containment: Containment values the docs do not list, with their counts.
        unresolved: Open sessions found neither by id nor in their window, still refreshed, per bot.
        given_up: Open sessions unfound for UNRESOLVED_OPEN_PATIENCE, no longer refreshed, per bot.
    """

    open_at_start: dict[str, set[str]] = field(default_factory=dict)
    seen_open: dict[str, set[str]] = field(default_factory=dict)
    legacy_bots: set[str] = field(default_factory=set)
    undocumented_containment: dict[str, int] = field(default_factory=dict)
    unresolved: dict[str, list[str]] = field(default_factory=dict)
    given_up: dict[str, list[str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count_containment(self, value: str) -> None:
        """Count a containment value the docs do not list."""
        with self._lock:
            self.undocumented_containment[value] = self.undocumented_containment.get(value, 0) + 1


def sessions_record(run: SourceRun) -> SessionsRecord:
    """The sessions resource's record of `run`, made on first use."""
    return run.record(SESSIONS_TABLE, SessionsRecord)
