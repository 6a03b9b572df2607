"""Request and response shapes of /appointments."""

import marshmallow as ma
from marshmallow import validate

from .. import public_ids
from ..calendar_sync.models import STATES as SYNC_STATES
from ..customers.models import EMAIL_MAX, NAME_MAX, PHONE_MAX
from ..timestamps import SaneTime, Timestamp
from .models import DURATION_MAX, DURATION_MIN, NOTES_MAX, REASON_MAX, STATUSES


def Duration(**kwargs) -> ma.fields.Integer:  # noqa: N802 - reads like a field class
    return ma.fields.Integer(strict=True, validate=validate.Range(DURATION_MIN, DURATION_MAX),
                             metadata={"description": f"minutes, {DURATION_MIN}-{DURATION_MAX}"}, **kwargs)


def When(description: str = "ISO-8601 with a timezone offset or Z", **kwargs) -> ma.fields.AwareDateTime:  # noqa: N802
    return SaneTime(description, **kwargs)


class StrictBoolean(ma.fields.Boolean):
    """A JSON true or false, as documented: marshmallow's Boolean also takes 0, 1, "yes", "on"…"""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


def RequireFree(**kwargs) -> ma.fields.Boolean:  # noqa: N802 - reads like a field class
    kwargs.setdefault("load_default", False)
    return StrictBoolean(data_key="requireFree", metadata={"description": (
        "book only if the slot is free: no overlap with busy time (buffers included), inside working "
        "hours, with the notice; otherwise 409 SLOT_UNAVAILABLE listing the conflicts")}, **kwargs)


# Request schemas load camelCase wire names (data_key) into the services' snake_case arguments.
class CustomerFieldsMixin:
    customer_name = ma.fields.String(data_key="customerName", validate=validate.Length(1, NAME_MAX))
    customer_phone = ma.fields.String(data_key="customerPhone", validate=validate.Length(3, PHONE_MAX),
                                      metadata={"description": "stored in E.164 when it parses"})
    customer_email = ma.fields.Email(data_key="customerEmail", allow_none=True,
                                     validate=validate.Length(max=EMAIL_MAX))


class AppointmentCreateSchema(CustomerFieldsMixin, ma.Schema):
    customer_name = ma.fields.String(data_key="customerName", required=True, validate=validate.Length(1, NAME_MAX))
    customer_phone = ma.fields.String(data_key="customerPhone", required=True,
                                      validate=validate.Length(3, PHONE_MAX))
    scheduled_at = When(data_key="scheduledAt", required=True)
    duration = Duration(load_default=30)
    notes = ma.fields.String(allow_none=True, validate=validate.Length(max=NOTES_MAX))
    require_free = RequireFree()
    hold_id = ma.fields.String(data_key="holdId", validate=validate.Length(1, 64), metadata={
        "description": "a live hold of this slot (POST /availability/holds): the booking always succeeds "
                       "and consumes it; an expired or used hold is checked like requireFree"})


class AppointmentUpdateSchema(CustomerFieldsMixin, ma.Schema):
    class Meta:  # what _not_empty refuses: requireFree alone changes nothing
        openapi = {"minProperties": 1, "anyOf": [{"required": [name]} for name in (
            "customerName", "customerPhone", "customerEmail", "scheduledAt", "duration", "notes")]}

    scheduled_at = When(data_key="scheduledAt")
    duration = Duration()
    notes = ma.fields.String(allow_none=True, validate=validate.Length(max=NOTES_MAX))
    require_free = RequireFree(load_default=ma.missing)

    @ma.validates_schema
    def _not_empty(self, data, **kwargs):
        if not {k: v for k, v in data.items() if k != "require_free"}:
            raise ma.ValidationError("Give at least one field to change")


class CancelSchema(ma.Schema):
    reason = ma.fields.String(allow_none=True, validate=validate.Length(max=REASON_MAX))


class CompleteSchema(ma.Schema):
    duration = Duration()


class AppointmentQuerySchema(ma.Schema):
    """A window with `to` at or before `from` is empty, not an error: a document cannot state that
    rule, and an empty window is a plain answer (for the SPA's calendar views too)."""

    status = ma.fields.String(validate=validate.OneOf(STATUSES))
    from_ = When("scheduledAt on or after", data_key="from")
    to = When("scheduledAt before")


class CalendarSyncSchema(ma.Schema):
    state = ma.fields.String(metadata={"enum": list(SYNC_STATES),
                                       "description": "off: no connection to that calendar was involved"})
    eventId = ma.fields.String(allow_none=True)
    error = ma.fields.String(allow_none=True, metadata={"description": "why the last push failed, if it did"})
    syncedAt = Timestamp(allow_none=True)


class GoogleSyncSchema(CalendarSyncSchema):
    leftInGoogle = ma.fields.Boolean(metadata={"description": (
        "true when the appointment came from the owner's own Google event and was cancelled in Callnfy: "
        "Callnfy never deletes an event it did not create, so the event stays in Google")})


class MicrosoftSyncSchema(CalendarSyncSchema):
    leftInOutlook = ma.fields.Boolean(metadata={"description": (
        "true when the appointment came from the owner's own Outlook event and was cancelled in Callnfy: "
        "Callnfy never deletes an event it did not create, so the event stays in Outlook")})


class AppointmentSchema(ma.Schema):
    """The appointment wherever it is shown: /appointments and, per event, the webhooks (payloads.py)."""

    id = ma.fields.Function(lambda a: public_ids.encode(public_ids.APPOINTMENT, a.id))
    # Through the relationship: a new appointment's customer_id is only set at flush, after its event is built.
    customerId = ma.fields.Function(lambda a: public_ids.encode(public_ids.CUSTOMER, a.customer.id))
    customerName = ma.fields.String(attribute="customer.name")
    customerPhone = ma.fields.String(attribute="customer.phone", allow_none=True,
                                     metadata={"description": "null for an appointment imported from Google "
                                                              "Calendar whose customer's phone is unknown"})
    customerEmail = ma.fields.String(attribute="customer.email", allow_none=True)
    scheduledAt = Timestamp(attribute="scheduled_at")
    duration = ma.fields.Integer()
    status = ma.fields.String(metadata={"enum": list(STATUSES)})
    notes = ma.fields.String(allow_none=True)
    source = ma.fields.String(metadata={"enum": ["callnfy", "google", "microsoft"]})
    cancelledAt = Timestamp(attribute="cancelled_at", allow_none=True)
    cancelReason = ma.fields.String(attribute="cancel_reason", allow_none=True)
    completedAt = Timestamp(attribute="completed_at", allow_none=True)
    createdAt = Timestamp(attribute="created_at")
    updatedAt = Timestamp(attribute="updated_at")
    googleSync = ma.fields.Nested(GoogleSyncSchema, attribute="google_sync",
                                  metadata={"description": "The appointment in the user's Google calendar"})
    microsoftSync = ma.fields.Nested(MicrosoftSyncSchema, attribute="microsoft_sync",
                                     metadata={"description": "The appointment in the user's Outlook calendar"})
