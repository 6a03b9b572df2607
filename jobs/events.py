"""Outbox jobs: dispatch one event to its handlers; sweep for events whose dispatch was lost."""

from __future__ import annotations

import uuid

from callnfy_integrations.events.dispatch import dispatch, sweep_due_events


def dispatch_event(event_id: str) -> bool:
    """Run the event's outstanding handlers (idempotent: finished handlers are skipped)."""
    return dispatch(uuid.UUID(event_id))


def sweep_outbox() -> int:
    """Re-enqueue every due, undispatched event; returns how many."""
    return sweep_due_events()
