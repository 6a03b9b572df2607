"""Dispatching an outbox event to its handlers, each exactly once; and the sweeper that finds lost ones."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from flask import current_app
from sqlalchemy import select, text

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


_CLAIM_DUE = text("""
    UPDATE events SET next_attempt_at = clock_timestamp() + make_interval(secs => :grace)
    WHERE id IN (
        SELECT id FROM events
        WHERE dispatched_at IS NULL AND next_attempt_at <= clock_timestamp()
        ORDER BY next_attempt_at
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    RETURNING id
""")


def sweep_due_events(limit: int = 1000) -> int:
    """Re-enqueue events whose dispatch is due but not done (lost job, dead worker, failed enqueue).

    Claiming pushes each event's due time forward by the grace period, so a sweep does not enqueue
    again what the previous sweep just enqueued; concurrent sweepers skip each other's rows. A drain
    job the doorbell promises but that was lost with its worker is replaced (`Doorbell.repair`).
    """
    grace = current_app.config["OUTBOX_GRACE_SECONDS"]
    event_ids = list(db.session.scalars(_CLAIM_DUE, {"grace": grace, "limit": limit}))
    db.session.commit()
    if event_ids:
        log.info("outbox sweep re-enqueued events", extra={"count": len(event_ids)})
        request_dispatch(event_ids)
        try:  # the drain the doorbell promises may have been lost with a killed worker
            OUTBOX.repair(redis_connection())
        except Exception:
            log.warning("could not check the outbox doorbell", exc_info=True)
    return len(event_ids)
