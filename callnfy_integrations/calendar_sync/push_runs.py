"""Running one-way pushes for any provider: the steps behind each provider's `sync_appointments` and
`backfill_calendar` jobs and the calendar sweeper.

Like event dispatch, these are edges: each step commits its own work (the services in `push.py` only
flush), and no transaction stays open while a provider answers.
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
from . import push as engine
from .adapter import RECONNECT, REJECTED, RETRY, STOPPED, Adapter, Push, QuotaWait, adapter_for

log = logging.getLogger(__name__)

PUSH_LOCK_WAIT_SECONDS = 30


def push_lease(appointment_id: uuid.UUID, provider: str = "google_calendar") -> Lease:
    """The lock every write of this appointment's state with that calendar takes: a push, and two-way
    sync applying a calendar change to it (so neither records its outcome over the other's). Google's
    keeps the name it always had, so a release change never runs two pushes of one appointment."""
    name = "google-push" if provider == "google_calendar" else f"{provider}-push"
    return Lease(f"callnfy:lock:{name}:{appointment_id}", wait=PUSH_LOCK_WAIT_SECONDS)


def push_batch(provider: str, appointment_ids: list[str]) -> int:
    """Make the calendar match each appointment's current state; returns how many were pushed.

    Our per-user quota may run out mid-batch: the rest is re-enqueued for when it frees up. On SIGTERM
    the rest goes to another worker."""
    adapter = adapter_for(provider)
    for index, appointment_id in enumerate(appointment_ids):
        if index and stopping():
            enqueue(adapter.sync_job, appointment_ids[index:], queue=CALENDAR, result_ttl=0)
            return index
        wait = push_appointment(adapter, uuid.UUID(appointment_id))
        if wait is not None:
            _enqueue_later(adapter, wait, appointment_ids[index:])
            return index
    return len(appointment_ids)


def push_appointment(adapter: Adapter, appointment_id: uuid.UUID) -> float | None:
    """One appointment, serialised with other pushes of it; returns seconds to wait when over quota."""
    lock = push_lease(appointment_id, adapter.provider)
    if not lock.acquire():  # another push of it is stuck or Redis is away: the sweeper re-drives it
        return None
    try:
        push = engine.plan_push(adapter.provider, appointment_id)
        db.session.commit()  # no transaction stays open while the provider answers
        return _send(adapter, push) if push is not None else None
    finally:
        lock.release()


def _send(adapter: Adapter, push: Push) -> float | None:
    """Send the push and record how it went; the seconds to wait when over quota, else None."""
    try:
        sent = adapter.send(push)
    except QuotaWait as wait:
        engine.record_quota_wait(push, wait.seconds)
        db.session.commit()
        return wait.seconds
    except Exception as exc:  # sorted by the adapter; what it does not know is raised again
        retry_in = _record_failure(adapter, push, exc)
    else:
        # Changed while this push ran: push the current state now.
        retry_in = 0.0 if engine.record_success(push, sent) else None
    db.session.commit()
    if retry_in == 0.0:
        engine.enqueue_pushes([(push.provider, push.user_id, push.appointment_id)])
    elif retry_in is not None:
        _enqueue_later(adapter, retry_in, [str(push.appointment_id)])
    return None


def _record_failure(adapter: Adapter, push: Push, exc: Exception) -> float | None:
    """Record why the push failed; the seconds until its retry, or None when it is not retried now."""
    kind = adapter.classify(exc)
    if kind == RECONNECT:
        engine.record_reconnect_needed(adapter, push)
    elif kind == RETRY:
        return engine.record_retry(adapter, push, exc)
    elif kind == REJECTED:
        engine.record_rejected(adapter, push, exc)
    elif kind != STOPPED:
        raise exc
    return None


def _enqueue_later(adapter: Adapter, seconds: float, appointment_ids: list[str]) -> None:
    try:
        enqueue_in(timedelta(seconds=seconds), adapter.sync_job, appointment_ids, queue=CALENDAR, result_ttl=0)
    except RedisError:
        log.warning("could not schedule calendar pushes; the sweeper will", exc_info=True)


def backfill(provider: str, owner: uuid.UUID) -> int:
    """After (re)connect: what the adapter needs first (Google: the calendar's time zone, once), then
    the user's pending appointments pushed in batches."""
    adapter = adapter_for(provider)
    integration = engine.connected_integration(provider, owner)
    db.session.commit()
    if integration is None:
        return 0
    if not integration.calendar_time_zone:
        try:
            zone_name = adapter.prepare_backfill(integration.id, integration.calendar_id)
        except QuotaWait as wait:
            enqueue_in(timedelta(seconds=wait.seconds), adapter.backfill_job, str(owner), queue=CALENDAR,
                       result_ttl=0)
            return 0
        except Exception as exc:
            if adapter.classify(exc) is None:
                raise
            log.warning("could not learn the calendar's time zone; the first push will",
                        extra={"user_id": str(owner), "provider": provider})
        else:
            if zone_name:
                engine.store_time_zone(integration.id, zone_name)
                db.session.commit()
    items = engine.pending_of_user(provider, owner)
    db.session.commit()
    engine.enqueue_pushes(items)
    return len(items)


def sweep() -> int:
    """Re-drive pushes that are due and not done, for every provider: lost jobs, a flushed Redis, a
    dead worker."""
    items = engine.claim_due()
    db.session.commit()
    if items:
        log.info("calendar sweep re-enqueued pushes", extra={"count": len(items)})
        engine.enqueue_pushes(items)
    return len(items)
