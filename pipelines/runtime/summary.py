"""What one `load` did: the source's run and the warehouse's counts, as the CLI prints them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from operator import attrgetter

from kore_sessions.source import SourceRun
from kore_sessions.source.api.paging import IncompleteWindowError
from kore_sessions.source.api.rules import ALL_BOTS_KEY, bot_label
from kore_sessions.source.api.timestamps import format_api_timestamp
from kore_sessions.source.messages.history_api import MESSAGES_LISTING
from kore_sessions.source.messages.history_rules import MESSAGES_TABLE
from kore_sessions.source.sessions.endpoint import SESSIONS_LISTING
from kore_sessions.source.sessions.run_record import SessionsRecord, sessions_record
from kore_sessions.source.sessions.spec import UNRESOLVED_OPEN_PATIENCE


def _of_run(path: str, doc: str) -> property:
    """A count the summary reads from its run (`path`: dotted, from the run)."""
    read = attrgetter(path)
    return property(lambda summary: read(summary.run), doc=doc)


@dataclass
class LoadSummary:
    """What one `load` did, for the CLI's closing lines: the source's run, and the warehouse."""

    run: SourceRun = field(default_factory=SourceRun)
    sessions_new: int | None = None
    sessions_updated: int | None = None
    sessions_total: int | None = None
    pending_packages_finished: int = 0
    packages: int = 0
    seconds: float = 0.0
    destination: str = ""
    dataset: str = ""
    location: str = ""

    windows = _of_run("totals.windows", "Windows completed.")
    requests = _of_run("client.requests", "Requests sent (retries included).")
    retries = _of_run("client.retries", "Requests sent again.")
    rate_limited = _of_run("client.rate_limited", "Answers 429 (or the documented rate-limit message).")

    @property
    def sessions_refreshed(self) -> int:
        """Open (or held) sessions fetched by id or small window."""
        return self.run.totals.of("refreshed")

    @property
    def sessions_deleted(self) -> int:
        """Sessions the API called invalid, deleted."""
        return self.run.totals.of("deleted")

    @property
    def sessions_fetched(self) -> int:
        """Sessions fetched by window or by id."""
        return self.run.totals.of(SESSIONS_LISTING.noun) + self.sessions_refreshed

    @property
    def sessions(self) -> SessionsRecord:
        """What the sessions resource kept of the run (open sessions, odd answers)."""
        return sessions_record(self.run)

    @property
    def legacy_bots(self) -> list[str]:
        """Bots whose server answered in the pre-9.0 shape."""
        return sorted(self.sessions.legacy_bots)

    @property
    def undocumented_containment(self) -> dict[str, int]:
        """Containment values the docs do not list, with their counts."""
        return dict(self.sessions.undocumented_containment)

    def lines(self) -> list[str]:
        """The summary as short human-readable lines."""
        changes = (
            f"{self.sessions_new} new, {self.sessions_updated} updated"
            if self.sessions_new is not None
            else "new/updated not counted on this destination"
        )
        lines = [
            f"windows: {self.windows}  requests: {self.requests}  retries: {self.retries} "
            f"(rate limited: {self.rate_limited})",
            f"sessions: {self.sessions_fetched} fetched ({changes}), "
            f"{self.sessions_refreshed} open sessions refreshed, {self.sessions_deleted} deleted",
            f"time: {self.seconds:.1f} s  destination: {self.destination} "
            f"dataset: {self.dataset} {self.location}".rstrip(),
        ]
        if self.sessions_total is not None:
            lines.insert(2, f"sessions in the warehouse: {self.sessions_total}")
        if MESSAGES_TABLE in self.run.begun:
            lines.insert(2, f"messages: {self.run.totals.of(MESSAGES_LISTING.noun)} fetched")
        if self.legacy_bots:
            lines.append(f"pre-9.0 answer shape detected for: {', '.join(self.legacy_bots)}")
        if self.undocumented_containment:
            found = ", ".join(f"{value!r} x{n}" for value, n in sorted(self.undocumented_containment.items()))
            lines.append(f"undocumented containment values, loaded as sent: {found}")
        if self.packages > 1:
            lines.append(f"loaded as {self.packages} packages, each committed with its state")
        if self.pending_packages_finished:
            lines.append(f"finished {self.pending_packages_finished} package(s) left by an interrupted run")
        if self.run.earlier_start:
            lines.append(self.earlier_start_line())
        if self.sessions.unresolved:
            lines.append(
                "open sessions found neither by id nor in their window, refreshed again next run: "
                + _per_bot(self.sessions.unresolved)
            )
        if self.sessions.given_up:
            lines.append(
                f"open sessions unfound for {_hours(UNRESOLVED_OPEN_PATIENCE)}, no longer refreshed (left "
                f"as loaded, still active): {_per_bot(self.sessions.given_up)}"
            )
        return lines

    def check_complete(self) -> None:
        """Fail a run that left a window short of its total (after loading all else it read).

        Raises:
            IncompleteWindowError: one line naming the first such window and its counts.
        """
        short = self.run.short_windows
        if short:
            more = f" (and {len(short) - 1} more window(s))" if len(short) > 1 else ""
            raise IncompleteWindowError(
                f"{short[0]}{more}: the cursor of that bot stays before it and the next run reads it "
                "again (everything else this run read was loaded)"
            )

    def earlier_start_line(self) -> str:
        """What to do when start_date lies before what bots with state have loaded: one bounded
        backfill up to the latest `loaded_from` of them (bots that began earlier merge again
        what they hold, which changes nothing)."""
        earlier = self.run.earlier_start
        start = format_api_timestamp(min(start for start, _ in earlier.values()))
        loaded_from = [loaded for _, loaded in earlier.values()]
        first, last = format_api_timestamp(min(loaded_from)), format_api_timestamp(max(loaded_from))
        who = "the account's bots" if ALL_BOTS_KEY in earlier else f"{len(earlier)} bot(s)"
        return (
            f"start {start} is before what {who} loaded first (from {first}): "
            f"a run with state goes on from its cursor; load the earlier range once with "
            f"--start {start} --end {last}"
        )


# Session ids named per bot in a summary line; more are counted, not listed.
IDS_SHOWN = 5


def _per_bot(ids: dict[str, list[str]]) -> str:
    """`bot X: 2 (id, id); bot Y: ...` with at most IDS_SHOWN ids each."""
    parts = []
    for bot, found in sorted(ids.items()):
        shown = ", ".join(sorted(found)[:IDS_SHOWN]) + (", ..." if len(found) > IDS_SHOWN else "")
        parts.append(f"{bot_label(bot)}: {len(found)} ({shown})")
    return "; ".join(parts)


def _hours(span: timedelta) -> str:
    """A span in whole hours, as the summary says it."""
    return f"{span.total_seconds() / 3600:g} h"
