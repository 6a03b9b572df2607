"""Microsoft's periodic two-way work, behind `jobs.microsoft.sweep_subscriptions` and `safety_sync`:
renewing subscriptions before they end, and a safety sync of every two-way calendar. Edges, like the
runs in `two_way_runs.py`: each commits its own reads before it enqueues."""

from __future__ import annotations

from flask import current_app

from ..extensions import db
from ..google import safety_sync
from ..queues import CALENDAR, enqueue, redis_connection
from . import two_way

SAFETY_THROUGH_KEY = "callnfy:microsoft:safety-sync:through"


def sweep_subscriptions() -> dict[str, int]:
    """Renew subscriptions ending soon (or missing: a lost start)."""
    renew_ids = two_way.subscriptions_to_renew()
    db.session.commit()
    for integration_id in renew_ids:
        enqueue(two_way.RENEW_JOB, str(integration_id), queue=CALENDAR, result_ttl=0)
    return {"renewing": len(renew_ids)}


def safety_tick_seconds(config) -> int:
    return min(config["GOOGLE_SAFETY_SYNC_TICK_SECONDS"], config["MICROSOFT_SAFETY_SYNC_SECONDS"])


def request_safety_syncs(now: float | None = None) -> int:
    """Notifications are not guaranteed: every two-way calendar syncs once per MICROSOFT_SAFETY_SYNC_SECONDS
    anyway, each at its own moment of the interval (google/safety_sync.py's `due`, with a mark of our
    own); returns how many were requested."""
    config = current_app.config
    integration_ids = two_way.two_way_integrations()
    db.session.commit()
    connection = redis_connection()
    interval = config["MICROSOFT_SAFETY_SYNC_SECONDS"]
    if now is None:
        seconds, microseconds = connection.time()
        now = seconds + microseconds / 1_000_000
    recorded = connection.get(SAFETY_THROUGH_KEY)
    since = float(recorded) if recorded is not None else now - interval  # unknown: every calendar is due
    steady = -(-len(integration_ids) * safety_tick_seconds(config) // interval)
    limit = max(config["GOOGLE_SAFETY_SYNC_MAX_PER_TICK"], 2 * steady)
    due, through = safety_sync.due(integration_ids, since=max(since, now - interval), now=now, interval=interval,
                                   limit=limit)
    requested = sum(1 for integration_id in due if two_way.request_sync(integration_id))
    connection.set(SAFETY_THROUGH_KEY, repr(through))
    return requested
