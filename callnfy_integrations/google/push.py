"""`POST /webhooks/google/calendar`: Google's push notifications for two-way sync.

Google sends no body, only headers: the channel id and our token, the resource id and state. An
unknown or stopped channel, or a wrong token, answers 404 and enqueues nothing; `sync` (the
channel's first message) answers 200; `exists` / `not_exists` answer 200 at once and request a
coalesced incremental sync. Requests are limited per client address.
"""

from __future__ import annotations

import logging
import time

from flask import current_app, request
from flask.views import MethodView
from limits.strategies import FixedWindowRateLimiter

from ..api import Blueprint, ErrorEnvelopeSchema, MessageSchema
from ..errors import ApiError, NotFound
from ..limiters import redis_limiter
from . import two_way

log = logging.getLogger(__name__)

blp = Blueprint("google_push", __name__, url_prefix="/webhooks/google",
                description="Google Calendar push notifications (two-way sync)")


class TooManyNotifications(ApiError):
    status = 429
    code = "TOO_MANY_REQUESTS"
    message = "Too many notifications from this address"


def _ensure_allowed(address: str) -> None:
    limiter, limit = redis_limiter(current_app, "google-push", FixedWindowRateLimiter,
                                   current_app.config["GOOGLE_PUSH_RATE_LIMIT"])
    try:
        allowed = limiter.hit(limit, "google-push", address)
    except Exception:  # Redis down: the channel and token checks still run
        log.warning("rate limit storage unavailable", exc_info=True)
        return
    if not allowed:
        reset_at = limiter.get_window_stats(limit, "google-push", address).reset_time
        raise TooManyNotifications(headers={"Retry-After": str(max(1, int(reset_at - time.time()) + 1))})


@blp.route("/calendar")
class CalendarNotification(MethodView):
    @blp.response(200, MessageSchema)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="Unknown or stopped channel, or wrong token")
    @blp.alt_response(429, schema=ErrorEnvelopeSchema, description="Too many notifications from this address")
    def post(self):
        """A change in a watched calendar (sent by Google, authenticated by the channel's token)"""
        _ensure_allowed(request.remote_addr or "unknown")
        headers = request.headers
        integration_id = two_way.verify_notification(headers.get("X-Goog-Channel-ID"),
                                                     headers.get("X-Goog-Channel-Token"),
                                                     headers.get("X-Goog-Resource-ID"))
        if integration_id is None:
            raise NotFound("Unknown channel")
        state = headers.get("X-Goog-Resource-State", "")
        if state in ("exists", "not_exists"):
            two_way.request_sync(integration_id)
        return {"message": "ok"}
