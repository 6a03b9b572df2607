"""Webhook `data` of appointment events: the contract Zapier users build their Zaps on.

Each event's `data` is `AppointmentSchema` (the /appointments response) dumped with that event's
field list and the spec's webhook names, so an appointment has one shape wherever it is shown.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from .. import public_ids
from ..events import registry
from ..timestamps import format_timestamp
from .models import Appointment
from .schemas import AppointmentSchema


def appointment_id_of(payload: dict[str, Any]) -> uuid.UUID | None:
    """The appointment an event's payload is about (the one place that knows the key: the spec's `data.id`,
    or `appointmentId` in events stored before payloads followed the spec, so those keep working)."""
    return public_ids.decode(public_ids.APPOINTMENT, payload.get("id") or payload.get("appointmentId") or "")


# Every appointment event carries the appointment itself: the spec's `appointment.created` fields
# plus customerEmail and source; cancel and complete add what the spec lists for them.
_APPOINTMENT = ("id", "customerId", "customerName", "customerPhone", "customerEmail", "scheduledAt", "duration",
                "status", "notes", "source")
EVENT_FIELDS: dict[str, tuple[str, ...]] = {
    registry.APPOINTMENT_CREATED: _APPOINTMENT,
    registry.APPOINTMENT_UPDATED: _APPOINTMENT,
    registry.APPOINTMENT_RESCHEDULED: _APPOINTMENT,  # plus previousScheduledAt and previousDuration
    registry.APPOINTMENT_CANCELLED: _APPOINTMENT + ("cancelledAt", "cancelReason"),
    registry.APPOINTMENT_COMPLETED: _APPOINTMENT + ("completedAt",),
}
# Where the spec's webhook name differs from the API's.
_WEBHOOK_NAMES = {"cancelReason": "reason"}
_SCHEMAS = {event: AppointmentSchema(only=fields) for event, fields in EVENT_FIELDS.items()}


def appointment_payload(event_type: str, appointment: Appointment) -> dict[str, Any]:
    """The `data` of `event_type` about `appointment` (docs/api.md lists every field)."""
    return {_WEBHOOK_NAMES.get(name, name): value
            for name, value in _SCHEMAS[event_type].dump(appointment).items()}


def rescheduled_payload(appointment: Appointment, previous_at: datetime, previous_duration: int) -> dict[str, Any]:
    """`appointment.rescheduled`: the appointment as it now stands, and the time and length it had."""
    return {**appointment_payload(registry.APPOINTMENT_RESCHEDULED, appointment),
            "previousScheduledAt": format_timestamp(previous_at), "previousDuration": previous_duration}
