"""The walk of one bot's session windows: `WindowWalk` with the sessions' own rules.

`BotExtractor` plans a bot's windows of one load package (`kore_sessions.source.package_windows`),
walks them as every resource does (`kore_sessions.source.api.walk`), and switches to asking per containment
type when the server answers in the pre-9.0 shape. Every bot's extractor runs on the pool at
once (`kore_sessions.source.api.walk.fetch_concurrently`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, NamedTuple

from kore_sessions.source.api.answers import Page
from kore_sessions.source.api.client import KoreClient
from kore_sessions.source.api.page_columns import ColumnarPage
from kore_sessions.source.api.paging import PageCap, PageRequest
from kore_sessions.source.api.run import SourceRun
from kore_sessions.source.api.walk import WindowWalk
from kore_sessions.source.api.windows import Window
from kore_sessions.source.config import RunConfig
from kore_sessions.source.package_windows import package_windows
from kore_sessions.source.sessions.columnar_sessions import session_columns
from kore_sessions.source.sessions.endpoint import SESSIONS_LISTING, AnswerShape, get_sessions_page
from kore_sessions.source.sessions.open_sessions import SessionsBotState
from kore_sessions.source.sessions.records import is_legacy_shape, to_row
from kore_sessions.source.sessions.refresh import Refresher, mark_legacy
from kore_sessions.source.sessions.spec import PRIMARY_KEY, SESSIONS_TABLE
from kore_sessions.source.settings import SESSIONS_PER_APPENDED_PACKAGE, SESSIONS_PER_MERGED_PACKAGE


class BotExtractor(WindowWalk):
    """Fetches one bot's sessions for one load package and keeps its state up to date.

    The walk of `WindowWalk`, with the sessions' own: the getSessions call, rows from raw
    sessions, open sessions tracked, a switch to asking per containment type when the server
    answers in the pre-9.0 shape, and `finish`, which refreshes the open sessions (or verifies
    a repair's held sessions).
    """

    def __init__(
        self,
        client: KoreClient,
        bot_key: str,
        bot_state: dict[str, Any],
        config: RunConfig,
        run: SourceRun,
        cap: PageCap | None = None,
    ) -> None:
        """Plan the bot's windows of this package from its state and the run so far."""
        state = SessionsBotState(bot_state, bot_key, run)
        self.client = client
        self.config = config
        self.now = config.clock()
        size = package_size(config, run)
        windows = [] if state.bot.finished else self._package_windows(config, state, size.windows)
        cap = cap or PageCap(config.page_size)
        walk = (bot_key, state, run, cap, SESSIONS_LISTING, windows, config.bounded)
        super().__init__(*walk, size.sessions, size.least_windows)
        self.state: SessionsBotState = state  # the walk's state, with the open sessions
        self.shape = AnswerShape()
        self.refresher = Refresher(client, bot_key, state, run, self.shape, cap, self.now)
        # A repair checks the sessions the warehouse holds against every id its windows list.
        self.listed: set[str] | None = set() if config.repair else None

    def _package_windows(self, config: RunConfig, state: SessionsBotState, most: int) -> list[Window]:
        """The windows of this package, at most `most`: a repair's ranges, the bounded range, or
        from the cursor less lookback (or where this run's previous package stopped) to now."""
        ranges = config.repair.ranges.get(state.bot_key, ()) if config.repair else ()
        start = partial(state.incremental_start, config)
        return package_windows(config, ranges, state.bot, start, self.now, most)

    def call(self, request: PageRequest) -> Callable[[], Page]:
        """The getSessions call that answers a request."""
        window = self.windows[request.window_index]
        return partial(get_sessions_page, self.client, self.bot_key, window, request)

    def to_row(self, raw: dict[str, Any], request: PageRequest) -> dict[str, Any]:
        """A raw session as a row (its containment from the request on a pre-9.0 server)."""
        row = to_row(raw, request.variant)
        if self.listed is not None:
            self.listed.add(row["session_id"])
        return row

    def columns(self, records: list[dict[str, Any]], request: PageRequest) -> ColumnarPage | None:
        """A page of sessions built column by column, or None when it needs the record transform."""
        page = session_columns(records, request.variant)
        if page is not None and self.listed is not None:
            self.listed.update(page.column(PRIMARY_KEY).to_pylist())
        return page

    def variants(self) -> tuple[str | None, ...]:
        """Nothing, or each containment type once the server answers in the pre-9.0 shape."""
        return self.shape.containment_types

    def took(self, row: dict[str, Any]) -> None:
        """Track the session: open ones are refreshed until they close."""
        self.state.track(row)

    def took_page(self, page: ColumnarPage) -> None:
        """Track the sessions of a page built column by column (only open ones cost Python)."""
        self.state.track_page(page.root)

    def handle(self, request: PageRequest, page: Page) -> tuple[list[dict[str, Any]], list[PageRequest]]:
        """Take one answer; the first page in the pre-9.0 shape starts the walk again, asking per
        containment type (only first pages with sessions show the shape: nothing was loaded)."""
        current = request.generation == self.generation
        if current and request.skip == 0 and not self.shape.legacy and is_legacy_shape(page.records):
            self.run.add("pages")
            mark_legacy(self.shape, self.run, self.bot_key)
            return [], self.start_again()
        return super().handle(request, page)

    def finish(self) -> Iterator[dict[str, Any]]:
        """After every window of the package: in the run's last package of the bot, refresh the
        open sessions this run has not fetched (a repair: verify the held ones); save the state."""
        bot = self.state.bot
        if bot.finished:
            return
        if not bot.more_to_fetch:
            if self.config.repair is not None and self.listed is not None:
                held = self.config.repair.held_ids.get(self.bot_key, frozenset())
                yield from self.refresher.verify_held(held, self.listed)
            elif self.config.end_date is not None:
                if not self.stopped:  # a window short of its total: the range is not loaded
                    self.state.bounded_backfill_loaded(self.config.start_date, self.config.end_date)
            else:
                yield from self.refresher.refresh_open_sessions()
                self.state.finish_run()
            bot.finished = True
        self.state.save_open_sessions()


class PackageSize(NamedTuple):
    """How large one bot's package of sessions is.

    Attributes:
        windows: The windows it takes (and a short tail that ends the walk).
        sessions: About how many sessions of the bot it may hold: after the bot's first window it
            keeps as many windows as hold that many at that window's count (None: uncut).
        least_windows: The fewest windows it keeps when cut.
    """

    windows: int
    sessions: int | None
    least_windows: int = 1


def package_size(config: RunConfig, run: SourceRun) -> PackageSize:
    """How large a bot's package of sessions is, its share of the package's sessions even among
    the package's bots.

    DuckDB holds a merge in memory (SESSIONS_PER_MERGED_PACKAGE), and writes an append of a row
    group or more straight to its file: a first backfill into it takes up to
    `appended_windows_per_package` windows, cut at SESSIONS_PER_APPENDED_PACKAGE but never below
    `windows_per_package` (a small share of a busy bot among many would make it smaller than
    before). Elsewhere an append keeps `windows_per_package` uncut (PostgreSQL: see
    SESSIONS_PER_APPENDED_PACKAGE), and a repair's ranges are one package.

    Args:
        config: The run's configuration (its bots, repair and window counts).
        run: The source's run: whether its sessions append, and into DuckDB.
    """
    if config.repair is not None:
        return PackageSize(config.windows_per_package, None)
    bots = max(1, len(config.bot_keys))
    if not run.appending.get(SESSIONS_TABLE, False):
        return PackageSize(config.windows_per_package, max(1, SESSIONS_PER_MERGED_PACKAGE // bots))
    if run.large_appends:
        windows = max(config.appended_windows_per_package, config.windows_per_package)
        share = max(1, SESSIONS_PER_APPENDED_PACKAGE // bots)
        return PackageSize(windows, share, least_windows=config.windows_per_package)
    return PackageSize(config.windows_per_package, None)
