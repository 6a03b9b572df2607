"""Request and response shapes of the Zapier endpoints."""

import marshmallow as ma
from marshmallow import validate

from .. import public_ids
from ..timestamps import Timestamp
from .models import HOOK_URL_MAX
from .service import ZAPIER_EVENTS


class ApiKeySchema(ma.Schema):
    apiKey = ma.fields.String(metadata={"example": "czp_" + "x" * 40})
    webhookUrl = ma.fields.String()
    createdAt = Timestamp()


class AuthTestSchema(ma.Schema):
    userId = ma.fields.String()
    events = ma.fields.List(ma.fields.String())


class SubscribeSchema(ma.Schema):
    hookUrl = ma.fields.String(required=True, validate=validate.Length(1, HOOK_URL_MAX))
    event = ma.fields.String(required=True, validate=validate.OneOf(ZAPIER_EVENTS))


class SubscriptionSchema(ma.Schema):
    id = ma.fields.Function(lambda s: public_ids.encode(public_ids.SUBSCRIPTION, s.id))
    event = ma.fields.String()
    hookUrl = ma.fields.String(attribute="hook_url")
    createdAt = Timestamp(attribute="created_at")
    status = ma.fields.String(metadata={
        "enum": ["active", "disabled"],
        "description": "disabled: every delivery failed for WEBHOOK_DISABLE_AFTER_DAYS; subscribing the same "
                       "hookUrl and event again enables it"})
    disabledAt = Timestamp(attribute="disabled_at", allow_none=True)
    disabledReason = ma.fields.String(attribute="disabled_reason", allow_none=True)


class SampleSchema(ma.Schema):
    id = ma.fields.String()
    event = ma.fields.String()
    timestamp = ma.fields.String()
    data = ma.fields.Dict()
