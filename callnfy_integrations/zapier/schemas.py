"""Request and response shapes of the Zapier endpoints."""

import marshmallow as ma
from marshmallow import validate

from .. import public_ids
from ..timestamps import Timestamp, format_timestamp
from .hook_urls import hook_url_pattern
from .models import DELIVERY_STATUSES, HOOK_URL_MAX
from .service import ZAPIER_EVENTS


class ApiKeySchema(ma.Schema):
    apiKey = ma.fields.String(metadata={"example": "czp_" + "x" * 40})
    webhookUrl = ma.fields.String()
    createdAt = Timestamp()


class AuthTestSchema(ma.Schema):
    userId = ma.fields.String()
    events = ma.fields.List(ma.fields.String())


class SubscribeSchema(ma.Schema):
    hookUrl = ma.fields.String(required=True, validate=validate.Length(1, HOOK_URL_MAX), metadata={
        "description": "https, a host in WEBHOOK_ALLOWED_HOSTS (the pattern lists them) resolving to public "
                       "addresses only"})
    event = ma.fields.String(required=True, validate=validate.OneOf(ZAPIER_EVENTS))


def document_hook_urls(spec, allowed_hosts: list[str]) -> None:
    """The pattern depends on this deployment's WEBHOOK_ALLOWED_HOSTS, so it is added to the document
    when the app is built; `validate_hook_url` checks the same pattern."""
    spec.components.schemas["Subscribe"]["properties"]["hookUrl"]["pattern"] = hook_url_pattern(allowed_hosts)


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


class DeliveryQuerySchema(ma.Schema):
    status = ma.fields.String(validate=validate.OneOf(DELIVERY_STATUSES))


class DeliverySchema(ma.Schema):
    id = ma.fields.Function(lambda d: public_ids.encode(public_ids.DELIVERY, d.id))
    event = ma.fields.String(attribute="event_type", metadata={"description": "the event's type"})
    eventId = ma.fields.Function(lambda d: public_ids.encode(public_ids.EVENT, d.event_id),
                                 metadata={"description": "the event's id, also the webhook-id header"})
    subscriptionId = ma.fields.Function(lambda d: public_ids.encode(public_ids.SUBSCRIPTION, d.subscription_id))
    hookUrl = ma.fields.String(attribute="hook_url")
    status = ma.fields.String(metadata={"enum": list(DELIVERY_STATUSES)})
    attempts = ma.fields.Integer()
    lastStatusCode = ma.fields.Integer(attribute="last_status_code", allow_none=True)
    lastError = ma.fields.String(attribute="last_error", allow_none=True)
    nextAttemptAt = ma.fields.Function(
        lambda d: format_timestamp(d.next_attempt_at) if d.status == "pending" else None,
        metadata={"description": "when the next attempt is due (pending deliveries only)"})
    createdAt = Timestamp(attribute="created_at")
    deliveredAt = Timestamp(attribute="delivered_at", allow_none=True)
