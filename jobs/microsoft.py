"""Microsoft 365 jobs: the entry points RQ runs, each a `verb_noun(id)` over the runs in
`callnfy_integrations/microsoft/two_way_runs.py`, which own their transactions.

New job parameters are added last, with defaults, so jobs already queued stay valid.
"""

from __future__ import annotations

from callnfy_integrations.microsoft import sweeps, two_way_runs


def start_two_way(integration_id: str) -> str:
    """Switching on: a baseline deltaLink (nothing imported), then a Graph subscription."""
    return two_way_runs.start(integration_id)


def renew_subscription(integration_id: str) -> str:
    """A later expiry for the subscription (PATCH); a new one when Graph no longer holds it."""
    return two_way_runs.renew(integration_id)


def recreate_subscription(integration_id: str) -> str:
    """Graph removed the subscription: a new one, then a sync."""
    return two_way_runs.recreate(integration_id)


def sync_calendar(integration_id: str) -> str:
    """Apply what changed in Outlook since the stored deltaLink (a notification, or the safety sweep)."""
    return two_way_runs.sync_changes(integration_id)


def stop_subscription(integration_id: str, subscription_id: str, user_id: str | None = None,
                      access_token_hex: str | None = None) -> str:
    """Delete a subscription at Graph (one-way, replaced, or disconnected); raises to be retried."""
    return two_way_runs.stop_subscription(integration_id, subscription_id, user_id, access_token_hex)


def sweep_subscriptions() -> dict[str, int]:
    """Renew subscriptions ending soon, or missing."""
    return sweeps.sweep_subscriptions()


def safety_sync(now: float | None = None) -> int:
    """Request the safety syncs due now (each two-way calendar once per MICROSOFT_SAFETY_SYNC_SECONDS)."""
    return sweeps.request_safety_syncs(now)
