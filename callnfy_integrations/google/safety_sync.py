"""When each two-way calendar's safety sync is due: spread over GOOGLE_SAFETY_SYNC_SECONDS, never all at once.

Google does not guarantee its notifications, so every two-way calendar is synced once per interval
anyway. Each calendar has its own moment in the interval (a stable hash of its integration id), and
the sweep, run every GOOGLE_SAFETY_SYNC_TICK_SECONDS, takes the calendars whose moment passed since
the last sweep: 5,000 calendars over 3 hours are ~28 a minute, not 5,000 sync jobs ahead of every
one-way push on the calendar queue. A sweep takes at most GOOGLE_SAFETY_SYNC_MAX_PER_TICK (or twice
the steady share, whichever is larger) and leaves the rest, oldest moment first, to the next sweeps:
after downtime, or when Redis lost the record of the last sweep (then every calendar is due), the
catch-up is spread too. The clock is Redis's, the same for every worker.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from redis import Redis

THROUGH_KEY = "callnfy:google:safety-sync:through"  # every moment up to this one has been taken


def tick_seconds(config: Mapping[str, Any]) -> int:
    """How often the safety sweep runs: never less often than the interval itself."""
    return min(config["GOOGLE_SAFETY_SYNC_TICK_SECONDS"], config["GOOGLE_SAFETY_SYNC_SECONDS"])


def moment(integration_id: uuid.UUID, interval: int) -> float:
    """The calendar's offset in the interval, in seconds (to the millisecond: few ties)."""
    return (integration_id.int % (interval * 1000)) / 1000


def last_due(integration_id: uuid.UUID, now: float, interval: int) -> float:
    """The latest time at or before `now` when this calendar's safety sync was due."""
    return now - (now - moment(integration_id, interval)) % interval


def due(integration_ids: Sequence[uuid.UUID], *, since: float, now: float, interval: int,
        limit: int) -> tuple[list[uuid.UUID], float]:
    """The calendars due in (since, now], oldest moment first, at most `limit` (a tie with the last
    one taken is taken too); and up to when that covers."""
    waiting = sorted((at, integration_id) for integration_id in integration_ids
                     if (at := last_due(integration_id, now, interval)) > since)
    if len(waiting) <= limit:
        return [integration_id for _, integration_id in waiting], now
    through = waiting[limit - 1][0]
    return [integration_id for at, integration_id in waiting if at <= through], through


def take(integration_ids: Sequence[uuid.UUID], config: Mapping[str, Any], connection: Redis,
         now: float | None = None) -> tuple[list[uuid.UUID], float]:
    """The calendars whose safety sync is due now; pass the returned mark to `taken` once requested."""
    interval = config["GOOGLE_SAFETY_SYNC_SECONDS"]
    if now is None:
        seconds, microseconds = connection.time()
        now = seconds + microseconds / 1_000_000
    recorded = connection.get(THROUGH_KEY)
    since = float(recorded) if recorded is not None else now - interval  # unknown: every calendar is due
    steady = math.ceil(len(integration_ids) * tick_seconds(config) / interval)
    limit = max(config["GOOGLE_SAFETY_SYNC_MAX_PER_TICK"], 2 * steady)
    return due(integration_ids, since=max(since, now - interval), now=now, interval=interval, limit=limit)


def taken(through: float, connection: Redis) -> None:
    """Record that every safety sync due up to `through` was requested."""
    connection.set(THROUGH_KEY, repr(through))
