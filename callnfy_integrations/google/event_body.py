"""The Google Calendar event an appointment becomes: the spec's format, plus our private link tags."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .. import public_ids

DEFAULT_TIME_ZONE = "Europe/London"


def event_id_for(appointment_id: uuid.UUID) -> str:
    """A deterministic Google event id: the appointment's 16 bytes in base32hex (Google's id alphabet).

    Deterministic, so a retried or concurrent insert of the same appointment collides (409) instead
    of creating a second event.
    """
    return base64.b32hexencode(appointment_id.bytes).decode().rstrip("=").lower()


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or DEFAULT_TIME_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIME_ZONE)


def _local(moment: datetime, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).isoformat(timespec="seconds")


def build_event(*, appointment_id: uuid.UUID, version: int, customer_name: str, customer_phone: str | None,
                customer_email: str | None, notes: str | None, scheduled_at: datetime, duration: int,
                time_zone: str | None) -> dict[str, Any]:
    """The event body (spec: "Google Calendar Event Format").

    End = start + duration computed on the UTC timeline, then shown in the calendar's zone, so a
    meeting across a DST change keeps its real length.
    """
    tz = zone(time_zone)
    start = scheduled_at.astimezone(UTC)
    end = start + timedelta(minutes=duration)
    body: dict[str, Any] = {
        "summary": f"Appointment with {customer_name}",
        "description": f"Callnfy appointment\nCustomer: {customer_name}\nPhone: {customer_phone or ''}\n"
                       f"Notes: {notes or ''}",
        "start": {"dateTime": _local(start, tz), "timeZone": tz.key},
        "end": {"dateTime": _local(end, tz), "timeZone": tz.key},
    }
    if customer_email:
        body["attendees"] = [{"email": customer_email}]
    body["reminders"] = {"useDefault": True}
    body["extendedProperties"] = {"private": {
        "callnfyAppointmentId": public_ids.encode(public_ids.APPOINTMENT, appointment_id),
        "callnfyVersion": str(version),
    }}
    return body
