"""Google jobs: the entry points RQ runs, each a `verb_noun(id)` over the runs in
`callnfy_integrations/google` (`push_runs`, `two_way_runs`), which own their transactions.

New job parameters are added last, with defaults, so jobs already queued stay valid.
"""

from __future__ import annotations

import logging
import uuid

from rq import get_current_job

from callnfy_integrations.extensions import db
from callnfy_integrations.google import oauth, push_runs, revocation, two_way_runs

log = logging.getLogger(__name__)


# -- one-way ---------------------------------------------------------------------------------------

def sync_appointments(appointment_ids: list[str]) -> int:
    """Make Google match each appointment's current state; returns how many were pushed."""
    return push_runs.push_batch(appointment_ids)


def backfill_calendar(user_id: str) -> int:
    """After (re)connect: the calendar's time zone, then the user's pending appointments."""
    return push_runs.backfill(uuid.UUID(user_id))


def sweep_google_sync() -> int:
    """Re-drive pushes that are due and not done, to every provider's calendar (the name predates
    Microsoft's): lost jobs, a flushed Redis, a dead worker."""
    return push_runs.sweep()


# -- disconnect ------------------------------------------------------------------------------------

def revoke_google_access(user_id: str, refresh_token_hex: str | None = None, access_token_hex: str | None = None,
                         channel_id: str | None = None, resource_id: str | None = None,
                         previous_channel_id: str | None = None, previous_resource_id: str | None = None,
                         event_id: str | None = None) -> str:
    """After a disconnect (the `google.disconnected` event `event_id`): stop the old grant's channels
    (it needs a live access token), then revoke the grant, unless a connection we hold uses that Google
    account (Google would end that one too). Safe to run twice. Jobs queued before `event_id` existed
    carry ciphertexts in the other arguments; they find their event by job id too (see revocation.py)."""
    owner = uuid.UUID(user_id)
    event_id = event_id or revocation.event_id_of_job(getattr(get_current_job(), "id", None))
    grant = event_id and revocation.grant_of_event(owner, event_id)
    if not grant and refresh_token_hex is None and access_token_hex is None:
        db.session.commit()
        log.warning("google revocation: its event is gone, nothing to revoke with", extra={"event_id": event_id})
        return "nothing to revoke"
    grant = grant or revocation.grant_of_arguments(owner, refresh_token_hex, access_token_hex, [
        (channel_id, resource_id), (previous_channel_id, previous_resource_id)])
    in_use = revocation.account_in_use(grant)
    db.session.commit()  # no transaction stays open while Google answers
    if not in_use and revocation.connect_in_progress(owner):
        raise revocation.ReconnectInProgress("the user is connecting Google again; revoking later")
    access_token = revocation.stop_channels(grant)  # harmless to a new connection's channels
    token = grant.refresh_token or access_token
    if token and not in_use:
        oauth.revoke(token)
    if event_id:
        revocation.forget_tokens(event_id)
        db.session.commit()
    if in_use:
        log.info("google revocation skipped: a connection we hold uses that account", extra={"user_id": user_id})
        return "skipped: account in use"
    return "revoked"


# -- two-way ---------------------------------------------------------------------------------------

def start_two_way(integration_id: str) -> str:
    """Switching on (or reconnecting in two-way): a baseline sync token, then a channel."""
    return two_way_runs.start(integration_id)


def renew_channel(integration_id: str) -> str:
    """A new channel before the current one expires; the old one is stopped once the new one is stored."""
    return two_way_runs.renew(integration_id)


def sync_calendar(integration_id: str) -> str:
    """Apply what changed in Google since the stored sync token (a notification, or the safety sweep)."""
    return two_way_runs.sync_changes(integration_id)


def stop_channels(integration_id: str, channels: list[list[str]]) -> int:
    """Stop channels at Google (switched to one-way, or replaced); raises to be retried."""
    return two_way_runs.stop_channels(integration_id, channels)


def sweep_two_way() -> dict[str, int]:
    """Renew channels ending within a day, or missing."""
    return two_way_runs.sweep_channels()


def safety_sync(now: float | None = None) -> int:
    """Request the safety syncs due now (each two-way calendar once per GOOGLE_SAFETY_SYNC_SECONDS)."""
    return two_way_runs.request_safety_syncs(now)
