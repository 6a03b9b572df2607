"""Rate limiters kept in the app's Redis with the `limits` library: one per purpose and app."""

from __future__ import annotations

from flask import Flask
from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import RateLimiter


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
