"""Rate limiters kept in the app's Redis with the `limits` library: one per purpose and app; and
`FailureLimit`, which counts failed credential checks (Zapier keys, the queue dashboard's password)."""

from __future__ import annotations

import logging
import time

from flask import Flask, current_app
from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter, RateLimiter

from .errors import ApiError

log = logging.getLogger(__name__)


def redis_limiter(app: Flask, name: str, strategy: type[RateLimiter], limit: str) -> tuple[RateLimiter, RateLimitItem]:
    """The app's limiter for `name` (built once), and the parsed `limit` ("20 per minute")."""
    key = f"callnfy_limiter_{name}"
    cached = app.extensions.get(key)
    if cached is None:
        url = app.config["REDIS_URL"]
        # `limits` spells a unix-socket Redis as redis+unix://.
        uri = "redis+unix://" + url[len("unix://"):] if url.startswith("unix://") else url
        cached = app.extensions[key] = (strategy(storage_from_string(uri)), parse(limit))
    return cached


class FailureLimit:
    """Failed checks counted per key in a fixed window; only failures count. Once the window is full
    the caller is refused (`error`, 429 with Retry-After) before any check, so a brute-forcer cannot
    tell a later right guess from a wrong one. Redis down: checks still run, just not limited."""

    def __init__(self, name: str, setting: str, error: type[ApiError]):
        self.name, self.setting, self.error = name, setting, error

    def _limiter(self) -> tuple[RateLimiter, RateLimitItem]:
        return redis_limiter(current_app, self.name, FixedWindowRateLimiter, current_app.config[self.setting])

    def ensure_allowed(self, key: str) -> None:
        limiter, limit = self._limiter()
        try:
            allowed = limiter.test(limit, self.name, key)
            reset_at = None if allowed else limiter.get_window_stats(limit, self.name, key).reset_time
        except Exception:
            log.warning("rate limit storage unavailable", exc_info=True)
            return
        if not allowed:
            raise self.error(headers={"Retry-After": str(max(1, int(reset_at - time.time()) + 1))})

    def record_failure(self, key: str) -> None:
        limiter, limit = self._limiter()
        try:
            limiter.hit(limit, self.name, key)
        except Exception:
            log.warning("rate limit storage unavailable", exc_info=True)
