"""Webhook jobs: send what the doorbell names; sweep for due retries and lost claims."""

from __future__ import annotations

from callnfy_integrations.queues import redis_connection
from callnfy_integrations.zapier import delivery


def send_webhooks() -> int:
    """Claim and send the deliveries on the webhook doorbell, in concurrent batches."""
    return delivery.drain(redis_connection())


def sweep_webhooks() -> int:
    """Ring the doorbell for every pending delivery that is due."""
    return delivery.sweep()
