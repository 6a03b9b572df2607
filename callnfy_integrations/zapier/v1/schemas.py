"""Request and response shapes of /zapier/v1: the JWT API's fields and validation, named the same."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from ... import public_ids
from ...appointments.models import DURATION_MAX, DURATION_MIN, IDEMPOTENCY_KEY_MAX, STATUSES
from ...appointments.schemas import AppointmentCreateSchema, Duration, RequireFree, When
from ...customers.models import EMAIL_MAX, PHONE_MAX

SLOTS_MAX, SLOTS_DEFAULT = 20, 3


class MeSchema(ma.Schema):
    userId = ma.fields.String()
    webhookUrl = ma.fields.String(metadata={"description": "the REST hooks' base URL for this account"})
    events = ma.fields.List(ma.fields.String(), metadata={"description": "the events a hook can subscribe to"})
    calendarEmail = ma.fields.String(allow_none=True, metadata={
        "description": "the connected Google calendar's account; null without a Google connection"})


class ZapierAppointmentCreateSchema(AppointmentCreateSchema):
    """POST /appointments' fields (holds aside: a Zap cannot keep one), and an idempotency key."""

    class Meta:
        exclude = ("hold_id",)

    idempotency_key = ma.fields.String(data_key="idempotencyKey", validate=validate.Length(1, IDEMPOTENCY_KEY_MAX),
                                       metadata={"description": (
                                           "the same key again (this account) answers 200 with the appointment it "
                                           "created, even when the retries race; with a different request, 409 "
                                           "IDEMPOTENCY_KEY_REUSED")})


class RescheduleSchema(ma.Schema):
    scheduled_at = When(data_key="scheduledAt", required=True)
    duration = Duration()  # unchanged when left out
    require_free = RequireFree()


def _one_of(**names: str):
    """A schema check: at least one of these fields (attribute=wire name) is given."""

    def check(self, data, **kwargs):
        if not any(data.get(attribute) is not None for attribute in names):
            wire = list(names.values())
            raise ma.ValidationError(f"Give {' or '.join(wire)}.", field_name=wire[0])
    return check


class CustomerSearchSchema(ma.Schema):
    phone = ma.fields.String(validate=validate.Length(1, PHONE_MAX), metadata={
        "description": "normalised like stored numbers: +44 7700 900123 finds +447700900123"})
    email = ma.fields.String(validate=validate.Length(1, EMAIL_MAX), metadata={"description": "any case"})

    _either = ma.validates_schema(_one_of(phone="phone", email="email"))


class AppointmentSearchSchema(ma.Schema):
    customer_phone = ma.fields.String(data_key="customerPhone", validate=validate.Length(1, PHONE_MAX), metadata={
        "description": "normalised like stored numbers"})
    customer_email = ma.fields.String(data_key="customerEmail", validate=validate.Length(1, EMAIL_MAX),
                                      metadata={"description": "any case"})
    status = ma.fields.String(validate=validate.OneOf(STATUSES))

    _either = ma.validates_schema(_one_of(customer_phone="customerPhone", customer_email="customerEmail"))


class SlotsQuerySchema(ma.Schema):
    duration = ma.fields.Integer(required=True, validate=validate.Range(DURATION_MIN, DURATION_MAX),
                                 metadata={"description": f"minutes, {DURATION_MIN}-{DURATION_MAX}"})
    from_ = When("search from here (default: now)", data_key="from")
    count = ma.fields.Integer(load_default=SLOTS_DEFAULT, validate=validate.Range(1, SLOTS_MAX), metadata={
        "description": f"how many slots, 1-{SLOTS_MAX} (default {SLOTS_DEFAULT})"})


class CustomerSchema(ma.Schema):
    id = ma.fields.Function(lambda c: public_ids.encode(public_ids.CUSTOMER, c.id))
    name = ma.fields.String()
    phone = ma.fields.String(allow_none=True)
    email = ma.fields.String(allow_none=True)


class SlotSchema(ma.Schema):
    start = ma.fields.String(metadata={"format": "date-time"})
    end = ma.fields.String(metadata={"format": "date-time"})
