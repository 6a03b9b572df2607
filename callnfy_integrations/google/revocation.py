"""After a disconnect: the revocation at Google, requested durably through the outbox.

Disconnect writes a `google.disconnected` event in the transaction that deletes the integration, so
a Redis outage at that moment delays the revocation but cannot lose it: the outbox sweeper
dispatches the event once Redis is back, and this handler enqueues the retried revocation job.
Only token ciphertexts travel (event payload, job arguments); the job decrypts them.
"""

from __future__ import annotations

from flask import current_app
from rq import Retry

from ..events.models import Event
from ..events.registry import GOOGLE_DISCONNECTED, handles
from ..queues import CALENDAR, enqueue

REVOKE_JOB = "jobs.google.revoke_google_access"


def disconnected_payload(row) -> dict:
    """What the revocation needs, from the integration about to be deleted."""
    return {"userId": str(row.user_id),
            "refreshToken": row.refresh_token_encrypted and row.refresh_token_encrypted.hex(),
            "accessToken": row.access_token_encrypted and row.access_token_encrypted.hex(),
            "channelId": row.channel_id, "channelResourceId": row.channel_resource_id,
            "previousChannelId": row.previous_channel_id, "previousChannelResourceId": row.previous_channel_resource_id}


@handles("google-revoke", GOOGLE_DISCONNECTED)
def enqueue_revocation(event: Event) -> None:
    """Raises while Redis is down, so dispatch retries it later."""
    intervals = current_app.config["GOOGLE_REVOKE_RETRY_SECONDS"]
    payload = event.payload
    enqueue(REVOKE_JOB, payload["userId"], payload["refreshToken"], payload["accessToken"], payload["channelId"],
            payload["channelResourceId"], payload.get("previousChannelId"), payload.get("previousChannelResourceId"),
            queue=CALENDAR, job_id=f"google-revoke-{event.id}",
            retry=Retry(max=len(intervals), interval=intervals), failure_ttl=7 * 86400, result_ttl=3600)
