"""The arithmetic of availability, with no I/O: working hours in the owner's time zone, buffers, notice,
busy intervals and the slots between them. Everything here takes and returns aware UTC datetimes.

Buffers: `buffer_before` minutes must be free before every appointment and `buffer_after` after it.
Growing both a scheduled appointment (or hold) and the candidate slot by them, and asking whether the
grown intervals overlap, asks exactly that: the gap between two appointments must hold the after-buffer
of the first and the before-buffer of the second. Calendar events have no buffers of their own: only
the candidate grows against them.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_WORKING_HOURS: dict[str, list[list[str]]] = {
    **{day: [["09:00", "17:00"]] for day in WEEKDAYS[:5]}, "sat": [], "sun": []}
DEFAULT_TIME_ZONE = "Europe/London"

# Sources of busy time, and of a refusal that is not busy time.
APPOINTMENT, HOLD = "appointment", "hold"
OUTSIDE_WORKING_HOURS, MIN_NOTICE = "outside_working_hours", "min_notice"


@dataclass(frozen=True, order=True)
class Busy:
    start: datetime
    end: datetime
    source: str


@dataclass(frozen=True)
class Rules:
    """An owner's settings, resolved (defaults applied)."""

    time_zone: str
    working_hours: dict[str, list[list[str]]]
    buffer_before: int = 0
    buffer_after: int = 0
    min_notice: int = 0

    # Computed once per answer (cached_property writes the instance's __dict__, which frozen allows).
    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @cached_property
    def before(self) -> timedelta:
        return timedelta(minutes=self.buffer_before)

    @cached_property
    def after(self) -> timedelta:
        return timedelta(minutes=self.buffer_after)


def _clock(value: str) -> time | None:
    """"HH:MM" as a time; "24:00" (the end of the day) as None."""
    return None if value == "24:00" else time.fromisoformat(value)


def _local(day: date, value: str, zone: ZoneInfo) -> datetime:
    """`day` at `value` in `zone`, as UTC. A wall time that does not exist (a DST gap: 01:30 on the
    spring-forward night) is read with the offset before the change, so it lands after the gap (02:30);
    one that exists twice (the autumn night) is its first occurrence (PEP 495's fold=0)."""
    clock = _clock(value)
    if clock is None:
        return local_midnight(day + timedelta(days=1), zone)
    return datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return _local(day, "00:00", zone)


def local_days(start: datetime, end: datetime, zone: ZoneInfo) -> Iterator[date]:
    """Every local date the window [start, end) touches."""
    day = start.astimezone(zone).date()
    last = (end - timedelta(microseconds=1)).astimezone(zone).date()
    while day <= last:
        yield day
        day += timedelta(days=1)


def working_intervals(rules: Rules, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The owner's working intervals touching [start, end), as UTC, in order."""
    zone = rules.zone
    intervals = []
    for day in local_days(start - timedelta(days=1), end + timedelta(days=1), zone):
        for opens, closes in rules.working_hours.get(WEEKDAYS[day.weekday()], []):
            first, last = _local(day, opens, zone), _local(day, closes, zone)
            if first < last and first < end and last > start:
                intervals.append((first, last))
    return sorted(intervals)


class BusyIndex:
    """Busy intervals sorted by start, asked "what overlaps [a, b)?" in O(log n + answers)."""

    def __init__(self, busy: Iterable[Busy]):
        self.items = sorted(busy)
        self.starts = [b.start for b in self.items]
        self.longest = max((b.end - b.start for b in self.items), default=timedelta(0))

    def overlapping(self, start: datetime, end: datetime) -> list[Busy]:
        first = bisect.bisect_left(self.starts, start - self.longest)
        last = bisect.bisect_left(self.starts, end)
        return [b for b in self.items[first:last] if b.end > start and b.start < end]


def conflicts(rules: Rules, index: BusyIndex, start: datetime, minutes: int, now: datetime) -> list[Busy]:
    """Why [start, start + minutes) cannot be booked: the busy intervals it meets (buffers included),
    the working hours it leaves, the notice it does not give. Empty when it is free."""
    end = start + timedelta(minutes=minutes)
    found = list(index.overlapping(start - rules.before, end + rules.after))
    if not any(opens <= start and end <= closes for opens, closes in working_intervals(rules, start, end)):
        found.append(Busy(start, end, OUTSIDE_WORKING_HOURS))
    earliest = now + timedelta(minutes=rules.min_notice)
    if start < earliest:
        found.append(Busy(now, earliest, MIN_NOTICE))
    return found


def slots(rules: Rules, index: BusyIndex, start: datetime, end: datetime, minutes: int, step: int,
          now: datetime) -> list[tuple[datetime, datetime]]:
    """The start times in [start, end) where `minutes` fit: inside one working interval, clear of busy
    time with the buffers, after the notice. Candidates are each working interval's opening plus
    multiples of `step`."""
    length, stride = timedelta(minutes=minutes), timedelta(minutes=step)
    earliest = max(start, now + timedelta(minutes=rules.min_notice))
    found = []
    for opens, closes in working_intervals(rules, start, end):
        candidate = opens
        if candidate < earliest:  # skip whole steps to the first candidate that gives notice
            candidate += stride * -(-(earliest - candidate) // stride)
        while candidate + length <= closes and candidate + length <= end:
            if not index.overlapping(candidate - rules.before, candidate + length + rules.after):
                found.append((candidate, candidate + length))
            candidate += stride
    return found
