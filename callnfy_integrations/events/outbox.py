"""Recording events with the change that caused them, and handing them to the dispatcher after commit.

Dispatch is coalesced: a commit pushes its event ids onto a Redis list and enqueues one
`drain_outbox` job only if none is pending, instead of one RQ job per event (each RQ job costs
several Redis round trips and milliseconds of worker CPU). The drain job empties the list in
batches. Redis is only a doorbell: PostgreSQL holds the truth, and the sweeper re-rings for events
still undispatched after their grace period.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

from flask import current_app
from redis import Redis
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from ..extensions import db
from ..timestamps import utcnow
from .models import Event

log = logging.getLogger(__name__)

_PENDING = "callnfy_pending_events"
READY_KEY = "callnfy:outbox:ready"  # event ids awaiting dispatch, oldest first
DRAIN_SCHEDULED_KEY = "callnfy:outbox:drain-scheduled"  # set while a drain job waits to start
DRAIN_FLAG_TTL = 300  # a lost drain job (Redis restart, crash) only delays the next one this long


def record_event(user_id: uuid.UUID, event_type: str, payload: dict[str, Any]) -> Event:
    """Add an event to the current transaction; its dispatch is requested only if that commits."""
    grace = timedelta(seconds=current_app.config["OUTBOX_GRACE_SECONDS"])
    event = Event(id=uuid.uuid4(), user_id=user_id, type=event_type, payload=payload,
                  next_attempt_at=utcnow() + grace)
    db.session.add(event)
    db.session.info.setdefault(_PENDING, []).append(event.id)
    return event


@sa_event.listens_for(Session, "after_commit")
def _request_dispatch_after_commit(session: Session) -> None:
    event_ids = session.info.pop(_PENDING, None)
    if event_ids:
        request_dispatch(event_ids)


@sa_event.listens_for(Session, "after_rollback")
def _forget_on_rollback(session: Session) -> None:
    # Rolled back: the events never existed, so nothing may be dispatched.
    session.info.pop(_PENDING, None)


def request_dispatch(event_ids: list[uuid.UUID], connection: Redis | None = None) -> None:
    """Ring the doorbell for these events; a failure here is repaired by the sweeper."""
    from ..queues import redis_connection

    try:
        connection = connection or redis_connection()
        with connection.pipeline(transaction=False) as pipe:
            pipe.rpush(READY_KEY, *[str(e) for e in event_ids])
            pipe.set(DRAIN_SCHEDULED_KEY, 1, nx=True, ex=DRAIN_FLAG_TTL)
            _, newly_scheduled = pipe.execute()
        if newly_scheduled:
            schedule_drain(connection)
    except Exception:  # the rows are committed; the sweeper will find them once they are due
        log.warning("could not request event dispatch; the outbox sweeper will retry", exc_info=True,
                    extra={"events": [str(e) for e in event_ids]})


def schedule_drain(connection: Redis) -> None:
    from jobs.events import drain_outbox
    from ..queues import DEFAULT, enqueue

    enqueue(drain_outbox, queue=DEFAULT, connection=connection, result_ttl=0, failure_ttl=86400)
