"""Running one-way pushes: the steps behind `jobs.google.sync_appointments`, `backfill_calendar` and
`sweep_google_sync`.

Like event dispatch, these are edges: each step commits its own work (the services in `sync.py` only
flush), and no transaction stays open while Google answers. `jobs/google.py` only names them for RQ.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from redis.exceptions import RedisError

from ..extensions import db
from ..locking import Lease
from ..process_flags import stopping
from ..queues import CALENDAR, enqueue, enqueue_in
from . import calendar_api, oauth, sync
from .tokens import ReauthorizationRequired

log = logging.getLogger(__name__)

PUSH_LOCK_WAIT_SECONDS = 30


def push_lease(appointment_id: uuid.UUID) -> Lease:
    """The lock every write of this appointment's Google state takes: a push, and two-way sync applying
    a Google change to it (so neither records its outcome over the other's)."""
    return Lease(f"callnfy:lock:google-push:{appointment_id}", wait=PUSH_LOCK_WAIT_SECONDS)


def push_batch(appointment_ids: list[str]) -> int:
    """Make Google match each appointment's current state; returns how many were pushed.

    Our per-user quota may run out mid-batch: the rest is re-enqueued for when it frees up. On SIGTERM
    the rest goes to another worker."""
    for index, appointment_id in enumerate(appointment_ids):
        if index and stopping():
            enqueue(sync.SYNC_JOB, appointment_ids[index:], queue=CALENDAR, result_ttl=0)
            return index
        wait = push_appointment(uuid.UUID(appointment_id))
        if wait is not None:
            _enqueue_later(wait, appointment_ids[index:])
            return index
    return len(appointment_ids)


def push_appointment(appointment_id: uuid.UUID) -> float | None:
    """One appointment, serialised with other pushes of it; returns seconds to wait when over quota."""
    lock = push_lease(appointment_id)
    if not lock.acquire():  # another push of it is stuck or Redis is away: the sweeper re-drives it
        return None
    try:
        push = sync.plan_push(appointment_id)
        db.session.commit()  # no transaction stays open while Google answers
        return _send(push) if push is not None else None
    finally:
        lock.release()


def _send(push: sync.Push) -> float | None:
    """Send the push and record how it went; the seconds to wait when over quota, else None."""
    try:
        sent = sync.send_push(push)
    except sync.QuotaWait as wait:
        sync.record_quota_wait(push, wait.seconds)
        db.session.commit()
        return wait.seconds
    except Exception as exc:  # sorted by `_record_failure`, which raises again what it does not know
        retry_in = _record_failure(push, exc)
    else:
        # Changed while this push ran: push the current state now.
        retry_in = 0.0 if sync.record_success(push, sent) else None
    db.session.commit()
    if retry_in == 0.0:
        sync.enqueue_pushes([(push.user_id, push.appointment_id)])
    elif retry_in is not None:
        _enqueue_later(retry_in, [str(push.appointment_id)])
    return None


def _record_failure(push: sync.Push, exc: Exception) -> float | None:
    """Record why the push failed; the seconds until its retry, or None when it is not retried now."""
    if isinstance(exc, ReauthorizationRequired):
        sync.record_reconnect_needed(push)
    elif isinstance(exc, (calendar_api.RetryLater, oauth.GoogleUnavailable)):
        return sync.record_retry(push, exc)
    elif isinstance(exc, calendar_api.CalendarError):  # Rejected, or a second 401 right after a refresh
        sync.record_rejected(push, exc)
    elif not isinstance(exc, LookupError):  # LookupError: disconnected meanwhile
        raise exc
    return None


def _enqueue_later(seconds: float, appointment_ids: list[str]) -> None:
    try:
        enqueue_in(timedelta(seconds=seconds), sync.SYNC_JOB, appointment_ids, queue=CALENDAR, result_ttl=0)
    except RedisError:
        log.warning("could not schedule calendar pushes; the sweeper will", exc_info=True)


def backfill(owner: uuid.UUID) -> int:
    """After (re)connect: learn the calendar's time zone once, then push the user's pending
    appointments in batches (each push takes a slot of the per-user quota)."""
    integration = sync.connected_integration(owner)
    db.session.commit()
    if integration is None:
        return 0
    if not integration.calendar_time_zone:
        try:
            zone_name = sync.fetch_time_zone(integration.id, integration.calendar_id or "primary")
        except sync.QuotaWait as wait:
            enqueue_in(timedelta(seconds=wait.seconds), sync.BACKFILL_JOB, str(owner), queue=CALENDAR, result_ttl=0)
            return 0
        except (calendar_api.CalendarError, oauth.GoogleUnavailable, ReauthorizationRequired, LookupError):
            log.warning("could not learn the calendar's time zone; the first push will",
                        extra={"user_id": str(owner)})
        else:
            sync.store_time_zone(integration.id, zone_name)
            db.session.commit()
    items = sync.pending_of_user(owner)
    db.session.commit()
    sync.enqueue_pushes(items)
    return len(items)


def sweep() -> int:
    """Re-drive pushes that are due and not done: lost jobs, a flushed Redis, a dead worker."""
    items = sync.claim_due()
    db.session.commit()
    if items:
        log.info("calendar sweep re-enqueued pushes", extra={"count": len(items)})
        sync.enqueue_pushes(items)
    return len(items)
