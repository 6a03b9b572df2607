"""Request and response shapes of /calls."""

import marshmallow as ma
from marshmallow import validate

from .. import public_ids
from ..customers.models import NAME_MAX, PHONE_MAX
from ..fields import HttpUrl
from ..timestamps import SaneTime, Timestamp
from .models import DURATION_MAX, DURATION_MIN, SENTIMENTS, TRANSCRIPT_MAX, URL_MAX


class CallCreateSchema(ma.Schema):
    """Loads camelCase wire names (data_key) into `record_call`'s snake_case arguments."""

    customer_name = ma.fields.String(data_key="customerName", allow_none=True, validate=validate.Length(1, NAME_MAX))
    customer_phone = ma.fields.String(data_key="customerPhone", required=True, validate=validate.Length(3, PHONE_MAX))
    duration = ma.fields.Integer(required=True, strict=True, validate=validate.Range(DURATION_MIN, DURATION_MAX),
                                 metadata={"description": f"seconds, {DURATION_MIN}-{DURATION_MAX}"})
    recording_url = HttpUrl(data_key="recordingUrl", allow_none=True, max_length=URL_MAX)
    transcript = ma.fields.String(allow_none=True, validate=validate.Length(max=TRANSCRIPT_MAX))
    sentiment = ma.fields.String(allow_none=True, validate=validate.OneOf(SENTIMENTS))
    received_at = SaneTime("default: now", data_key="receivedAt")


class CallSchema(ma.Schema):
    """The call wherever it is shown: /calls and the `call.received` webhook (service.call_payload)."""

    id = ma.fields.Function(lambda c: public_ids.encode(public_ids.CALL, c.id))
    # Through the relationship: a new call's customer_id is only set at flush, after its event is built.
    customerId = ma.fields.Function(lambda c: public_ids.encode(public_ids.CUSTOMER, c.customer.id))
    customerName = ma.fields.String(attribute="customer.name")
    customerPhone = ma.fields.String(attribute="customer.phone")
    duration = ma.fields.Integer()
    recordingUrl = ma.fields.String(attribute="recording_url", allow_none=True)
    transcript = ma.fields.String(allow_none=True)
    sentiment = ma.fields.String(allow_none=True, metadata={"enum": list(SENTIMENTS)})
    receivedAt = Timestamp(attribute="received_at")
