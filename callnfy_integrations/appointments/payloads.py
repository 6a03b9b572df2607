"""Webhook `data` of appointment events: the contract Zapier users build their Zaps on."""

from __future__ import annotations

import uuid
from typing import Any

from .. import public_ids
from ..timestamps import format_timestamp
from .models import Appointment


def appointment_id_of(payload: dict[str, Any]) -> uuid.UUID | None:
    """The appointment an event's payload is about (the one place that knows the key: `appointmentId`
    today, the spec's `data.id` once payloads follow it; both are read so stored events keep working)."""
    return public_ids.decode(public_ids.APPOINTMENT, payload.get("id") or payload.get("appointmentId") or "")


def _common(appointment: Appointment) -> dict[str, Any]:
    customer = appointment.customer
    return {
        "appointmentId": public_ids.encode(public_ids.APPOINTMENT, appointment.id),
        "customerId": public_ids.encode(public_ids.CUSTOMER, customer.id),
        "customerName": customer.name,
        "customerPhone": customer.phone,
        "customerEmail": customer.email,
        "scheduledAt": format_timestamp(appointment.scheduled_at),
        "duration": appointment.duration,
    }


def created_or_updated(appointment: Appointment) -> dict[str, Any]:
    """`appointment.created` and `appointment.updated`."""
    return {**_common(appointment), "status": appointment.status, "notes": appointment.notes,
            "source": appointment.source}


def cancelled(appointment: Appointment) -> dict[str, Any]:
    return {**_common(appointment), "cancelledAt": format_timestamp(appointment.cancelled_at),
            "reason": appointment.cancel_reason}


def completed(appointment: Appointment) -> dict[str, Any]:
    return {**_common(appointment), "completedAt": format_timestamp(appointment.completed_at),
            "notes": appointment.notes}
