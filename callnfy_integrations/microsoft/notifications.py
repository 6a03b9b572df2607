"""`POST /webhooks/microsoft/calendar` and `/webhooks/microsoft/lifecycle`: Graph's notifications.

* `?validationToken=…` (Graph's handshake when a subscription is created): 200 `text/plain` with the
  decoded token, at once and without touching the database; an absurdly long token is 400.
* Otherwise a JSON `{"value": [...]}` batch: every notification must name a current subscription of a
  connected two-way Microsoft calendar with its clientState, else 404 and nothing is enqueued. A valid
  change notification requests a coalesced sync; lifecycle notifications: `reauthorizationRequired` →
  a renewal, `subscriptionRemoved` → a new subscription and a sync, `missed` → a sync. 202 at once:
  Graph is never called here (it waits 3 s for the answer). Requests are limited per client address.
"""

from __future__ import annotations

import logging
import time

from flask import Response, current_app, request
from flask.views import MethodView
from limits.strategies import FixedWindowRateLimiter

from ..api import Blueprint, ErrorEnvelopeSchema, MessageSchema
from ..errors import ApiError, NotFound
from ..limiters import redis_limiter
from . import two_way

log = logging.getLogger(__name__)

blp = Blueprint("microsoft_notifications", __name__, url_prefix="/webhooks/microsoft",
                description="Microsoft Graph change and lifecycle notifications (two-way sync)")

MAX_VALIDATION_TOKEN = 1024  # Graph's are ~120 characters
MAX_NOTIFICATIONS = 1000  # per batch; Graph sends a few


# The batch as documented (not parsed by a schema: the handshake comes without a body, and an
# unknown notification is a 404, not a validation error).
BATCH_DOC = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["value"],
    "properties": {"value": {"type": "array", "maxItems": MAX_NOTIFICATIONS, "items": {
        "type": "object", "description": "A Graph changeNotification (subscriptionId, clientState, changeType or "
                                         "lifecycleEvent, resource, …)"}}}}}}}}


class TooManyNotifications(ApiError):
    status = 429
    code = "TOO_MANY_REQUESTS"
    message = "Too many notifications from this address"


class BadNotification(ApiError):
    code = "BAD_REQUEST"
    message = "Not a Microsoft Graph notification"


def _ensure_allowed(address: str) -> None:
    limiter, limit = redis_limiter(current_app, "microsoft-notifications", FixedWindowRateLimiter,
                                   current_app.config["MICROSOFT_NOTIFICATION_RATE_LIMIT"])
    try:
        allowed = limiter.hit(limit, "microsoft-notifications", address)
    except Exception:  # Redis down: the subscription and clientState checks still run
        log.warning("rate limit storage unavailable", exc_info=True)
        return
    if not allowed:
        reset_at = limiter.get_window_stats(limit, "microsoft-notifications", address).reset_time
        raise TooManyNotifications(headers={"Retry-After": str(max(1, int(reset_at - time.time()) + 1))})


def _handshake() -> Response | None:
    """Graph's validation request: the decoded token back as text/plain; None when this is not one."""
    if "validationToken" not in request.args:
        return None
    token = request.args.get("validationToken", "")
    if not token or len(token) > MAX_VALIDATION_TOKEN:
        raise BadNotification(details={"validationToken": [f"Must be 1 to {MAX_VALIDATION_TOKEN} characters."]})
    return Response(token, status=200, mimetype="text/plain")


def _verified_batch() -> list[two_way.Notification]:
    body = request.get_json(silent=True, force=True)
    batch = body.get("value") if isinstance(body, dict) else None
    if not isinstance(batch, list):
        raise BadNotification(details={"value": ["A JSON object with a `value` list is required."]})
    if len(batch) > MAX_NOTIFICATIONS:
        raise BadNotification(details={"value": [f"At most {MAX_NOTIFICATIONS} notifications."]})
    found = two_way.verify_notifications(batch)
    if found is None:
        raise NotFound("Unknown subscription")
    return found


@blp.route("/calendar")
class CalendarNotification(MethodView):
    @blp.doc(**BATCH_DOC)
    @blp.response(202, MessageSchema)
    @blp.alt_response(200, description="The validation handshake: the decoded `validationToken`, as text/plain")
    @blp.alt_response(400, schema=ErrorEnvelopeSchema, description="Not a Graph notification batch")
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="Unknown subscription, or wrong clientState")
    @blp.alt_response(429, schema=ErrorEnvelopeSchema, description="Too many notifications from this address")
    def post(self):
        """Changes in a subscribed Outlook calendar (sent by Graph, authenticated by the clientState)"""
        handshake = _handshake()
        if handshake is not None:
            return handshake
        _ensure_allowed(request.remote_addr or "unknown")
        for integration_id in dict.fromkeys(n.integration_id for n in _verified_batch()):
            two_way.request_sync(integration_id)
        return {"message": "accepted"}


@blp.route("/lifecycle")
class LifecycleNotification(MethodView):
    @blp.doc(**BATCH_DOC)
    @blp.response(202, MessageSchema)
    @blp.alt_response(200, description="The validation handshake: the decoded `validationToken`, as text/plain")
    @blp.alt_response(400, schema=ErrorEnvelopeSchema, description="Not a Graph notification batch")
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="Unknown subscription, or wrong clientState")
    @blp.alt_response(429, schema=ErrorEnvelopeSchema, description="Too many notifications from this address")
    def post(self):
        """A subscription needs attention: reauthorization, removed by Graph, or notifications missed"""
        handshake = _handshake()
        if handshake is not None:
            return handshake
        _ensure_allowed(request.remote_addr or "unknown")
        done = set()
        for notification in _verified_batch():
            key = (notification.integration_id, notification.lifecycle_event)
            if key in done:
                continue
            done.add(key)
            if notification.lifecycle_event == "reauthorizationRequired":
                two_way.request_renewal(notification.integration_id)
            elif notification.lifecycle_event == "subscriptionRemoved":
                two_way.request_recreate(notification.integration_id)
            elif notification.lifecycle_event == "missed":
                two_way.request_sync(notification.integration_id)
        return {"message": "accepted"}
