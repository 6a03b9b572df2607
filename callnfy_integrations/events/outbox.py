"""Recording events with the change that caused them, and enqueueing their dispatch after commit."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from ..extensions import db
from ..timestamps import utcnow
from .models import Event

log = logging.getLogger(__name__)

_PENDING = "callnfy_pending_events"


def record_event(user_id: uuid.UUID, event_type: str, payload: dict[str, Any]) -> Event:
    """Add an event to the current transaction; its dispatch is enqueued only if that commits."""
    grace = timedelta(seconds=current_app.config["OUTBOX_GRACE_SECONDS"])
    event = Event(id=uuid.uuid4(), user_id=user_id, type=event_type, payload=payload,
                  next_attempt_at=utcnow() + grace)
    db.session.add(event)
    db.session.info.setdefault(_PENDING, []).append(event.id)
    return event


@sa_event.listens_for(Session, "after_commit")
def _enqueue_after_commit(session: Session) -> None:
    event_ids = session.info.pop(_PENDING, None)
    if event_ids:
        enqueue_dispatch(event_ids)


@sa_event.listens_for(Session, "after_rollback")
def _forget_on_rollback(session: Session) -> None:
    # Rolled back: the events never existed, so nothing may be dispatched.
    session.info.pop(_PENDING, None)


def enqueue_dispatch(event_ids: list[uuid.UUID]) -> None:
    """Put one dispatch job per event on the queue; a failure here is repaired by the sweeper."""
    from jobs.events import dispatch_event
    from ..queues import DEFAULT, get_queue

    try:
        queue = get_queue(DEFAULT)
        with queue.connection.pipeline() as pipe:
            for event_id in event_ids:
                queue.enqueue_call(dispatch_event, args=(str(event_id),), pipeline=pipe,
                                   result_ttl=0, failure_ttl=86400)
            pipe.execute()
    except Exception:  # the rows are committed; the sweeper will find them once they are due
        log.warning("could not enqueue event dispatch; the outbox sweeper will retry", exc_info=True,
                    extra={"events": [str(e) for e in event_ids]})
