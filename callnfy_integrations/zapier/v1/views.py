"""HTTP surface of /zapier/v1: the Zapier app's actions and searches, authenticated by X-Callnfy-Key alone.

The same services, validation and envelope as the JWT API; the account is the key's owner, so a key
only ever reaches its own account (another account's ids are 404, as under JWT).
"""

from __future__ import annotations

import functools
import hashlib
import json
from datetime import UTC, datetime, time, timedelta
from typing import Any

from flask import g, request
from flask.views import MethodView
from sqlalchemy.exc import IntegrityError

from ... import public_ids
from ...api import Blueprint, ErrorEnvelopeSchema
from ...appointments import service as appointments
from ...appointments.models import Appointment
from ...appointments.schemas import AppointmentSchema, CancelSchema, CompleteSchema
from ...availability import refresh
from ...availability import service as availability
from ...availability.rules import APPOINTMENT, HOLD, MIN_NOTICE, OUTSIDE_WORKING_HOURS
from ...customers.service import find_customers
from ...errors import Conflict, Unauthorized
from ...extensions import db
from ...timestamps import format_timestamp
from .. import rate_limit, service
from .schemas import (
    AppointmentSearchSchema,
    CustomerSchema,
    CustomerSearchSchema,
    MeSchema,
    RescheduleSchema,
    SlotSchema,
    SlotsQuerySchema,
    ZapierAppointmentCreateSchema,
)

blp = Blueprint("zapier_v1", __name__, url_prefix="/zapier/v1",
                description="Actions and searches for the Zapier app, authenticated by X-Callnfy-Key")

IDEMPOTENCY_CONSTRAINT = "uq_appointments_user_id_idempotency_key"
SLOT_SEARCH_DAYS = 31  # how far ahead Find Available Times looks
SLOT_WINDOW_DAYS = 7  # read and searched a week at a time, so the usual answer reads one week
SLOT_STEP = 15  # minutes between candidate starts, as GET /availability's default


class IdempotencyKeyReused(Conflict):
    code = "IDEMPOTENCY_KEY_REUSED"
    message = ("This idempotencyKey was already used for a different appointment. Use a new key for each new "
               "appointment (for example the trigger's id), and the same key only to retry the same request.")


def key_required(view):
    """X-Callnfy-Key must be a live key; the account is its owner. Every failure is a 401, and failures
    are rate-limited like the REST hooks' (per address, and per address and key)."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        address = request.remote_addr or "unknown"
        presented = request.headers.get("X-Callnfy-Key")
        # No account in the path: a broken Zap's wrong key counts against that key, not its neighbours'.
        counted = "key:" + service.hash_key(presented or "")[:16]
        rate_limit.ensure_allowed(address, counted)
        try:
            g.zapier_user_id = service.key_owner(presented)
        except Unauthorized:
            rate_limit.record_failure(address, counted)
            raise
        return view(*args, **kwargs)

    wrapper = blp.alt_response(401, schema=ErrorEnvelopeSchema, description="Wrong, missing or revoked key")(wrapper)
    wrapper = blp.alt_response(429, schema=ErrorEnvelopeSchema, description="Too many failed key checks")(wrapper)
    return blp.doc(security=[{"zapierKey": []}])(wrapper)


def _appointment_id(appointment_id: str):
    return public_ids.decode(public_ids.APPOINTMENT, appointment_id)


_WHY = {APPOINTMENT: "another appointment (buffers included)", HOLD: "a time held for another booking",
        OUTSIDE_WORKING_HOURS: "outside your working hours",
        MIN_NOTICE: "too soon: it gives less than your minimum notice"}


def _explained(exc: availability.SlotUnavailable, start: datetime, minutes: int) -> availability.SlotUnavailable:
    """The 409 a Zap's user reads in their Zap history: which slot, why, and what to do."""
    reasons = []
    for conflict in exc.details["conflicts"]:
        reason = _WHY.get(conflict["source"], "an event in your calendar")
        if reason not in reasons:
            reasons.append(reason)
    exc.message = (f"{format_timestamp(start)} for {minutes} minutes is not free ({'; '.join(reasons)}). "
                   "Choose another time (Find Available Times lists free ones), or turn off "
                   "\"only if the slot is free\" to book it anyway.")
    return exc


def _guard(user_id, start: datetime, minutes: int, appointment_id: Any = None, changes: dict | None = None) -> None:
    """requireFree, as under JWT (`refresh.guard_booking` or `guard_move`), with a refusal a Zap's user reads."""
    try:
        if appointment_id is None:
            refresh.guard_booking(user_id, start, minutes, require_free=True)
        else:
            refresh.guard_move(user_id, appointment_id, changes)
    except availability.SlotUnavailable as exc:
        raise _explained(exc, start, minutes) from None


def _fingerprint(body: dict[str, Any]) -> str:
    """What a create asked for: a retry of it has the same digest, another request another one."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def _replay(existing: Appointment, fingerprint: str) -> tuple[Appointment, int]:
    if existing.idempotency_fingerprint != fingerprint:
        raise IdempotencyKeyReused(details={
            "idempotencyKey": existing.idempotency_key,
            "appointmentId": public_ids.encode(public_ids.APPOINTMENT, existing.id)})
    return existing, 200


def _is_idempotency_conflict(exc: IntegrityError) -> bool:
    return getattr(getattr(exc.orig, "diag", None), "constraint_name", None) == IDEMPOTENCY_CONSTRAINT


@blp.route("/me")
class Me(MethodView):
    @key_required
    @blp.response(200, MeSchema)
    def get(self):
        """The account the key belongs to (the Zapier app's connection test and label)"""
        return service.account(g.zapier_user_id)


@blp.route("/appointments")
class Appointments(MethodView):
    @key_required
    @blp.arguments(ZapierAppointmentCreateSchema)
    @blp.response(201, AppointmentSchema)
    @blp.alt_response(200, schema=AppointmentSchema, success=True,
                      description="Created before with this idempotencyKey: the same appointment")
    @blp.alt_response(409, schema=ErrorEnvelopeSchema,
                      description="SLOT_UNAVAILABLE (with requireFree); IDEMPOTENCY_KEY_REUSED")
    def post(self, body):
        """Book an appointment (the customer is found or created by phone); idempotent on idempotencyKey"""
        user_id = g.zapier_user_id
        key, require_free = body.pop("idempotency_key", None), body.pop("require_free")
        fingerprint = _fingerprint({**body, "require_free": require_free}) if key else None
        if key:
            existing = appointments.find_by_idempotency_key(user_id, key)
            if existing is not None:
                return _replay(existing, fingerprint)
        try:
            if require_free:
                _guard(user_id, body["scheduled_at"], body["duration"])
            appointment = appointments.create_appointment(user_id, **body, idempotency_key=key,
                                                          idempotency_fingerprint=fingerprint)
            db.session.commit()
        except (IntegrityError, availability.SlotUnavailable) as exc:
            # A concurrent retry with the same key committed first: its appointment is the answer (this
            # one's insert met the unique constraint, or its requireFree check met that appointment).
            db.session.rollback()
            if key and (isinstance(exc, availability.SlotUnavailable) or _is_idempotency_conflict(exc)):
                existing = appointments.find_by_idempotency_key(user_id, key)
                if existing is not None:
                    return _replay(existing, fingerprint)
            raise
        return appointment, 201

    @key_required
    @blp.arguments(AppointmentSearchSchema, location="query")
    @blp.response(200, AppointmentSchema(many=True))
    def get(self, query):
        """Find a customer's appointments by phone or email: upcoming first (soonest first), then past
        (latest first); at most 25"""
        return appointments.find_appointments(g.zapier_user_id, phone=query.get("customer_phone"),
                                              email=query.get("customer_email"), status=query.get("status"))


@blp.route("/appointments/<appointment_id>/reschedule")
class Reschedule(MethodView):
    @key_required
    @blp.arguments(RescheduleSchema)
    @blp.response(200, AppointmentSchema)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="No such appointment of this account")
    @blp.alt_response(409, schema=ErrorEnvelopeSchema,
                      description="INVALID_TRANSITION (not scheduled); SLOT_UNAVAILABLE with requireFree")
    def post(self, body, appointment_id):
        """Move a scheduled appointment (and change its length); requireFree: only to a free slot"""
        user_id, appointment_id = g.zapier_user_id, _appointment_id(appointment_id)
        changes = {name: body[name] for name in ("scheduled_at", "duration") if name in body}
        if body["require_free"]:
            minutes = changes.get("duration") or appointments.get_appointment(user_id, appointment_id).duration
            _guard(user_id, changes["scheduled_at"], minutes, appointment_id, changes)
        appointment = appointments.update_appointment(user_id, appointment_id, changes)
        db.session.commit()
        return appointment


@blp.route("/appointments/<appointment_id>/cancel")
class Cancel(MethodView):
    @key_required
    @blp.arguments(CancelSchema, required=False)
    @blp.response(200, AppointmentSchema)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="No such appointment of this account")
    @blp.alt_response(409, schema=ErrorEnvelopeSchema, description="INVALID_TRANSITION: not scheduled")
    def post(self, body, appointment_id):
        """Cancel a scheduled appointment"""
        appointment = appointments.cancel_appointment(g.zapier_user_id, _appointment_id(appointment_id),
                                                      body.get("reason"))
        db.session.commit()
        return appointment


@blp.route("/appointments/<appointment_id>/complete")
class Complete(MethodView):
    @key_required
    @blp.arguments(CompleteSchema, required=False)
    @blp.response(200, AppointmentSchema)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="No such appointment of this account")
    @blp.alt_response(409, schema=ErrorEnvelopeSchema, description="INVALID_TRANSITION: not scheduled")
    def post(self, body, appointment_id):
        """Mark a scheduled appointment completed, optionally with its actual duration"""
        appointment = appointments.complete_appointment(g.zapier_user_id, _appointment_id(appointment_id),
                                                        body.get("duration"))
        db.session.commit()
        return appointment


@blp.route("/customers")
class Customers(MethodView):
    @key_required
    @blp.arguments(CustomerSearchSchema, location="query")
    @blp.response(200, CustomerSchema(many=True))
    def get(self, query):
        """Find customers by phone or email (both given: both must match); at most 25"""
        return find_customers(g.zapier_user_id, phone=query.get("phone"), email=query.get("email"))


@blp.route("/availability/slots")
class Slots(MethodView):
    @key_required
    @blp.arguments(SlotsQuerySchema, location="query")
    @blp.response(200, SlotSchema(many=True))
    def get(self, query):
        """The next free slots of a length, from now or `from`, at most 31 days ahead (fewer when the
        calendar is full)"""
        return next_slots(g.zapier_user_id, query.get("from_") or datetime.now(UTC), query["duration"],
                          query["count"])


def next_slots(user_id, start: datetime, minutes: int, count: int) -> list[dict[str, str]]:
    """Search forward a week at a time (each window's stale calendars read first, as GET /availability
    does) until `count` slots are found or SLOT_SEARCH_DAYS are searched. Windows end at the owner's
    local midnight, which no working interval crosses, so no slot is cut in two by a window's end."""
    limit, found = start + timedelta(days=SLOT_SEARCH_DAYS), []
    window_start = start
    while window_start < limit and len(found) < count:
        settings_now = refresh.before_reading(user_id, window_start, min(window_start + timedelta(
            days=SLOT_WINDOW_DAYS), limit))
        local_day = window_start.astimezone(settings_now[0].zone).date() + timedelta(days=SLOT_WINDOW_DAYS)
        window_end = min(datetime.combine(local_day, time(0), tzinfo=settings_now[0].zone).astimezone(UTC), limit)
        answer = availability.availability(user_id, window_start, window_end, minutes, SLOT_STEP, settings_now)
        found += answer["slots"][:count - len(found)]
        window_start = window_end
    db.session.commit()
    return [{"start": format_timestamp(s), "end": format_timestamp(e)} for s, e in found]
