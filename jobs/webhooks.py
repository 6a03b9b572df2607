"""Webhook jobs: the drain that sends due deliveries, and the sweeper that wakes it when anything is
due. Both run `callnfy_integrations.zapier.drain`, which owns their transactions."""

from __future__ import annotations

from callnfy_integrations.zapier import drain


def send_webhooks() -> int:
    """Send due deliveries until none is due or the drain's budget is spent; returns attempts made."""
    return drain.Drain().run()


def sweep_webhooks() -> bool:
    """The safety net: wake the drain when anything is due."""
    return drain.sweep()
