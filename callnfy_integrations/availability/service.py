"""Availability: the owner's settings, their busy time and free slots, holds, and the check that makes a
`requireFree` booking safe. These functions only flush; the views commit (and read stale calendars
first, through `refresh.py`, outside the booking's transaction).

Booking cannot double-book because every `requireFree` booking, hold and hold-backed booking of an
account takes the same PostgreSQL advisory lock (`lock_account`) for its transaction before it checks
and writes: the second of two concurrent requests for one slot checks after the first committed, and
sees it. (An exclusion constraint could not include calendar events or the working hours.)
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, text

from ..appointments.models import SCHEDULED
from ..errors import Conflict, NotFound
from ..extensions import db
from ..timestamps import format_timestamp
from ..users.service import ensure_user
from . import busy, rules
from .busy import Source
from .models import AvailabilitySettings, Hold
from .rules import DEFAULT_TIME_ZONE, DEFAULT_WORKING_HOURS, Busy, BusyIndex, Rules

_ACCOUNT_LOCK = 0x61_76_6C  # pg_advisory_xact_lock(key, hashtext(user id)): one booking check at a time


class SlotUnavailable(Conflict):
    code = "SLOT_UNAVAILABLE"
    message = "That time is not available"

    def __init__(self, found: list[Busy]):
        super().__init__(self.message, details={"conflicts": [
            {"start": format_timestamp(b.start), "end": format_timestamp(b.end), "source": b.source}
            for b in sorted(found)]})


# -- settings ------------------------------------------------------------------------------------

def _row(user_id: uuid.UUID) -> AvailabilitySettings | None:
    return db.session.get(AvailabilitySettings, user_id)


def settings(user_id: uuid.UUID) -> dict[str, Any]:
    """The owner's settings with the defaults filled in (what `PUT` changes, and what applies)."""
    row = _row(user_id)
    chosen = row.busy_calendars if row is not None else None
    return {
        "time_zone": (row and row.time_zone) or busy.default_time_zone(user_id) or DEFAULT_TIME_ZONE,
        "working_hours": (row and row.working_hours) or DEFAULT_WORKING_HOURS,
        "buffer_before": row.buffer_before if row else 0,
        "buffer_after": row.buffer_after if row else 0,
        "min_notice": row.min_notice if row else 0,
        "busy_calendars": [s.as_json() for s in _sources(user_id, chosen)],
    }


def update_settings(user_id: uuid.UUID, changes: dict[str, Any]) -> dict[str, Any]:
    """Change any subset of the settings (already validated by the schema)."""
    ensure_user(user_id)
    row = _row(user_id)
    if row is None:
        row = AvailabilitySettings(user_id=user_id)
        db.session.add(row)
    for field, value in changes.items():
        setattr(row, field, value)
    db.session.flush()
    return settings(user_id)


def _sources(user_id: uuid.UUID, chosen: list | None) -> list[Source]:
    """The calendars that count as busy: the owner's choice among providers still known, else each
    connected provider's calendar."""
    if chosen is None:
        return busy.default_sources(user_id)
    known = set(busy.provider_names())
    return [Source(item["provider"], item["calendarId"]) for item in chosen if item.get("provider") in known]


def resolved(user_id: uuid.UUID) -> tuple[Rules, list[Source]]:
    values = settings(user_id)
    return (Rules(values["time_zone"], values["working_hours"], values["buffer_before"], values["buffer_after"],
                  values["min_notice"]),
            [Source(item["provider"], item["calendarId"]) for item in values["busy_calendars"]])


# -- busy time and slots --------------------------------------------------------------------------

# Everything busy near a window, in one place: scheduled appointments and live holds grown by the
# buffers (a hold stops blocking at `expires_at` exactly: the query says so, no sweeper), and the busy
# blocks of the chosen calendars. A grown interval counts when it meets the window grown by the larger
# buffer, so a gap must hold both buffers. An appointment lasts at most a day.
_NEAR = """
    SELECT 'appointment' AS source,
           tstzrange(scheduled_at - :before, scheduled_at + make_interval(mins => duration) + :after) AS span
    FROM appointments
    WHERE user_id = :user_id AND status = :scheduled AND id IS DISTINCT FROM CAST(:exclude_appointment AS uuid)
      AND scheduled_at < :near_end AND scheduled_at > :near_start - interval '1 day'
    UNION ALL
    SELECT 'hold', tstzrange(scheduled_at - :before, scheduled_at + make_interval(mins => duration) + :after)
    FROM availability_holds
    WHERE user_id = :user_id AND consumed_at IS NULL AND expires_at > :now
      AND id IS DISTINCT FROM CAST(:exclude_hold AS uuid)
      AND scheduled_at < :near_end AND scheduled_at > :near_start - interval '1 day'
    UNION ALL
    SELECT b.provider, tstzrange(b.starts_at, b.ends_at)
    FROM busy_blocks b
    JOIN unnest(CAST(:providers AS text[]), CAST(:calendars AS text[])) AS chosen(provider, calendar_id)
      ON chosen.provider = b.provider AND chosen.calendar_id = b.calendar_id
    WHERE b.user_id = :user_id AND b.starts_at < :near_end AND b.ends_at > :near_start
"""
_BUSY = text(f"""
    SELECT source, lower(span), upper(span) FROM ({_NEAR}) AS near
    WHERE span && tstzrange(:near_start, :near_end)
    ORDER BY 2, 3, 1
""")
# The same, merged per source (`range_agg` joins overlapping and touching ranges): a week can hold
# hundreds of appointments and events, and an answer needs only their union.
_MERGED_BUSY = text(f"""
    SELECT source, lower(merged), upper(merged)
    FROM (SELECT source, unnest(range_agg(span)) AS merged FROM ({_NEAR}) AS near
          WHERE span && tstzrange(:near_start, :near_end) GROUP BY source) AS per_source
    ORDER BY 2, 1
""")


def _near(query, user_id: uuid.UUID, owner: Rules, sources: list[Source], start: datetime, end: datetime,
          now: datetime, exclude_appointment: uuid.UUID | None = None,
          exclude_hold: uuid.UUID | None = None) -> list[Busy]:
    reach = max(owner.before, owner.after)
    rows = db.session.execute(query, {
        "user_id": user_id, "scheduled": SCHEDULED, "before": owner.before, "after": owner.after, "now": now,
        "near_start": start - reach, "near_end": end + reach,
        "exclude_appointment": exclude_appointment, "exclude_hold": exclude_hold,
        "providers": [s.provider for s in sources], "calendars": [s.calendar_id for s in sources]})
    return [Busy(first, last, source) for source, first, last in rows]


def busy_time(user_id: uuid.UUID, owner: Rules, sources: list[Source], start: datetime, end: datetime,
              now: datetime, *, exclude_appointment: uuid.UUID | None = None,
              exclude_hold: uuid.UUID | None = None) -> list[Busy]:
    """Each busy item near [start, end), in order: what a booking is checked against and its 409 lists."""
    return _near(_BUSY, user_id, owner, sources, start, end, now, exclude_appointment, exclude_hold)


def merged_busy_time(user_id: uuid.UUID, owner: Rules, sources: list[Source], start: datetime, end: datetime,
                     now: datetime) -> list[Busy]:
    """`busy_time` with the intervals of each source merged, by start: what an answer shows and what
    slots are cut from (the same slots either way)."""
    return _near(_MERGED_BUSY, user_id, owner, sources, start, end, now)


def busy_as_of(user_id: uuid.UUID, sources: list[Source], now: datetime) -> datetime | None:
    """How old the busy data is: the oldest calendar read (now when no calendar counts; None when a
    calendar that counts was never read)."""
    stored = busy.copies(user_id, sources)
    if any(source not in stored for source in sources):
        return None
    return min((copy.read_at for copy in stored.values()), default=now)


def availability(user_id: uuid.UUID, start: datetime, end: datetime, duration: int | None, step: int,
                 settings_now: tuple[Rules, list[Source]] | None = None) -> dict[str, Any]:
    """Busy intervals of [start, end) and, with `duration`, the free slots; from the copy only.
    `settings_now`: the owner's resolved settings, when the caller has just read them."""
    owner, sources = settings_now or resolved(user_id)
    now = datetime.now(UTC)
    found = merged_busy_time(user_id, owner, sources, start, end, now)
    answer: dict[str, Any] = {"time_zone": owner.time_zone, "busy_as_of": busy_as_of(user_id, sources, now),
                              "busy": [b for b in found if b.end > start and b.start < end]}
    if duration is not None:
        answer["slots"] = rules.slots(owner, BusyIndex(found), start, end, duration, step, now)
    return answer


# -- booking --------------------------------------------------------------------------------------

def lock_account(user_id: uuid.UUID) -> None:
    """Serialise this account's booking checks until the caller's transaction ends."""
    db.session.execute(text("SELECT pg_advisory_xact_lock(:key, hashtext(:user_id))"),
                       {"key": _ACCOUNT_LOCK, "user_id": str(user_id)})


def require_free_slot(user_id: uuid.UUID, start: datetime, minutes: int, *,
                 exclude_appointment: uuid.UUID | None = None, exclude_hold: uuid.UUID | None = None) -> None:
    """409 SLOT_UNAVAILABLE unless [start, start + minutes) is bookable now. The caller holds `lock_account`."""
    owner, sources = resolved(user_id)
    now = _database_now()
    end = start + timedelta(minutes=minutes)
    found = busy_time(user_id, owner, sources, start, end, now, exclude_appointment=exclude_appointment,
                      exclude_hold=exclude_hold)
    problems = rules.conflicts(owner, BusyIndex(found), start, minutes, now)
    if problems:
        raise SlotUnavailable(problems)


def _database_now() -> datetime:
    """The database's clock, which decides when a hold expires (the same clock wherever the check runs)."""
    return db.session.scalar(text("SELECT clock_timestamp()"))


def use_hold(user_id: uuid.UUID, hold_id: uuid.UUID | None, start: datetime, minutes: int) -> bool:
    """Consume the owner's live hold covering [start, start + minutes): True when there is one, and the
    booking needs no other check. An unknown hold is a 404; an expired or used one is no hold at all."""
    hold = db.session.scalars(select(Hold).where(Hold.id == hold_id, Hold.user_id == user_id)
                              .with_for_update()).one_or_none() if hold_id else None
    if hold is None:
        raise NotFound("Hold not found")
    now = _database_now()
    covers = hold.scheduled_at <= start and start + timedelta(minutes=minutes) <= \
        hold.scheduled_at + timedelta(minutes=hold.duration)
    if hold.consumed_at is not None or hold.expires_at <= now or not covers:
        return False
    hold.consumed_at = now
    db.session.flush()
    return True


def guard_booking(user_id: uuid.UUID, start: datetime, minutes: int, *, require_free: bool,
                  hold_id: uuid.UUID | None = None, hold_given: bool = False,
                  exclude_appointment: uuid.UUID | None = None) -> None:
    """Before a booking or a move in the caller's transaction: with a live hold of the slot, consume it
    (the booking always succeeds); else, with `require_free` or a hold that no longer holds, take the
    account's lock and refuse a slot that is not free (409 SLOT_UNAVAILABLE)."""
    if not require_free and not hold_given:
        return
    lock_account(user_id)
    if hold_given and use_hold(user_id, hold_id, start, minutes):
        return
    require_free_slot(user_id, start, minutes, exclude_appointment=exclude_appointment, exclude_hold=hold_id)


# -- holds ----------------------------------------------------------------------------------------

def create_hold(user_id: uuid.UUID, start: datetime, minutes: int, ttl: int) -> Hold:
    """Keep a free slot for `ttl` seconds (409 SLOT_UNAVAILABLE when it is not free)."""
    ensure_user(user_id)
    lock_account(user_id)
    require_free_slot(user_id, start, minutes)
    hold = Hold(id=uuid.uuid4(), user_id=user_id, scheduled_at=start, duration=minutes,
                expires_at=_database_now() + timedelta(seconds=ttl))
    db.session.add(hold)
    db.session.flush()
    return hold


def release_hold(user_id: uuid.UUID, hold_id: uuid.UUID | None) -> None:
    hold = db.session.scalars(select(Hold).where(Hold.id == hold_id, Hold.user_id == user_id)).one_or_none() \
        if hold_id else None
    if hold is None:
        raise NotFound("Hold not found")
    db.session.delete(hold)
    db.session.flush()
