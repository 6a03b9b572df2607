"""Housekeeping jobs of the service itself."""

from __future__ import annotations

from callnfy_integrations.queues import redis_connection
from callnfy_integrations.timestamps import format_timestamp, utcnow

HEARTBEAT_KEY = "callnfy:heartbeat"


def record_heartbeat() -> str:
    """Stamp the time a worker last ran a scheduled job: proof that scheduler and worker both run."""
    stamp = format_timestamp(utcnow())
    redis_connection().set(HEARTBEAT_KEY, stamp)
    return stamp
