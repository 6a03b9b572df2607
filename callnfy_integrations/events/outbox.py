"""Recording events with the change that caused them, and ringing the dispatch doorbell after commit.

A commit pushes its event ids onto the outbox doorbell; one `drain_outbox` job dispatches them in
batches (see `doorbell.py`). The sweeper rings again for events still undispatched after their
grace period, so a lost doorbell only delays dispatch.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from redis import Redis
from sqlalchemy import text

from ..doorbell import Doorbell
from ..extensions import db
from ..queues import DEFAULT, redis_connection
from ..timestamps import utcnow
from ..transactions import after_commit
from . import registry
from .models import Event

log = logging.getLogger(__name__)

OUTBOX = Doorbell("outbox", "jobs.events.drain_outbox", DEFAULT)


def record_event(user_id: uuid.UUID, event_type: str, payload: dict[str, Any]) -> Event:
    """Add an event to the current transaction; its dispatch is requested only if that commits."""
    grace = timedelta(seconds=current_app.config["OUTBOX_GRACE_SECONDS"])
    event = Event(id=uuid.uuid4(), user_id=user_id, type=event_type, payload=payload,
                  next_attempt_at=utcnow() + grace)
    db.session.add(event)
    after_commit(request_dispatch, event.id)
    return event


def request_dispatch(event_ids: list[uuid.UUID], connection: Redis | None = None) -> None:
    """Ring the doorbell for these events; a failure here is repaired by the sweeper."""
    try:
        OUTBOX.ring(event_ids, connection or redis_connection())
    except Exception:  # the rows are committed; the sweeper will find them once they are due
        log.warning("could not request event dispatch; the outbox sweeper will retry", exc_info=True,
                    extra={"events": [str(e) for e in event_ids]})


def prune_dispatched(cutoff: datetime, batch: int) -> int:
    """Delete up to `batch` dispatched events created before `cutoff` that nothing registered with
    `registry.keep_events_while` still needs (their handler runs go with them); the caller commits."""
    kept = "".join(f" AND NOT ({condition})" for condition in registry.still_needed_conditions())
    statement = text(f"""
        DELETE FROM events WHERE id IN (
            SELECT e.id FROM events e
            WHERE e.dispatched_at IS NOT NULL AND e.created_at < :cutoff{kept}
            LIMIT :batch
        )""")
    return db.session.execute(statement, {"cutoff": cutoff, "batch": batch}).rowcount
