"""HTTP surface of Zapier: key management (JWT) and the REST hooks Zapier calls (X-Callnfy-Key)."""

from __future__ import annotations

import functools

from flask import g, request
from flask.views import MethodView

from .. import public_ids
from ..api import Blueprint, ErrorEnvelopeSchema, MessageSchema, no_store
from ..auth import current_user_id
from ..errors import Unauthorized, unexpected_error_message
from ..extensions import db
from . import delivery, rate_limit, service
from .schemas import (
    ApiKeySchema,
    AuthTestSchema,
    DeliveryQuerySchema,
    DeliverySchema,
    SampleSchema,
    SubscribeSchema,
    SubscriptionSchema,
)

keys_blp = Blueprint("zapier", __name__, url_prefix="/integrations/zapier",
                     description="The account's Zapier API key")
hooks_blp = Blueprint("zapier_hooks", __name__, url_prefix="/webhooks/zapier",
                      description="REST hooks for Zapier, authenticated by X-Callnfy-Key")


@keys_blp.route("/generate-key")
class GenerateKey(MethodView):
    @keys_blp.login_required
    @no_store
    @keys_blp.response(200, ApiKeySchema)
    @keys_blp.alt_response(500, schema=ErrorEnvelopeSchema, description="Failed to generate API key")
    @unexpected_error_message("Failed to generate API key")
    def post(self):
        """Create the account's API key, or return the existing one"""
        key = service.generate_key(current_user_id())
        db.session.commit()
        return key


@keys_blp.route("/revoke-key")
class RevokeKey(MethodView):
    @keys_blp.login_required
    @keys_blp.response(200, MessageSchema)
    @keys_blp.alt_response(500, schema=ErrorEnvelopeSchema, description="Failed to revoke API key")
    @unexpected_error_message("Failed to revoke API key")
    def delete(self):
        """Revoke the API key: its subscriptions are deleted and pending deliveries cancelled"""
        service.revoke_key(current_user_id())
        db.session.commit()
        return {"message": "Zapier API key revoked successfully"}


@keys_blp.route("/deliveries")
class Deliveries(MethodView):
    @keys_blp.login_required
    @keys_blp.arguments(DeliveryQuerySchema, location="query")
    @keys_blp.response(200, DeliverySchema(many=True))
    @keys_blp.paginate()
    def get(self, query, pagination_parameters):
        """The account's webhook deliveries, newest first, filterable by status (page metadata in X-Pagination)"""
        items, total = delivery.list_deliveries(current_user_id(), status=query.get("status"),
                                                offset=pagination_parameters.first_item,
                                                limit=pagination_parameters.page_size)
        pagination_parameters.item_count = total
        return items


@keys_blp.route("/deliveries/<delivery_id>/retry")
class RetryDelivery(MethodView):
    @keys_blp.login_required
    @keys_blp.response(200, DeliverySchema)
    @keys_blp.alt_response(404, schema=ErrorEnvelopeSchema, description="No such delivery of this account")
    @keys_blp.alt_response(409, schema=ErrorEnvelopeSchema,
                           description="Only dead or cancelled-by-disable deliveries can be retried")
    def post(self, delivery_id):
        """Send a dead delivery (or one cancelled when its subscription was disabled) again, from the start
        of the retry schedule; a disabled subscription is enabled again"""
        retried = delivery.retry_delivery(current_user_id(), public_ids.decode(public_ids.DELIVERY, delivery_id))
        db.session.commit()
        return retried


def key_required(view):
    """X-Callnfy-Key must be the live key of the `user_id` in the path; every failure is a 401."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        address = request.remote_addr or "unknown"
        rate_limit.ensure_allowed(address, kwargs["user_id"])
        try:
            g.zapier_user_id = service.authenticate_key(kwargs["user_id"], request.headers.get("X-Callnfy-Key"))
        except Unauthorized:
            rate_limit.record_failure(address, kwargs["user_id"])
            raise
        return view(*args, **kwargs)

    wrapper = hooks_blp.alt_response(401, schema=ErrorEnvelopeSchema, description="Wrong, missing or revoked key")(
        wrapper)
    wrapper = hooks_blp.alt_response(429, schema=ErrorEnvelopeSchema, description="Too many failed key checks")(
        wrapper)
    return hooks_blp.doc(security=[{"zapierKey": []}])(wrapper)


@hooks_blp.route("/<user_id>")
class AuthTest(MethodView):
    @key_required
    @hooks_blp.response(200, AuthTestSchema)
    def get(self, user_id):
        """Zapier's auth test: the key is valid for this account"""
        return {"userId": str(g.zapier_user_id), "events": list(service.ZAPIER_EVENTS)}


@hooks_blp.route("/<user_id>/subscriptions")
class Subscriptions(MethodView):
    @key_required
    @hooks_blp.arguments(SubscribeSchema)
    @hooks_blp.response(201, SubscriptionSchema)
    @hooks_blp.alt_response(200, schema=SubscriptionSchema, description="Already subscribed: the existing one",
                            success=True)
    def post(self, body, user_id):
        """Subscribe a hook URL to an event (https, an allowed host, a public address)"""
        subscription, created = service.subscribe(g.zapier_user_id, body["hookUrl"], body["event"])
        db.session.commit()
        return subscription, 201 if created else 200

    @key_required
    @hooks_blp.response(200, SubscriptionSchema(many=True))
    def get(self, user_id):
        """The account's subscriptions"""
        return service.list_subscriptions(g.zapier_user_id)


@hooks_blp.route("/<user_id>/subscriptions/<subscription_id>")
class SubscriptionById(MethodView):
    @key_required
    @hooks_blp.response(200, MessageSchema)
    def delete(self, user_id, subscription_id):
        """Unsubscribe (pending deliveries to it are cancelled)"""
        service.unsubscribe(g.zapier_user_id, public_ids.decode(public_ids.SUBSCRIPTION, subscription_id))
        db.session.commit()
        return {"message": "Subscription deleted"}


@hooks_blp.route("/<user_id>/samples/<event>")
class Samples(MethodView):
    @key_required
    @hooks_blp.response(200, SampleSchema(many=True))
    @hooks_blp.doc(parameters=[{"in": "path", "name": "event", "required": True,
                                "schema": {"type": "string", "enum": list(service.ZAPIER_EVENTS)}}])
    def get(self, user_id, event):
        """The latest real payloads of an event (a realistic example when there are none)"""
        return service.samples(g.zapier_user_id, event)
