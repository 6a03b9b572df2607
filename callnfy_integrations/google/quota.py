"""Google's per-user Calendar quota, respected from our side: a moving window per integration in Redis.

Every Calendar call of a user takes a slot (`GOOGLE_USER_RATE_LIMIT`, default 5 per second, well
under Google's 600 per minute per user), whichever process makes it, so a backfill of hundreds of
appointments paces itself instead of collecting 403 `userRateLimitExceeded`.
"""

from __future__ import annotations

import logging
import time
import uuid

from flask import current_app
from limits.strategies import MovingWindowRateLimiter

from ..limiters import redis_limiter

log = logging.getLogger(__name__)


def _limiter():
    return redis_limiter(current_app, "google-calendar", MovingWindowRateLimiter,
                         current_app.config["GOOGLE_USER_RATE_LIMIT"])


def take_slot(integration_id: uuid.UUID) -> float:
    """Take one call slot now and return 0, or return how many seconds until one frees up."""
    limiter, limit = _limiter()
    try:
        if limiter.hit(limit, "google-calendar", str(integration_id)):
            return 0.0
        reset_at = limiter.get_window_stats(limit, "google-calendar", str(integration_id)).reset_time
    except Exception:  # Redis down: Google's own 403/429 answers still pace us (they are retried)
        log.warning("Google quota storage unavailable", exc_info=True)
        return 0.0
    return max(0.01, reset_at - time.time())


def wait_for_slot(integration_id: uuid.UUID, max_wait: float = 2.0) -> bool:
    """Take a slot, sleeping up to `max_wait` seconds for one; False when it would take longer."""
    deadline = time.monotonic() + max_wait
    while True:
        wait = take_slot(integration_id)
        if wait == 0.0:
            return True
        if time.monotonic() + wait > deadline:
            return False
        time.sleep(wait)
