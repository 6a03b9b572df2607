"""Applying a page of changed events, for any provider: the step each provider's two-way run takes per
event (Google's `two_way_runs._apply_pages`, Microsoft's `_apply_page`), and what a sync reports after.

An edge, like the runs that call it: a linked event is applied under its appointment's push lock and
committed before the lock goes, so a push then reads what was applied.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..availability import refresh
from ..availability import service as availability
from ..availability.busy import Source
from ..extensions import db
from ..integrations.models import Integration
from . import apply as engine_apply
from .push_runs import push_lease
from .remote import RemoteEvent, Skipped

CHANGED = ("created", "cancelled", "rescheduled")
EVENT_SKIPPED = "EVENT_SKIPPED"
EVENT_NOT_APPLIED = "EVENT_NOT_APPLIED"
IN_THE_LOGS = "the details are in the service's logs"


class AppointmentBusy(Exception):
    """A push of a linked appointment held its lock for too long: the sync runs again shortly."""


@dataclass
class Pages:
    """What one sync did: appointments changed and created, events skipped by reason, errors to show."""

    cap: int
    label: str  # the calendar, for people: "Google", "Outlook"
    seen: int = 0
    foreign: int = 0  # events that are not Callnfy's mirrors: they may change the owner's busy time
    applied: int = 0
    created: int = 0
    skipped: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    last: dict[str, Any] = field(default_factory=dict)

    def count(self, outcome: str) -> None:
        if outcome in CHANGED:
            self.applied += 1
            self.created += outcome == "created"
        elif outcome.startswith("skipped: "):
            self.skipped[outcome.removeprefix("skipped: ")] += 1


def unapplied_event(label: str, event_id: object, error: Exception) -> str:
    """One event two-way sync skipped: our own reason when it is bad data, else only that it failed."""
    if isinstance(error, Skipped):
        return f"{EVENT_SKIPPED}: {error}"
    return f"{EVENT_NOT_APPLIED}: {label} event {str(event_id)[:100]} could not be applied; {IN_THE_LOGS}"


def apply_event(iid: uuid.UUID, integration: Integration, event: RemoteEvent, pages: Pages,
                log: logging.Logger, unapplied: str) -> None:
    """One event, in its own savepoint, under its appointment's push lock when it is linked. Bad data is
    recorded and skipped, never blocks the rest (`unapplied`: the warning logged for it)."""
    linked = engine_apply.linked_appointment_id(integration, event)
    lease = push_lease(linked, integration.provider) if linked is not None else None
    if lease is not None and not lease.acquire():
        raise AppointmentBusy(str(linked))
    try:
        with db.session.begin_nested():
            outcome = engine_apply.apply_change(integration, event, may_create=pages.created < pages.cap)
        if lease is not None:
            db.session.commit()
        pages.count(outcome)
    except Exception as exc:
        log.warning(unapplied, exc_info=not isinstance(exc, Skipped),
                    extra={"integration_id": str(iid), "event_id": event.id[:100], "error": type(exc).__name__})
        pages.errors.append(unapplied_event(pages.label, event.id, exc))
    finally:
        if lease is not None:
            lease.release()


def report_skipped(iid: uuid.UUID, pages: Pages, log: logging.Logger) -> None:
    """Logged; the import cap also shown to the owner (`syncError`)."""
    if pages.skipped:
        log.info(f"two-way sync skipped {pages.label} events", extra={
            "integration_id": str(iid), "skipped": dict(pages.skipped), "imported": pages.created})
    capped = pages.skipped[engine_apply.IMPORT_CAPPED.removeprefix("skipped: ")]
    if capped:
        pages.errors.append(f"{capped} new {pages.label} events were not imported: one sync imports at most "
                            f"{pages.cap}")


def refresh_busy(iid: uuid.UUID, busy_provider: str, calendar_id: str) -> None:
    """The calendar changed (or two-way began): read its busy copy again, when it counts as busy."""
    integration = db.session.get(Integration, iid)
    user_id = integration and integration.user_id
    if user_id is None:
        db.session.commit()
        return
    owner, sources = availability.resolved(user_id)
    db.session.commit()
    source = Source(busy_provider, calendar_id)
    if source in sources:
        refresh.refresh_source(user_id, source, owner.zone)
