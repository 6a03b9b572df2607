"""The Outlook event an appointment becomes (Graph's `event`): the spec's Google format carried over.

Differences from Google's, on purpose:
* no `attendees`: Graph sends a meeting request from the owner's mailbox to every attendee of an event
  it creates or changes, so listing the customer would email them an invitation the owner never
  chose to send; the customer's email is in the body instead;
* Callnfy's tag is a single-value extended property (`callnfyAppointmentId`), which two-way sync and
  the busy copy read back with `$expand`;
* a create carries `transactionId`, derived from the appointment: Graph answers a retried POST with
  the event the first one made instead of a second event.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from .. import public_ids
from ..google.event_body import zone

# A named property in the PS_PUBLIC_STRINGS set: readable by any client, unique to Callnfy by name.
TAG_PROPERTY = "String {00020329-0000-0000-C000-000000000046} Name callnfyAppointmentId"
TAG_EXPAND = f"singleValueExtendedProperties($filter=id eq '{TAG_PROPERTY}')"


def transaction_id(appointment_id: uuid.UUID, generation: int | None = None) -> str:
    """The first create's id is the appointment's; writing it anew (the owner deleted our event) adds
    the version, so Graph does not answer with the deleted event."""
    base = f"callnfy-{appointment_id.hex}"
    return base if generation is None else f"{base}-v{generation}"


def _local(moment: datetime, zone_name: str) -> dict[str, str]:
    return {"dateTime": moment.astimezone(zone(zone_name)).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": zone_name}


def times(scheduled_at: datetime, duration: int, zone_name: str) -> dict[str, Any]:
    """start/end in `zone_name`; the end computed on the UTC timeline, so DST never changes the length."""
    start = scheduled_at.astimezone(UTC)
    return {"start": _local(start, zone_name), "end": _local(start + timedelta(minutes=duration), zone_name)}


def build_event(*, appointment_id: uuid.UUID, customer_name: str, customer_phone: str | None,
                customer_email: str | None, notes: str | None, scheduled_at: datetime, duration: int,
                time_zone: str) -> dict[str, Any]:
    lines = ["Callnfy appointment", f"Customer: {customer_name}", f"Phone: {customer_phone or ''}"]
    if customer_email:
        lines.append(f"Email: {customer_email}")
    lines.append(f"Notes: {notes or ''}")
    return {
        "subject": f"Appointment with {customer_name}",
        "body": {"contentType": "text", "content": "\n".join(lines)},
        **times(scheduled_at, duration, zone(time_zone).key),
        "showAs": "busy",
        "isReminderOn": True,
        "singleValueExtendedProperties": [
            {"id": TAG_PROPERTY, "value": public_ids.encode(public_ids.APPOINTMENT, appointment_id)}],
    }


def tagged_appointment_id(item: dict[str, Any]) -> uuid.UUID | None:
    """The appointment Callnfy tagged this event with (the property must have been asked for with
    `$expand=TAG_EXPAND`), else None."""
    for prop in item.get("singleValueExtendedProperties") or []:
        if str(prop.get("id", "")).lower() == TAG_PROPERTY.lower():
            return public_ids.decode(public_ids.APPOINTMENT, str(prop.get("value") or ""))
    return None
