"""Appointment rules: who may see what, which transitions are legal, and the events each change emits.

These functions are the API other Callnfy code and the Google two-way sync call. Each runs in the
caller's session and only flushes: the caller owns the transaction and commits (or rolls back), so a
change can be grouped with others, e.g. an appointment update with the sync token that revealed it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select

from ..customers.models import Customer
from ..customers.service import customer_without_phone, find_or_create_customer, normalize_phone
from ..errors import Conflict, NotFound
from ..events import registry
from ..events.outbox import record_event
from ..extensions import db
from ..timestamps import utcnow
from ..users.service import ensure_user
from . import payloads
from .models import CANCELLED, COMPLETED, SCHEDULED, SOURCE_CALLNFY, Appointment


class InvalidTransition(Conflict):
    code = "INVALID_TRANSITION"


def list_appointments(user_id: uuid.UUID, *, status: str | None = None, starts_from: datetime | None = None,
                      starts_before: datetime | None = None, offset: int = 0,
                      limit: int = 20) -> tuple[list[Appointment], int]:
    """One page of the user's appointments, newest first, and how many match in all."""
    conditions = [Appointment.user_id == user_id]
    if status:
        conditions.append(Appointment.status == status)
    if starts_from:
        conditions.append(Appointment.scheduled_at >= starts_from)
    if starts_before:
        conditions.append(Appointment.scheduled_at < starts_before)
    total = db.session.scalar(select(func.count()).select_from(Appointment).where(*conditions))
    items = db.session.scalars(
        select(Appointment).where(*conditions)
        .order_by(Appointment.created_at.desc(), Appointment.id.desc()).offset(offset).limit(limit)
    ).all()
    return list(items), total or 0


SEARCH_LIMIT = 25


def find_appointments(user_id: uuid.UUID, *, phone: str | None = None, email: str | None = None,
                      status: str | None = None) -> list[Appointment]:
    """The appointments of the user's customers with this phone (normalised as stored) and/or email (any
    case; given both, both must match): upcoming ones first, soonest first, then past ones, latest
    first. At most SEARCH_LIMIT."""
    conditions = [Appointment.user_id == user_id]
    if phone is not None:
        conditions.append(Customer.phone == normalize_phone(phone))
    if email is not None:
        conditions.append(func.lower(Customer.email) == email.strip().lower())
    if status:
        conditions.append(Appointment.status == status)
    now = utcnow()
    upcoming = Appointment.scheduled_at >= now
    return list(db.session.scalars(
        select(Appointment).join(Appointment.customer).where(*conditions)
        .order_by(case((upcoming, 0), else_=1), case((upcoming, Appointment.scheduled_at)),
                  Appointment.scheduled_at.desc(), Appointment.id)
        .limit(SEARCH_LIMIT)).unique())


def find_by_idempotency_key(user_id: uuid.UUID, key: str) -> Appointment | None:
    """The user's appointment created with this idempotency key, if any."""
    return db.session.scalars(select(Appointment).where(Appointment.user_id == user_id,
                                                        Appointment.idempotency_key == key)).one_or_none()


def get_appointment(user_id: uuid.UUID, appointment_id: uuid.UUID | None, *, for_update: bool = False) -> Appointment:
    """The user's appointment; another user's id is indistinguishable from a missing one (404)."""
    statement = select(Appointment).where(Appointment.id == appointment_id, Appointment.user_id == user_id)
    if for_update:  # serialises concurrent transitions of one appointment
        statement = statement.with_for_update(of=Appointment)
    appointment = db.session.scalars(statement).one_or_none() if appointment_id else None
    if appointment is None:
        raise NotFound("Appointment not found")
    return appointment


def create_appointment(user_id: uuid.UUID, *, customer_name: str, customer_phone: str | None, scheduled_at: datetime,
                       duration: int, customer_email: str | None = None, notes: str | None = None,
                       source: str = SOURCE_CALLNFY,
                       idempotency_key: str | None = None, idempotency_fingerprint: str | None = None) -> Appointment:
    """`customer_phone` None: an appointment imported from a calendar, whose customer is found
    by email or created without a phone (the API itself always requires a phone). `idempotency_key`:
    unique per user, so a second create with it fails at flush (IntegrityError) once the first commits."""
    ensure_user(user_id)
    if customer_phone is None:
        customer = customer_without_phone(user_id, name=customer_name, email=customer_email)
    else:
        customer = find_or_create_customer(user_id, phone=normalize_phone(customer_phone), name=customer_name,
                                           email=customer_email)
    appointment = Appointment(id=uuid.uuid4(), user_id=user_id, customer=customer, scheduled_at=scheduled_at,
                              duration=duration, notes=notes, source=source, status=SCHEDULED, version=1,
                              idempotency_key=idempotency_key,
                              idempotency_fingerprint=idempotency_fingerprint)
    db.session.add(appointment)
    _record(registry.APPOINTMENT_CREATED, appointment)
    db.session.flush()
    return appointment


def _record(event_type: str, appointment: Appointment) -> None:
    """Add the change's event, its payload built from the appointment as it now stands."""
    record_event(appointment.user_id, event_type, payloads.appointment_payload(event_type, appointment))


def _require_scheduled(appointment: Appointment, action: str) -> None:
    if appointment.status != SCHEDULED:
        raise InvalidTransition(f"Cannot {action} an appointment that is {appointment.status}",
                                details={"status": appointment.status})


def update_appointment(user_id: uuid.UUID, appointment_id: uuid.UUID | None,
                       changes: dict[str, Any]) -> Appointment:
    """Reschedule, change duration or notes, or correct the customer's details (scheduled only).

    Every change records `appointment.updated` (what calendar sync follows); a new time or duration
    records `appointment.rescheduled` too (a webhook event, with the time and duration it had)."""
    appointment = get_appointment(user_id, appointment_id, for_update=True)
    _require_scheduled(appointment, "change")
    previous_at, previous_duration = appointment.scheduled_at, appointment.duration
    customer = appointment.customer
    if "customer_phone" in changes:
        # A corrected number may belong to a known customer (keep their details unless given)
        # or to nobody yet (the new customer inherits this one's name).
        customer = find_or_create_customer(
            user_id, phone=normalize_phone(changes["customer_phone"]), name=changes.get("customer_name"),
            email=changes.get("customer_email"), default_name=customer.name)
        appointment.customer = customer
    else:
        if changes.get("customer_name"):
            customer.name = changes["customer_name"]
        if "customer_email" in changes:
            customer.email = changes["customer_email"]
    for field in ("scheduled_at", "duration", "notes"):
        if field in changes:
            setattr(appointment, field, changes[field])
    appointment.version += 1
    db.session.flush()
    _record(registry.APPOINTMENT_UPDATED, appointment)
    if (appointment.scheduled_at, appointment.duration) != (previous_at, previous_duration):
        record_event(appointment.user_id, registry.APPOINTMENT_RESCHEDULED,
                     payloads.rescheduled_payload(appointment, previous_at, previous_duration))
    db.session.flush()
    return appointment


def cancel_appointment(user_id: uuid.UUID, appointment_id: uuid.UUID | None,
                       reason: str | None = None) -> Appointment:
    appointment = get_appointment(user_id, appointment_id, for_update=True)
    _require_scheduled(appointment, "cancel")
    appointment.status = CANCELLED
    appointment.cancelled_at = utcnow()
    appointment.cancel_reason = reason
    appointment.version += 1
    _record(registry.APPOINTMENT_CANCELLED, appointment)
    db.session.flush()
    return appointment


def complete_appointment(user_id: uuid.UUID, appointment_id: uuid.UUID | None,
                         duration: int | None = None) -> Appointment:
    appointment = get_appointment(user_id, appointment_id, for_update=True)
    _require_scheduled(appointment, "complete")
    appointment.status = COMPLETED
    appointment.completed_at = utcnow()
    if duration is not None:
        appointment.duration = duration
    appointment.version += 1
    _record(registry.APPOINTMENT_COMPLETED, appointment)
    db.session.flush()
    return appointment
