"""The run record is resource-agnostic: any resource counts under its own noun and keeps its
own record of the run, and a new run starts them all anew."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from kore_sessions.source import SourceRun
from kore_sessions.source.sessions.run_record import SessionsRecord, sessions_record

pytestmark = pytest.mark.unit


@dataclass
class MessagesRecord:
    """A second resource's record, as a resource would define it in its own package."""

    sessions_read: set[str] = field(default_factory=set)


def test_a_second_resource_counts_under_its_own_noun() -> None:
    run = SourceRun()
    run.add("sessions", 5)
    run.add("messages", 3)
    run.add("messages", 4)
    run.add("pages", 2)
    assert run.totals.of("sessions") == 5 and run.totals.of("messages") == 7
    assert run.totals.pages == 2 and run.totals.of("refreshed") == 0


def test_each_resource_keeps_its_own_record_made_once() -> None:
    run = SourceRun()
    messages = run.record("messages", MessagesRecord)
    messages.sessions_read.add("s-1")
    assert run.record("messages", MessagesRecord) is messages
    assert isinstance(sessions_record(run), SessionsRecord)
    assert sessions_record(run) is not messages and sessions_record(run) is sessions_record(run)


def test_a_new_run_starts_counts_and_records_anew_but_a_continued_one_keeps_them() -> None:
    run = SourceRun()
    run.begin_package("sessions")
    run.begin_package("messages")  # another resource's first package: the same run
    run.bot("sessions", "st-a").more_to_fetch = True
    run.add("messages", 3)
    run.record("messages", MessagesRecord).sessions_read.add("s-1")
    run.begin_package("sessions")  # more to fetch: the same run goes on
    run.begin_package("messages")
    assert run.totals.of("messages") == 3 and run.record("messages", MessagesRecord).sessions_read
    run.bot("sessions", "st-a").more_to_fetch = False
    run.begin_package("sessions")  # nothing left: the source was called again, a new run
    assert run.totals.of("messages") == 0 and not run.record("messages", MessagesRecord).sessions_read
    run.add("messages", 2)
    run.begin_package("messages")  # the new run's first package of messages: counts stay
    assert run.totals.of("messages") == 2


def test_a_resource_that_finished_in_this_round_does_not_end_the_run_of_the_others() -> None:
    """Sessions need a second round, messages do not: when the sessions' second package has
    finished, the messages' begins in the same round, and the run (its short window, its
    counts) goes on; the source run again starts anew."""
    run = SourceRun()
    run.begin_package("sessions")
    run.bot("sessions", "st-a").more_to_fetch = True
    run.begin_package("messages")
    run.bot("messages", "st-a").finished = True
    run.begin_package("sessions")  # round 2: more was left
    run.bot("sessions", "st-a").more_to_fetch = False
    run.short_windows.append("bot st-a: window ... gave 2 of the 3 sessions")
    run.add("sessions", 5)
    run.begin_package("messages")  # the same round: nothing is reset
    assert run.short_windows and run.totals.of("sessions") == 5 and run.bot("messages", "st-a").finished
    run.begin_package("sessions")  # round 3 with nothing left: a new run
    assert not run.short_windows and run.totals.of("sessions") == 0 and not run.bots
