"""Reading calendars into the busy copy, when it is stale: an edge like event dispatch, since it calls
the provider between its own short transactions (none stays open while a provider answers).

One-way calendars are read again when the copy is older than AVAILABILITY_MAX_AGE_SECONDS or does not
reach the window asked about; concurrent readers of one calendar share one read (a lease: the others
wait for it, then find the copy fresh). A calendar whose notifications keep the copy fresh (two-way)
is read by its sync run (`refresh_source`), never on a request. A provider that cannot be read leaves
the last copy in place: availability answers from it and says how old it is.

Every API guards a booking here (`guard_booking`, `guard_move`): stale calendars are read first,
outside the transaction, then the check runs under the account's lock in the caller's transaction.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import current_app

from ..appointments.models import SCHEDULED
from ..appointments.service import get_appointment
from ..extensions import db
from ..locking import Lease
from . import busy, service
from .busy import Source
from .rules import Rules
from .service import resolved

log = logging.getLogger(__name__)

READ_WAIT_SECONDS = 10  # a reader waits this long for another's read of the same calendar
BEHIND = timedelta(days=1)  # a read reaches back this far, for appointments starting now


def window_to_read(start: datetime, end: datetime, now: datetime) -> tuple[datetime, datetime]:
    """The horizon a read covers: from yesterday to AVAILABILITY_HORIZON_DAYS ahead, stretched to
    include the window asked about."""
    ahead = now + timedelta(days=current_app.config["AVAILABILITY_HORIZON_DAYS"])
    return min(start, now - BEHIND), max(end, ahead)


def refresh_stale(user_id: uuid.UUID, sources: list[Source], start: datetime, end: datetime, zone: ZoneInfo) -> None:
    """Read again every source whose copy is stale for [start, end) and not kept fresh by notifications."""
    if not sources:
        return
    max_age = timedelta(seconds=current_app.config["AVAILABILITY_MAX_AGE_SECONDS"])
    now = datetime.now(UTC)
    stored = busy.copies(user_id, sources)
    db.session.commit()
    for source in sources:
        provider, copy = busy.provider(source.provider), stored.get(source)
        if provider is None:
            continue  # not connected any more
        if busy.covers(copy, start, end) and (now - copy.read_at <= max_age
                                              or provider.pushed(user_id, source.calendar_id)):
            continue  # fresh by age, or kept fresh by notifications (a window beyond the copy is read)
        _read_once(user_id, source, start, end, zone, max_age)


def _read_once(user_id: uuid.UUID, source: Source, start: datetime, end: datetime, zone: ZoneInfo,
               max_age: timedelta) -> None:
    lease = Lease(f"callnfy:lock:busy-read:{user_id}:{source.provider}:{source.calendar_id}", wait=READ_WAIT_SECONDS)
    if not lease.acquire():  # another reader is slow, or Redis is away: answer from the copy
        return
    try:
        copy = busy.copies(user_id, [source]).get(source)
        db.session.commit()
        now = datetime.now(UTC)
        if busy.covers(copy, start, end) and now - copy.read_at <= max_age:
            return  # read by the reader this one waited for
        _read(user_id, source, window_to_read(start, end, now), zone)
    finally:
        lease.release()


def refresh_source(user_id: uuid.UUID, source: Source, zone: ZoneInfo) -> None:
    """Read a calendar now (its notifications said it changed); the caller holds no transaction."""
    now = datetime.now(UTC)
    _read(user_id, source, window_to_read(now, now, now), zone)


def _read(user_id: uuid.UUID, source: Source, window: tuple[datetime, datetime], zone: ZoneInfo) -> None:
    provider = busy.provider(source.provider)
    read_at = datetime.now(UTC)
    try:
        blocks = provider.read(user_id, source.calendar_id, window[0], window[1], zone)
    except busy.BusyUnavailable as exc:
        log.warning("a calendar could not be read; availability answers from the last copy", extra={
            "user_id": str(user_id), "provider": source.provider, "error": str(exc)[:200]})
        busy.record_failure(user_id, source, str(exc))
        db.session.commit()
        return
    busy.store(user_id, source, window, blocks, read_at)
    db.session.commit()


def before_reading(user_id: uuid.UUID, start: datetime, end: datetime) -> tuple[Rules, list[Source]]:
    """What `GET /availability` reads first: the stale copies of the window's calendars. Answers the
    owner's resolved settings, which the answer then uses."""
    owner, sources = resolved(user_id)
    reach = max(owner.before, owner.after)
    refresh_stale(user_id, sources, start - reach, end + reach, owner.zone)
    return owner, sources


def before_booking(user_id: uuid.UUID, start: datetime, minutes: int) -> None:
    """What a `requireFree` booking or a hold reads first, outside its own transaction."""
    before_reading(user_id, start, start + timedelta(minutes=minutes))


# -- guarding a booking: the two steps every API takes, in this order --------------------------------

def guard_booking(user_id: uuid.UUID, start: datetime, minutes: int, *, require_free: bool,
                  hold_id: uuid.UUID | None = None, hold_given: bool = False) -> None:
    """Before a new booking: read stale calendars outside the transaction, then check (and consume a
    hold) under the account's lock in the caller's transaction (`service.guard_booking`)."""
    if not require_free and not hold_given:
        return
    before_booking(user_id, start, minutes)
    service.guard_booking(user_id, start, minutes, require_free=require_free, hold_id=hold_id, hold_given=hold_given)


def guard_move(user_id: uuid.UUID, appointment_id: uuid.UUID, changes: dict) -> None:
    """Before a `requireFree` move: the slot the appointment will have, read again once the account's
    lock is held (a concurrent change to it is then seen). A move of an appointment that is not
    scheduled is left to the update, which refuses it (409 INVALID_TRANSITION)."""
    slot = _slot_after(user_id, appointment_id, changes)
    if slot is None:
        return
    db.session.commit()
    before_booking(user_id, *slot)  # outside the transaction: it may read a calendar
    service.lock_account(user_id)
    slot = _slot_after(user_id, appointment_id, changes)  # as it is now that bookings of the account wait
    if slot is not None:
        service.guard_booking(user_id, *slot, require_free=True, exclude_appointment=appointment_id)


def _slot_after(user_id: uuid.UUID, appointment_id: uuid.UUID, changes: dict) -> tuple[datetime, int] | None:
    """The start and length a scheduled appointment will have once `changes` apply (read afresh)."""
    db.session.expire_all()
    current = get_appointment(user_id, appointment_id)
    if current.status != SCHEDULED:
        return None
    return changes.get("scheduled_at", current.scheduled_at), changes.get("duration", current.duration)
