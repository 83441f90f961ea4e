"""The windows of one bot's load package, by every resource's rule: a repair's ranges, or a
bounded backfill's range, or from where the incremental walk begins to the loader's now (plus the
clock skew allowance), as many as the caller says (`windows_per_package` by default: a long
backfill, bounded or not, goes in several packages: bounded memory, also for dlt's merge of a
package, and the work done survives a crash; the caller runs again while a bot has more left),
and the windows left after them when they are a short tail (`windows.kept_with_tail`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime

from kore_sessions.source.api.rules import CLOCK_SKEW_ALLOWANCE
from kore_sessions.source.api.run import BotRun
from kore_sessions.source.api.windows import Window, first_windows, windows_of_ranges
from kore_sessions.source.config import RunConfig


def package_windows(
    config: RunConfig,
    repair_ranges: Sequence[tuple[datetime, datetime]],
    bot: BotRun,
    incremental_start: Callable[[], datetime],
    now: datetime,
    most_windows: int | None = None,
) -> list[Window]:
    """The windows of one bot's package, oldest first; a walk cut at `most_windows` says so in
    `bot.more_to_fetch`.

    Args:
        config: The run's configuration (its repair, bounded range, span and package size).
        repair_ranges: The bot's ranges of this resource a repair reloads (read with a repair only).
        bot: The run's record of the bot in the resource.
        incremental_start: Where the resource's incremental walk begins (called only for one).
        now: The loader's clock.
        most_windows: The windows the package takes, but for a short tail (default:
            `windows_per_package`).
    """
    if config.repair is not None:
        return windows_of_ranges(repair_ranges, config.window_span)
    if config.end_date is not None:  # a bounded backfill: its range, resumed where the run got to
        start, end = bot.walked_through or config.start_date, config.end_date
    else:
        start, end = incremental_start(), now + CLOCK_SKEW_ALLOWANCE
    most = most_windows or config.windows_per_package
    windows, bot.more_to_fetch = first_windows(start, end, config.window_span, most)
    if windows and start == bot.walked_through:
        # The run's previous package walked through `start`, both ends inclusive: what started
        # at that very instant it gave already (a first backfill appends: it must not come twice).
        windows[0] = replace(windows[0], owned_after=start)
    return windows
