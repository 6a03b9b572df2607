"""A Google Calendar event (the `events` resource's JSON) as the sync engine's `RemoteEvent`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .. import public_ids
from ..calendar_sync.remote import ACCEPTED, DECLINED, NEEDS_ACTION, ORGANIZER, TENTATIVE, Attendee, RemoteEvent

_RESPONSES = {"accepted": ACCEPTED, "declined": DECLINED, "tentative": TENTATIVE, "needsAction": NEEDS_ACTION}


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def owner_response(item: dict[str, Any], owner_email: str | None) -> str | None:
    """The owner's answer to this event: `organizer` when they organise it, else their attendee entry's
    responseStatus (`needsAction`, `accepted`, `tentative`, `declined`), else None (not invited)."""
    owner = (owner_email or "").lower()
    organizer = item.get("organizer") or {}
    if organizer.get("self") or (owner and (organizer.get("email") or "").lower() == owner):
        return ORGANIZER
    for attendee in item.get("attendees") or []:
        if attendee.get("self") or (owner and (attendee.get("email") or "").lower() == owner):
            return _RESPONSES.get(attendee.get("responseStatus") or "needsAction", NEEDS_ACTION)
    return None


def normalize(item: dict[str, Any], owner_email: str | None) -> RemoteEvent:
    owner = (owner_email or "").lower()
    private = (item.get("extendedProperties") or {}).get("private") or {}
    attendees = tuple(
        Attendee(email=(a.get("email") or "").strip() or None, name=a.get("displayName"),
                 is_owner=bool(a.get("self") or (owner and (a.get("email") or "").strip().lower() == owner)))
        for a in item.get("attendees") or [])
    return RemoteEvent(
        id=item["id"], etag=item.get("etag"), updated=parse_time(item.get("updated")),
        created=parse_time(item.get("created")), cancelled=item.get("status") == "cancelled",
        confirmed=item.get("status") == "confirmed", busy=item.get("transparency") != "transparent",
        recurring=bool(item.get("recurrence") or item.get("recurringEventId")),
        start=parse_time((item.get("start") or {}).get("dateTime")),
        end=parse_time((item.get("end") or {}).get("dateTime")),
        owner_response=owner_response(item, owner_email),
        tagged_appointment_id=public_ids.decode(public_ids.APPOINTMENT, private.get("callnfyAppointmentId") or ""),
        summary=item.get("summary") or "", attendees=attendees)
