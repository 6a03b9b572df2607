"""Dispatching an outbox event to its handlers, each exactly once; and the sweeper that finds lost ones."""

from __future__ import annotations

import logging
import time
import uuid
from datetime import timedelta

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import select, text

from .. import process_flags
from ..extensions import db
from ..queues import redis_connection
from ..timestamps import utcnow
from .models import Event, EventHandlerRun
from .outbox import OUTBOX, request_dispatch
from .registry import handlers_for

log = logging.getLogger(__name__)

ERROR_MAX = 2000
BACKOFF_CAP_SECONDS = 3600


def retry_delay(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min … capped at an hour: a broken handler is retried, never forgotten."""
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), BACKOFF_CAP_SECONDS))


def dispatch(event_id: uuid.UUID) -> bool:
    """Run every handler that has not finished with this event; True once all have.

    One transaction: the event row is locked (a concurrent dispatcher of the same event waits, then
    finds it done), and each handler runs in a savepoint together with its completion mark, so a
    failing handler undoes only its own work and the others' marks still commit.
    """
    event = db.session.execute(select(Event).where(Event.id == event_id).with_for_update()).scalar_one_or_none()
    if event is None or event.dispatched_at is not None:
        db.session.commit()
        return True
    handlers = handlers_for(event.type)
    done = set(db.session.scalars(select(EventHandlerRun.handler).where(EventHandlerRun.event_id == event_id))) \
        if handlers else set()
    failures: list[str] = []
    for handler in handlers:
        if handler.name in done:
            continue
        try:
            with db.session.begin_nested():
                handler.func(event)
                db.session.add(EventHandlerRun(event_id=event_id, handler=handler.name))
        except Exception as exc:
            log.exception("event handler failed", extra={"event_id": str(event_id), "handler": handler.name})
            failures.append(f"{handler.name}: {type(exc).__name__}: {exc}")
    if failures:
        event.attempts += 1
        event.last_error = "; ".join(failures)[:ERROR_MAX]
        event.next_attempt_at = utcnow() + retry_delay(event.attempts)
    else:
        event.dispatched_at = utcnow()
        event.last_error = None
    db.session.commit()
    return not failures


def dispatch_batch(event_ids: list[str]) -> int:
    """Dispatch each event; one that fails to dispatch is left to the sweeper, not the batch."""
    dispatched = 0
    for event_id in event_ids:
        try:
            dispatch(uuid.UUID(event_id))
            dispatched += 1
        except Exception:
            db.session.rollback()
            log.exception("event dispatch failed; the sweeper will retry it", extra={"event_id": event_id})
    return dispatched


def drain_ready_events(connection, *, batch: int = 100, budget_seconds: float = 10.0) -> int:
    """Dispatch the events the outbox doorbell names."""
    return OUTBOX.drain(connection, dispatch_batch, batch=batch, budget_seconds=budget_seconds)


# Events due when the sweep began (what this sweep claims moves past :started, so it is not claimed
# twice), oldest first; with :everything (Redis came back empty) also those in their grace period
# that were never tried: their doorbell went with Redis. A failed dispatch keeps its backoff either way.
_CLAIM_DUE = text("""
    UPDATE events SET next_attempt_at = clock_timestamp() + make_interval(secs => :grace)
    WHERE id IN (
        SELECT id FROM events
        WHERE dispatched_at IS NULL
          AND (next_attempt_at <= :started
               OR (:everything AND attempts = 0 AND next_attempt_at <= :started + make_interval(secs => :grace)))
        ORDER BY next_attempt_at
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    RETURNING id
""")

# Set by every sweep, never expiring: a sweep that does not find it is talking to a Redis that lost
# its data (flushed, replaced by an empty instance) or to a fresh one — and with it every doorbell.
INTACT_KEY = "callnfy:outbox:redis-intact"
SWEEP_BATCH = 1000
SWEEP_BUDGET_SECONDS = 10.0


def sweep_due_events(limit: int = SWEEP_BATCH, budget_seconds: float = SWEEP_BUDGET_SECONDS) -> int:
    """Re-enqueue events whose dispatch is due but not done (lost job, dead worker, failed enqueue).

    Claiming pushes each event's due time forward by the grace period, so a sweep does not enqueue
    again what the previous sweep just enqueued; concurrent sweepers skip each other's rows. Batches
    of `limit` are claimed, committed and rung one after another while full batches come back,
    within the budget: a backlog (after an outage, or a restart) drains at the dispatch rate, not at
    one batch per sweep interval (1,000 per 30 s was 33 events/s). When Redis came back empty, every
    undispatched event is due at once instead of after its grace period. A drain job the doorbell
    promises but that was lost with its worker is replaced (`Doorbell.repair`).
    """
    grace = current_app.config["OUTBOX_GRACE_SECONDS"]
    connection = redis_connection()
    try:
        everything = not connection.exists(INTACT_KEY)
    except RedisError:  # nothing could be rung: leave the events due for the next sweep
        log.warning("outbox sweep skipped: Redis unavailable", exc_info=True)
        return 0
    deadline = time.monotonic() + budget_seconds
    started = db.session.scalar(text("SELECT clock_timestamp()"))
    swept = 0
    while True:
        event_ids = list(db.session.scalars(_CLAIM_DUE, {"grace": grace, "limit": limit, "everything": everything,
                                                         "started": started}))
        db.session.commit()
        if event_ids:
            request_dispatch(event_ids, connection)
            swept += len(event_ids)
        if len(event_ids) < limit or time.monotonic() > deadline or process_flags.stopping():
            break
    if everything:
        connection.set(INTACT_KEY, 1)  # after ringing: an empty Redis again meanwhile is seen next time
    if swept:
        log.info("outbox sweep re-enqueued events", extra={"count": swept, "redis_was_empty": everything})
        try:  # the drain the doorbell promises may have been lost with a killed worker
            OUTBOX.repair(connection)
        except Exception:
            log.warning("could not check the outbox doorbell", exc_info=True)
    return swept
