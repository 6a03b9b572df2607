"""Outbox jobs: drain the dispatch doorbell, dispatch one event, sweep for events whose dispatch was lost."""

from __future__ import annotations

import uuid

from callnfy_integrations.events.dispatch import dispatch, drain_ready_events, sweep_due_events
from callnfy_integrations.queues import redis_connection


def drain_outbox() -> int:
    """Dispatch every event waiting on the ready list (in batches); returns how many."""
    return drain_ready_events(redis_connection())


def dispatch_event(event_id: str) -> bool:
    """Run one event's outstanding handlers (idempotent: finished handlers are skipped)."""
    return dispatch(uuid.UUID(event_id))


def sweep_outbox() -> int:
    """Request dispatch of every due, undispatched event; returns how many."""
    return sweep_due_events()
