"""Which pages of a window to ask for, and when the window is complete: decisions only, no I/O.

A `WindowPaging` takes the answers to its requests in any order (`take`) and says which
requests follow: the rest of the window's pages, planned at once from the first page's `total`
once the server's page cap is known (`PageCap`), else one after another; a page that comes
back shorter than asked while the total says more follows is followed by a request for the
gap at once. When no page is left it checks the distinct records against the `total`: if
fewer (the list moved while it was paged, or the server cut pages short), the window is read
again, and the records of every reading count together. A window that stays short after
`MAX_WINDOW_ATTEMPTS` readings is closed with its `shortfall` said: the caller never moves a
cursor past it (the run then fails, `IncompleteWindowError`), so no record the API counted but
did not give is passed over.
It knows no resource: records are counted by the id field the caller names, and a request's
`variant` is whatever filter the resource splits a window by (sessions of a pre-9.0 server: the
containment type), or None.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from kore_sessions.source.api.answers import KoreApiError, Page

logger = logging.getLogger("kore_sessions")

# Readings of a window whose records came out fewer than the API's total (the list moved, or
# pages came back short): records shifted across a page edge while paging are found by the next
# reading, so three readings make a window that is read whole at least once almost certain.
MAX_WINDOW_ATTEMPTS = 3


class IncompleteWindowError(KoreApiError):
    """A window gave fewer distinct records than its `total` in every reading."""


@dataclass(frozen=True)
class Listing:
    """What a resource's pages list, as the paging counts it.

    Attributes:
        id_key: The API field that identifies a record (`sessionId`).
        noun: What the records are called in messages (`sessions`), and the run's total that
            counts them.
        id_column: The row column the id becomes (`session_id`).
        time_column: The row column of the time the windows are cut by (`start_time`).
    """

    id_key: str
    noun: str
    id_column: str
    time_column: str


@dataclass(frozen=True)
class PageRequest:
    """One listing call: a page of one window (and variant, e.g. a containment type)."""

    window_index: int
    variant: str | None
    skip: int
    limit: int
    generation: int = 0


class PageCap:
    """The largest page the server returns, learned from the first page it cut short."""

    def __init__(self, page_size: int) -> None:
        """Start from the page size asked for."""
        self.page_size = page_size
        self.learned: int | None = None

    @property
    def limit(self) -> int:
        """What to ask for: the page size, or the server's cap once known."""
        return min(self.page_size, self.learned) if self.learned else self.page_size

    def learn(self, asked: int, page: Page) -> None:
        """A page shorter than asked while more is available shows the server's cap."""
        got = len(page.records)
        if page.more_available and 0 < got < asked and (self.learned is None or got > self.learned):
            self.learned = got
            logger.info("the server returns at most %d records a page; planning with that", got)


@dataclass
class WindowPaging:
    """The paging of one window (and variant), as its answers come in.

    Attributes:
        window_index: The window's place in the bot's plan.
        variant: The filter of its requests (sessions of pre-9.0 servers: a containment type),
            or None.
        cap: The server's page cap, shared by every window of the run.
        listing: What the pages list (the id field that counts them, their name).
        label: How the window reads in messages.
        generation: Requests of an older generation (before a pre-9.0 switch) are stale.
        ids: Distinct records seen in every reading so far (only while the window is open).
        done: Every page is in, and the distinct records reach the total or the window was
            read as often as allowed.
        attempts: Readings of the window so far.
        shortfall: Why a done window is short of its total (its label and counts), or "".
    """

    window_index: int
    variant: str | None
    cap: PageCap
    listing: Listing
    label: str = ""
    generation: int = 0
    ids: set[str] = field(default_factory=set)
    done: bool = False
    attempts: int = 1
    shortfall: str = ""
    _outstanding: set[int] = field(default_factory=set)
    _asked: set[int] = field(default_factory=set)
    _frontier: int = 0
    _frontier_more: bool = False
    _total: int | None = None

    def first(self) -> PageRequest:
        """The window's first page (its answer shows the shape, the cap and the total)."""
        self._outstanding, self._asked = {0}, {0}
        return self._request(0)

    def take(self, request: PageRequest, page: Page, ids: list[str] | None = None) -> list[PageRequest]:
        """Take the answer to one of this window's requests: the requests that follow.

        Args:
            request: The request answered.
            page: Its answer.
            ids: The ids of the page's records, when the caller has read them already.

        Raises:
            KoreApiError: the page says more is available but holds nothing (it would loop).
        """
        self._outstanding.discard(request.skip)
        if ids is None:
            key = self.listing.id_key
            ids = [raw[key] for raw in page.records if isinstance(raw.get(key), str)]
        self.ids.update(ids)
        self.cap.learn(request.limit, page)
        refuse_endless_paging(page, request.skip, self.label)
        if page.total is not None:
            self._total = max(self._total or 0, page.total)
        end = request.skip + len(page.records)
        if end >= self._frontier:
            self._frontier, self._frontier_more = end, page.more_available
        skips: list[int] = []
        if request.skip == 0 and page.more_available and self._total and self.cap.learned:
            skips = list(range(end, self._total, self.cap.learned))
        elif self._cut_short(request, page, end):
            skips = [end]  # the records the page left out, up to where the next page begins
        if not skips and not self._outstanding and self._frontier_more:
            skips = [self._frontier]
        skips = [skip for skip in skips if skip not in self._asked]
        if not skips and not self._outstanding:
            return self._close()
        self._outstanding.update(skips)
        self._asked.update(skips)
        return [self._request(skip, self._room_after(skip)) for skip in skips]

    def _room_after(self, skip: int) -> int:
        """The page size to ask at `skip`: the cap, or less where a page already asked begins."""
        following = min((asked for asked in self._asked if asked > skip), default=None)
        return self.cap.limit if following is None else min(self.cap.limit, following - skip)

    def _cut_short(self, request: PageRequest, page: Page, end: int) -> bool:
        """Whether a page holds fewer records than asked (and the cap allows) while the window's
        total says more follow it: the server left a gap the planned pages do not cover."""
        asked = min(request.limit, self.cap.learned or request.limit)
        return bool(page.records) and len(page.records) < asked and end < (self._total or 0)

    def _request(self, skip: int, limit: int | None = None) -> PageRequest:
        """A page of this window (of the cap's size unless given)."""
        size = self.cap.limit if limit is None else limit
        return PageRequest(self.window_index, self.variant, skip, size, self.generation)

    def _close(self) -> list[PageRequest]:
        """Check the finished window against the total the API gave; read it again if short, or
        close it with its `shortfall` after the last reading."""
        total, seen = self._total, len(self.ids)
        if total is not None and total > seen:
            if self.attempts < MAX_WINDOW_ATTEMPTS:
                noun = self.listing.noun
                logger.info("%s gave %d of %d %s; reading it again", self.label, seen, total, noun)
                self.attempts += 1
                self._frontier, self._frontier_more, self._total = 0, False, None
                return [self.first()]
            readings = f"in {self.attempts} readings"
            counts = f"{seen} of the {total} {self.listing.noun} its total counts"
            self.shortfall = f"{self.label} gave {counts}, {readings}"
        self.done = True
        self.ids = set()  # only needed while the window is open: memory stays bounded
        return []


def refuse_endless_paging(page: Page, skip: int, label: str) -> None:
    """Fail on a page that says more is available but holds nothing (it would loop).

    Raises:
        KoreApiError: always, for such a page.
    """
    if page.more_available and not page.records:
        raise KoreApiError(
            f"{label}: the API said moreAvailable at skip={skip} but returned no records; "
            "stopping rather than looping"
        )
