"""Dispatching an outbox event to its handlers, each exactly once; and the sweeper that finds lost ones."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from flask import current_app
from sqlalchemy import select, text

from ..extensions import db
from ..timestamps import utcnow
from .models import Event, EventHandlerRun
from .outbox import enqueue_dispatch
from .registry import Handler, handlers_for

log = logging.getLogger(__name__)

ERROR_MAX = 2000
BACKOFF_CAP_SECONDS = 3600


def retry_delay(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min … capped at an hour: a broken handler is retried, never forgotten."""
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), BACKOFF_CAP_SECONDS))


def _run_handler(event_id: uuid.UUID, handler: Handler) -> None:
    # The row lock serialises dispatchers of one event (a sweeper re-enqueue racing the original
    # job): the second waits, then sees the first one's completion mark and skips.
    event = db.session.execute(select(Event).where(Event.id == event_id).with_for_update()).scalar_one()
    if db.session.get(EventHandlerRun, (event_id, handler.name)) is None:
        handler.func(event)
        db.session.add(EventHandlerRun(event_id=event_id, handler=handler.name))
    db.session.commit()


def dispatch(event_id: uuid.UUID) -> bool:
    """Run every handler that has not finished with this event; True once all have."""
    event = db.session.get(Event, event_id)
    if event is None or event.dispatched_at is not None:
        db.session.rollback()
        return True
    event_type = event.type
    db.session.rollback()  # each handler gets its own transaction

    failures: list[str] = []
    for handler in handlers_for(event_type):
        try:
            _run_handler(event_id, handler)
        except Exception as exc:
            db.session.rollback()
            log.exception("event handler failed", extra={"event_id": str(event_id), "handler": handler.name})
            failures.append(f"{handler.name}: {type(exc).__name__}: {exc}")

    event = db.session.execute(select(Event).where(Event.id == event_id).with_for_update()).scalar_one()
    if failures:
        event.attempts += 1
        event.last_error = "; ".join(failures)[:ERROR_MAX]
        event.next_attempt_at = utcnow() + retry_delay(event.attempts)
    elif event.dispatched_at is None:
        event.dispatched_at = utcnow()
        event.last_error = None
    db.session.commit()
    return not failures


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
    again what the previous sweep just enqueued; concurrent sweepers skip each other's rows.
    """
    grace = current_app.config["OUTBOX_GRACE_SECONDS"]
    event_ids = list(db.session.scalars(_CLAIM_DUE, {"grace": grace, "limit": limit}))
    db.session.commit()
    if event_ids:
        log.info("outbox sweep re-enqueued events", extra={"count": len(event_ids)})
        enqueue_dispatch(event_ids)
    return len(event_ids)
