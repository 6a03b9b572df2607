"""Two-way apply, provider-neutral: make Callnfy reflect one changed calendar event (`RemoteEvent`).

* A linked event (Callnfy's tag on it, or the event id stored on the link) cancelled → the appointment
  is cancelled; moved or resized → rescheduled; our own echo (the etag or changeKey stored after our
  last write, or content already equal) → ignored.
* An unlinked, timed, busy, confirmed, single (non-recurring) event created after the baseline that the
  owner organises or has accepted → a new appointment with the provider's `source`; a stranger's
  invitation never becomes one. An event Callnfy did not create is never rewritten or deleted by
  Callnfy (the push side: only its time is patched, a cancellation leaves it).
* A change that came from the calendar is marked synced at its new version on that calendar's link,
  so it is never pushed back there (other connected calendars still receive it).

Services here only flush; each provider's sync run owns the transactions and takes the appointment's
push lock (`push_runs.push_lease`) before applying a linked change.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from sqlalchemy import or_, select

from ..appointments import service as appointments
from ..appointments.models import DURATION_MAX, DURATION_MIN, SCHEDULED, SOURCE_GOOGLE, SOURCE_MICROSOFT, Appointment
from ..extensions import db
from ..integrations.models import GOOGLE_CALENDAR, MICROSOFT_CALENDAR, Integration
from ..timestamps import utcnow
from .models import SYNCED, CalendarLink
from .remote import ACCEPTED, DECLINED, NEEDS_ACTION, ORGANIZER, TENTATIVE, RemoteEvent, Skipped

log = logging.getLogger(__name__)

# Per provider: the imported appointments' source, the cancel reason shown, a name for an event without one.
SOURCE_OF = {GOOGLE_CALENDAR: SOURCE_GOOGLE, MICROSOFT_CALENDAR: SOURCE_MICROSOFT}
CANCELLED_REASON = {GOOGLE_CALENDAR: "Cancelled in Google Calendar", MICROSOFT_CALENDAR: "Cancelled in Outlook"}
UNNAMED = {GOOGLE_CALENDAR: "Google Calendar event", MICROSOFT_CALENDAR: "Outlook event"}

# Why an unlinked event does not become an appointment: a calendar shows anyone's invitation, and an
# appointment starts automations that text or call the customer it names.
NOT_THE_OWNERS = {None: "skipped: not the owner's event", NEEDS_ACTION: "skipped: invitation not answered",
                  TENTATIVE: "skipped: invitation not accepted", DECLINED: "skipped: invitation declined"}
IMPORT_CAPPED = "skipped: import cap reached"


def _link_conditions(integration: Integration, event: RemoteEvent) -> list:
    by_event = select(CalendarLink.appointment_id).where(
        CalendarLink.user_id == integration.user_id, CalendarLink.provider == integration.provider,
        CalendarLink.event_id == event.id).scalar_subquery()
    conditions = [Appointment.id == by_event]
    if event.tagged_appointment_id:
        conditions.append(Appointment.id == event.tagged_appointment_id)
    return [Appointment.user_id == integration.user_id, or_(*conditions)]


def linked_appointment_id(integration: Integration, event: RemoteEvent) -> uuid.UUID | None:
    """The appointment this event is linked to (our tag, or the stored event id), if any: the caller
    takes that appointment's push lock before `apply_change` locks its row."""
    return db.session.scalars(select(Appointment.id).where(*_link_conditions(integration, event))).first()


def _linked(integration: Integration, event: RemoteEvent) -> Appointment | None:
    return db.session.scalars(select(Appointment).where(*_link_conditions(integration, event))
                              .with_for_update(of=Appointment)).first()


def link_of(appointment: Appointment, provider: str) -> CalendarLink:
    """The appointment's link to that calendar, made (synced, nothing written yet) when missing."""
    link = db.session.get(CalendarLink, (appointment.id, provider), with_for_update=True)
    if link is None:
        link = CalendarLink(appointment_id=appointment.id, provider=provider, user_id=appointment.user_id,
                            state=SYNCED, attempts=0)
        db.session.add(link)
    return link


def _mark_from_calendar(link: CalendarLink, appointment: Appointment, event: RemoteEvent,
                        timing: tuple[datetime, int] | None) -> None:
    """This state came from the calendar: synced at the current version, so nothing is pushed back."""
    link.state = SYNCED
    link.synced_version = appointment.version
    link.error = None
    link.next_sync_at = None
    link.synced_at = utcnow()
    _note_remote_state(link, event, timing)


def _note_remote_state(link: CalendarLink, event: RemoteEvent, timing: tuple[datetime, int] | None) -> None:
    """What the calendar holds now (its etag, update time and the event's time), whatever Callnfy makes of it."""
    link.event_id = link.event_id or event.id
    link.etag = event.etag
    link.remote_updated_at = event.updated or link.remote_updated_at
    if timing is not None:
        link.remote_start_at, link.remote_duration = timing


def _timing(event: RemoteEvent) -> tuple[datetime, int] | None:
    if event.start is None or event.end is None:
        return None  # all-day or malformed
    minutes = int((event.end - event.start).total_seconds() // 60)
    if not DURATION_MIN <= minutes <= DURATION_MAX:
        raise Skipped(f"event {event.id}: a duration of {minutes} minutes is outside {DURATION_MIN}-{DURATION_MAX}")
    return event.start, minutes


def apply_change(integration: Integration, event: RemoteEvent, *, may_create: bool = True) -> str:
    """Make Callnfy reflect one changed event; returns what was done (for logs and tests).

    An unlinked event becomes an appointment only when it is timed, busy, confirmed, single, created
    after the baseline, and the owner's own: organised by them, or an invitation they accepted; and
    only while `may_create` (the caller's cap on what one sync creates)."""
    if event.recurring:
        return "skipped: recurring"
    appointment = _linked(integration, event)
    if appointment is not None:
        return _apply_to_linked(integration, appointment, event)
    if event.cancelled or not event.confirmed:
        return "skipped: not confirmed"
    if not event.busy:
        return "skipped: free time"
    if event.owner_response not in (ORGANIZER, ACCEPTED):
        return NOT_THE_OWNERS.get(event.owner_response, NOT_THE_OWNERS[None])
    timing = _timing(event)
    if timing is None:
        return "skipped: all-day"
    if integration.two_way_since and (event.created is None or event.created < integration.two_way_since):
        return "skipped: before the baseline"
    if not may_create:
        return IMPORT_CAPPED
    name, email, notes = _customer_of(integration.provider, event)
    appointment = appointments.create_appointment(
        integration.user_id, customer_name=name, customer_phone=None, customer_email=email,
        scheduled_at=timing[0], duration=timing[1], notes=notes, source=SOURCE_OF[integration.provider])
    _mark_from_calendar(link_of(appointment, integration.provider), appointment, event, timing)
    db.session.flush()
    return "created"


def _unpushed(link: CalendarLink, appointment: Appointment) -> bool:
    """A Callnfy change the calendar has not received yet (waiting, backing off, or failed)."""
    return not (link.state == SYNCED and link.synced_version == appointment.version)


def _apply_to_linked(  # noqa: C901  (the both-sides rule reads as one decision table, in order)
        integration: Integration, appointment: Appointment, event: RemoteEvent) -> str:
    """A change to a linked event. The rule when both sides changed: the newer change wins, and a
    Callnfy change not yet pushed is never dropped:

    * an event state older than what the calendar told us last (our own write since, seen by its update
      time) is stale: its notification brings the current state;
    * while a Callnfy change waits to be pushed, an edit in the calendar that left the time alone (the
      description, say) keeps the Callnfy change, which the push then brings; a calendar move newer
      than the Callnfy change is taken, and the push still sends the other Callnfy fields.
    """
    provider = integration.provider
    link = link_of(appointment, provider)
    if event.etag and link.etag == event.etag:
        return "echo"
    if event.updated is not None and link.remote_updated_at is not None and event.updated < link.remote_updated_at:
        return "stale"
    imported_here = appointment.source == SOURCE_OF[provider]
    if event.cancelled or (imported_here and event.owner_response == DECLINED):
        if appointment.status == SCHEDULED:
            if _unpushed(link, appointment):
                log.info("an event was deleted in the calendar while a Callnfy change waited; the deletion wins",
                         extra={"appointment_id": str(appointment.id), "provider": provider})
            appointments.cancel_appointment(integration.user_id, appointment.id, reason=CANCELLED_REASON[provider])
            _mark_from_calendar(link, appointment, event, None)
            return "cancelled"
        _note_remote_state(link, event, None)
        return "echo"
    timing = _timing(event)
    if timing is None or appointment.status != SCHEDULED:
        _note_remote_state(link, event, None)  # nothing Callnfy can take from it
        return "ignored"
    start, minutes = timing
    if not _unpushed(link, appointment):
        if start == appointment.scheduled_at and minutes == appointment.duration:
            _note_remote_state(link, event, timing)  # our own write seen again, or another field edited
            return "echo"
        appointments.update_appointment(integration.user_id, appointment.id,
                                        {"scheduled_at": start, "duration": minutes})
        _mark_from_calendar(link, appointment, event, timing)
        return "rescheduled"
    known = (link.remote_start_at, link.remote_duration)
    if known[0] is not None and (start, minutes) == known:
        return "kept: a Callnfy change waits to be pushed"  # the calendar's time is the one we last knew
    if (start, minutes) == (appointment.scheduled_at, appointment.duration):
        _note_remote_state(link, event, timing)  # both sides moved to the same time
        return "echo"
    if event.updated is None or event.updated <= appointment.updated_at:
        return "kept: the Callnfy change is newer"
    appointments.update_appointment(integration.user_id, appointment.id, {"scheduled_at": start, "duration": minutes})
    _note_remote_state(link, event, timing)  # still pending: the push sends the other Callnfy fields
    return "rescheduled"


def _customer_of(provider: str, event: RemoteEvent) -> tuple[str, str | None, str | None]:
    """(name, email, notes): the first attendee who is not the calendar's owner, else the summary."""
    summary = (event.summary or "").strip()
    for attendee in event.attendees:
        email = (attendee.email or "").strip()
        if attendee.is_owner:
            continue
        name = (attendee.name or "").strip() or email
        if name:
            return name[:200], email or None, summary[:2000] or None
    return (summary or UNNAMED[provider])[:200], None, None
