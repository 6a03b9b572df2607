"""Webhook jobs: send what the doorbell names; sweep for due retries and lost claims.

These are the edge of delivery's unit of work: `zapier.delivery` only runs statements, and the
commits here decide what survives a crash mid-batch.
"""

from __future__ import annotations

import uuid

from callnfy_integrations.extensions import db
from callnfy_integrations.queues import redis_connection
from callnfy_integrations.zapier import delivery

DRAIN_BATCH = 200
DRAIN_BUDGET_SECONDS = 5.0


def send_webhooks() -> int:
    """Claim and send the deliveries on the webhook doorbell, in concurrent batches."""
    return delivery.WEBHOOKS_BELL.drain(redis_connection(), send_batch, batch=DRAIN_BATCH,
                                        budget_seconds=DRAIN_BUDGET_SECONDS)


def send_batch(delivery_ids: list[str]) -> int:
    """Claim, commit, send, record, commit: a worker dying mid-send leaves claims to their lease."""
    claimed = delivery.claim([uuid.UUID(i) for i in delivery_ids])
    db.session.commit()  # the claim must be durable before anything is sent
    if claimed:
        delivery.record(delivery.sender().send_all(claimed))
        db.session.commit()
    return len(claimed)


def sweep_webhooks() -> int:
    """Ring the doorbell for every pending delivery that is due."""
    ids = delivery.due_deliveries()
    db.session.commit()  # end the read before touching Redis
    delivery.ring(ids)
    return len(ids)
