"""Failed X-Callnfy-Key checks, counted per (client address, account) in Redis with `limits`.

Only failures count; once the window is full, requests are refused with 429 before any key check.
Per (address, account) rather than per address: Zapier calls from shared addresses, and one
tenant's broken Zap must not lock every other tenant out. Nothing here runs on other routes.
"""

from __future__ import annotations

import logging
import time

from flask import current_app
from limits.strategies import FixedWindowRateLimiter

from ..errors import ApiError
from ..limiters import redis_limiter

log = logging.getLogger(__name__)


class TooManyFailures(ApiError):
    status = 429
    code = "TOO_MANY_REQUESTS"
    message = "Too many failed key checks; try again later"


def _limiter() -> tuple[FixedWindowRateLimiter, object]:
    return redis_limiter(current_app, "zapier-key-failures", FixedWindowRateLimiter,
                         current_app.config["ZAPIER_AUTH_FAILURE_LIMIT"])


def ensure_allowed(key: str) -> None:
    limiter, limit = _limiter()
    try:
        allowed = limiter.test(limit, "zapier-key-failures", key)
        reset_at = None if allowed else limiter.get_window_stats(limit, "zapier-key-failures", key).reset_time
    except Exception:  # Redis down: keys are still checked, just not rate-limited
        log.warning("rate limit storage unavailable", exc_info=True)
        return
    if not allowed:
        retry_after = max(1, int(reset_at - time.time()) + 1)
        raise TooManyFailures(headers={"Retry-After": str(retry_after)})


def record_failure(key: str) -> None:
    limiter, limit = _limiter()
    try:
        limiter.hit(limit, "zapier-key-failures", key)
    except Exception:
        log.warning("rate limit storage unavailable", exc_info=True)
