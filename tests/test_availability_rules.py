"""The arithmetic of availability as a table of cases: working hours across time zones and DST changes,
buffers, notice, holds' and appointments' busy time. Pure functions: no database, no clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from callnfy_integrations.availability import rules
from callnfy_integrations.availability.rules import (
    APPOINTMENT,
    DEFAULT_WORKING_HOURS,
    HOLD,
    MIN_NOTICE,
    OUTSIDE_WORKING_HOURS,
    Busy,
    BusyIndex,
    Rules,
)

LONDON = Rules("Europe/London", DEFAULT_WORKING_HOURS)
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


def grown(busy: Busy, owner: Rules) -> Busy:
    """Appointments and holds carry the buffers; calendar events do not (as service.busy_time's query)."""
    if busy.source in (APPOINTMENT, HOLD):
        return Busy(busy.start - owner.before, busy.end + owner.after, busy.source)
    return busy


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def starts(found) -> list[str]:
    return [start.strftime("%Y-%m-%dT%H:%MZ") for start, _ in found]


@pytest.mark.parametrize("case, day, first, last", [
    ("London in winter: 09:00 GMT", utc(2026, 12, 14), "2026-12-14T09:00Z", "2026-12-14T16:00Z"),
    ("London in summer: 09:00 BST is 08:00 UTC", utc(2026, 7, 13), "2026-07-13T08:00Z", "2026-07-13T15:00Z"),
    ("the Monday after the clocks go forward", utc(2027, 3, 29), "2027-03-29T08:00Z", "2027-03-29T15:00Z"),
    ("the Monday after the clocks go back", utc(2026, 10, 26), "2026-10-26T09:00Z", "2026-10-26T16:00Z"),
])
def test_working_hours_are_local_wall_time(case, day, first, last):
    found = rules.slots(LONDON, BusyIndex([]), day, day + timedelta(days=1), 60, 60, LONG_AGO)
    assert (starts(found)[0], starts(found)[-1], len(found)) == (first, last, 8), case


def test_a_day_that_loses_an_hour_has_one_slot_less():
    """New York, 14 March 2027: 02:00 becomes 03:00. Open 01:00-04:00 local is two real hours."""
    every_day = {day: [["01:00", "04:00"]] for day in rules.WEEKDAYS}
    owner = Rules("America/New_York", every_day)
    found = rules.slots(owner, BusyIndex([]), utc(2027, 3, 14, 5), utc(2027, 3, 14, 10), 60, 60, LONG_AGO)
    assert starts(found) == ["2027-03-14T06:00Z", "2027-03-14T07:00Z"]  # 01:00 EST, 03:00 EDT


def test_a_day_that_gains_an_hour_has_one_slot_more():
    """New York, 7 November 2027: 02:00 becomes 01:00 again. Open 00:00-03:00 local is four real hours."""
    every_day = {day: [["00:00", "03:00"]] for day in rules.WEEKDAYS}
    owner = Rules("America/New_York", every_day)
    found = rules.slots(owner, BusyIndex([]), utc(2027, 11, 7, 3), utc(2027, 11, 7, 10), 60, 60, LONG_AGO)
    assert starts(found) == ["2027-11-07T04:00Z", "2027-11-07T05:00Z", "2027-11-07T06:00Z", "2027-11-07T07:00Z"]


def test_an_interval_that_ends_at_midnight_and_a_closed_day():
    hours = {**{day: [] for day in rules.WEEKDAYS}, "tue": [["22:00", "24:00"]]}
    owner = Rules("UTC", hours)
    week = rules.slots(owner, BusyIndex([]), utc(2026, 12, 14), utc(2026, 12, 21), 60, 60, LONG_AGO)
    assert starts(week) == ["2026-12-15T22:00Z", "2026-12-15T23:00Z"]


APPOINTMENT_AT_TEN = Busy(utc(2026, 12, 14, 10), utc(2026, 12, 14, 10, 30), APPOINTMENT)


@pytest.mark.parametrize("case, owner, busy, start, free", [
    ("free", LONDON, [], utc(2026, 12, 14, 11), True),
    ("overlaps an appointment", LONDON, [APPOINTMENT_AT_TEN], utc(2026, 12, 14, 10, 15), False),
    ("right after it", LONDON, [APPOINTMENT_AT_TEN], utc(2026, 12, 14, 10, 30), True),
    ("right after it, inside its after-buffer", Rules("Europe/London", DEFAULT_WORKING_HOURS, buffer_after=15),
     [APPOINTMENT_AT_TEN], utc(2026, 12, 14, 10, 30), False),
    ("after its after-buffer", Rules("Europe/London", DEFAULT_WORKING_HOURS, buffer_after=15),
     [APPOINTMENT_AT_TEN], utc(2026, 12, 14, 10, 45), True),
    ("ends right before it, but needs its before-buffer", Rules("Europe/London", DEFAULT_WORKING_HOURS,
                                                                buffer_before=10),
     [APPOINTMENT_AT_TEN], utc(2026, 12, 14, 9, 30), False),
    ("ends before its before-buffer", Rules("Europe/London", DEFAULT_WORKING_HOURS, buffer_before=10),
     [APPOINTMENT_AT_TEN], utc(2026, 12, 14, 9, 20), True),
    ("a calendar event has no buffers, the new slot does", Rules("Europe/London", DEFAULT_WORKING_HOURS,
                                                                 buffer_after=15),
     [Busy(utc(2026, 12, 14, 11), utc(2026, 12, 14, 12), "google")], utc(2026, 12, 14, 10, 20), False),
    ("a hold blocks like an appointment", LONDON, [Busy(utc(2026, 12, 14, 11), utc(2026, 12, 14, 12), HOLD)],
     utc(2026, 12, 14, 11, 30), False),
])
def test_busy_time_and_buffers(case, owner, busy, start, free):
    index = BusyIndex([grown(b, owner) for b in busy])
    assert (not rules.conflicts(owner, index, start, 30, LONG_AGO)) is free, case


def test_the_gap_between_two_appointments_holds_the_first_ones_after_and_the_seconds_before_buffer():
    owner = Rules("Europe/London", DEFAULT_WORKING_HOURS, buffer_before=10, buffer_after=15)
    index = BusyIndex([grown(APPOINTMENT_AT_TEN, owner)])
    assert rules.conflicts(owner, index, utc(2026, 12, 14, 10, 54), 30, LONG_AGO)  # a 24-minute gap
    assert not rules.conflicts(owner, index, utc(2026, 12, 14, 10, 55), 30, LONG_AGO)  # 25 = 15 + 10


def test_outside_working_hours_and_inside_the_notice_are_conflicts_of_their_own():
    owner = Rules("Europe/London", DEFAULT_WORKING_HOURS, min_notice=120)
    now = utc(2026, 12, 14, 9)
    found = rules.conflicts(owner, BusyIndex([]), utc(2026, 12, 14, 10), 30, now)
    assert [b.source for b in found] == [MIN_NOTICE] and found[0].end == utc(2026, 12, 14, 11)
    found = rules.conflicts(owner, BusyIndex([]), utc(2026, 12, 14, 16, 45), 30, now)  # ends 17:15
    assert [b.source for b in found] == [OUTSIDE_WORKING_HOURS]
    found = rules.conflicts(owner, BusyIndex([]), utc(2026, 12, 19, 10), 30, now)  # a Saturday
    assert [b.source for b in found] == [OUTSIDE_WORKING_HOURS]


def test_slots_step_from_the_opening_and_start_after_the_notice():
    owner = Rules("Europe/London", DEFAULT_WORKING_HOURS, min_notice=60)
    now = utc(2026, 12, 14, 9, 7)
    found = rules.slots(owner, BusyIndex([]), utc(2026, 12, 14), utc(2026, 12, 14, 12), 30, 15, now)
    assert starts(found)[:3] == ["2026-12-14T10:15Z", "2026-12-14T10:30Z", "2026-12-14T10:45Z"]
    assert starts(found)[-1] == "2026-12-14T11:30Z"  # the window ends at 12:00


def test_a_long_busy_interval_is_found_however_early_it_starts():
    """An all-day event starts hours before the slot asked about: the index still finds it."""
    all_day = Busy(utc(2026, 12, 14), utc(2026, 12, 15), "google")
    short = Busy(utc(2026, 12, 14, 8), utc(2026, 12, 14, 8, 30), APPOINTMENT)
    index = BusyIndex([all_day, short])
    assert index.overlapping(utc(2026, 12, 14, 15), utc(2026, 12, 14, 15, 30)) == [all_day]
