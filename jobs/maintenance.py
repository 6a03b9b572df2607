"""Housekeeping jobs of the service itself."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from flask import current_app

from callnfy_integrations.extensions import db
from callnfy_integrations.queues import redis_connection
from callnfy_integrations.timestamps import format_timestamp, utcnow

log = logging.getLogger(__name__)

HEARTBEAT_KEY = "callnfy:heartbeat"


def record_heartbeat() -> str:
    """Stamp the time a worker last ran a scheduled job: proof that scheduler and worker both run."""
    stamp = format_timestamp(utcnow())
    redis_connection().set(HEARTBEAT_KEY, stamp)
    return stamp


PRUNE_MAX_BATCHES = 200  # at most 200 batches (RETENTION_BATCH_SIZE rows each) of each kind per run; the next
# run goes on


def prune_in_batches(prune: Callable[[datetime, int], int]) -> int:
    """Run `prune(cutoff, batch)` until it deletes less than a batch (RETENTION_BATCH_SIZE), committing
    each batch: short transactions and bounded locks, however much has piled up."""
    cutoff = utcnow() - timedelta(days=current_app.config["RETENTION_DAYS"])
    batch = current_app.config["RETENTION_BATCH_SIZE"]
    total = 0
    for _ in range(PRUNE_MAX_BATCHES):
        deleted = prune(cutoff, batch)
        db.session.commit()
        total += deleted
        if deleted < batch:
            break
    return total


def prune_retention() -> dict[str, int]:
    """Delete what is older than RETENTION_DAYS and finished: deliveries (with their attempts),
    then dispatched events no delivery refers to any more."""
    from callnfy_integrations.events.outbox import prune_dispatched
    from callnfy_integrations.zapier.delivery import prune_finished

    pruned = {"deliveries": prune_in_batches(prune_finished), "events": prune_in_batches(prune_dispatched)}
    if any(pruned.values()):
        log.info("retention pruned old records", extra=pruned)
    return pruned
