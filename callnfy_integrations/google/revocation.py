"""After a disconnect: the revocation at Google, requested durably through the outbox.

Disconnect writes a `google.disconnected` event in the transaction that deletes the integration, so
a Redis outage at that moment delays the revocation but cannot lose it: the outbox sweeper
dispatches the event once Redis is back, and this handler enqueues the retried revocation job.

The token ciphertexts live in the event's payload only, and the job (given the event's id) reads
them from there when it runs: `rotate-encryption-key` re-encrypts them with the rest, so a job that
is still retrying when the old key is dropped can still decrypt (`rotate_pending`). Once the job is
done with them they are erased (`forget_tokens`). Jobs queued before this design carried the
ciphertexts in their arguments; they are named `google-revoke-<event id>`, and read the event too.

Google revokes per Google account and OAuth client, not per token: revoking the old refresh token
ends every grant of that account to this service. So the revocation is skipped while any
connection we hold uses that account (the user reconnected, or another Callnfy user shares it), and
waits while the user is part-way through a reconnect whose account cannot be known yet.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field

from authlib.integrations.base_client.errors import OAuthError
from flask import current_app
from rq import Retry
from sqlalchemy import func, select, text

from ..crypto import SecretBox, secret_box
from ..events.models import Event
from ..events.registry import GOOGLE_DISCONNECTED, handles
from ..extensions import db
from ..integrations.models import GOOGLE_CALENDAR, Integration
from ..integrations.service import GOOGLE_ACCESS_TOKEN_FIELD, GOOGLE_REFRESH_TOKEN_FIELD
from ..queues import CALENDAR, enqueue, redis_connection
from . import calendar_api, oauth
from .oauth import STATE_TTL_SECONDS

log = logging.getLogger(__name__)

REVOKE_JOB = "jobs.google.revoke_google_access"
JOB_ID_PREFIX = "google-revoke-"
TOKEN_FIELDS = {"refreshToken": GOOGLE_REFRESH_TOKEN_FIELD, "accessToken": GOOGLE_ACCESS_TOKEN_FIELD}


class ReconnectInProgress(Exception):
    """The user started connecting Google again: revoking now could end the grant being made. The
    job fails, and RQ retries it later (by then the connect has finished or expired)."""


def disconnected_payload(row) -> dict:
    """What the revocation needs, from the integration about to be deleted."""
    return {"userId": str(row.user_id), "email": row.email,
            "refreshToken": row.refresh_token_encrypted and row.refresh_token_encrypted.hex(),
            "accessToken": row.access_token_encrypted and row.access_token_encrypted.hex(),
            "channelId": row.channel_id, "channelResourceId": row.channel_resource_id,
            "previousChannelId": row.previous_channel_id, "previousChannelResourceId": row.previous_channel_resource_id}


@handles("google-revoke", GOOGLE_DISCONNECTED)
def enqueue_revocation(event: Event) -> None:
    """Raises while Redis is down, so dispatch retries it later. Only ids travel in the job."""
    intervals = current_app.config["GOOGLE_REVOKE_RETRY_SECONDS"]
    enqueue(REVOKE_JOB, event.payload["userId"], kwargs={"event_id": str(event.id)}, queue=CALENDAR,
            job_id=f"{JOB_ID_PREFIX}{event.id}", retry=Retry(max=len(intervals), interval=intervals),
            failure_ttl=7 * 86400, result_ttl=3600)


# -- the job's view of it ----------------------------------------------------------------------------

@dataclass
class Grant:
    """A disconnected grant, decrypted: what the job stops and revokes."""

    user_id: uuid.UUID
    email: str | None = None
    refresh_token: str | None = None
    access_token: str | None = None
    channels: list[tuple[str, str]] = field(default_factory=list)


def event_id_of_job(job_id: str | None) -> str | None:
    """A job queued before revocations took an event id still names its event: google-revoke-<id>."""
    return job_id[len(JOB_ID_PREFIX):] if job_id and job_id.startswith(JOB_ID_PREFIX) else None


def _grant(user_id: uuid.UUID, payload: dict) -> Grant:
    box = secret_box()
    tokens = {key: payload.get(key) and box.decrypt(bytes.fromhex(payload[key]), user_id=user_id, field=name)
              for key, name in TOKEN_FIELDS.items()}
    channels = [(c, r) for c, r in ((payload.get("channelId"), payload.get("channelResourceId")),
                                    (payload.get("previousChannelId"), payload.get("previousChannelResourceId")))
                if c and r]
    return Grant(user_id, payload.get("email"), tokens["refreshToken"], tokens["accessToken"], channels)


def grant_of_event(user_id: uuid.UUID, event_id: str) -> Grant | None:
    """The grant a `google.disconnected` event of this user describes; None when the row is gone."""
    try:
        event = db.session.get(Event, uuid.UUID(event_id))
    except ValueError:
        return None
    if event is None or event.type != GOOGLE_DISCONNECTED or event.user_id != user_id:
        return None
    return _grant(user_id, event.payload)


def grant_of_arguments(user_id: uuid.UUID, refresh_token_hex: str | None, access_token_hex: str | None,
                       channels: list[tuple[str | None, str | None]]) -> Grant:
    """A job queued before revocations took an event id, whose event row is gone."""
    return _grant(user_id, {"refreshToken": refresh_token_hex, "accessToken": access_token_hex,
                            "channelId": channels[0][0], "channelResourceId": channels[0][1],
                            "previousChannelId": channels[1][0], "previousChannelResourceId": channels[1][1]})


def account_in_use(grant: Grant) -> bool:
    """Does a connection we hold use the Google account of this grant? Revoking would end it too.

    This user's own Google connection counts whatever its account when the event does not say which
    account was disconnected (events written before it did). No index on email: this runs once per
    disconnect, not per request.
    """
    if grant.email is None:
        return db.session.scalar(select(Integration.id).where(
            Integration.user_id == grant.user_id, Integration.provider == GOOGLE_CALENDAR)) is not None
    return db.session.scalar(select(Integration.id).where(
        Integration.provider == GOOGLE_CALENDAR, func.lower(Integration.email) == grant.email.lower()).limit(1)
    ) is not None


def connecting_key(user_id: uuid.UUID) -> str:
    return f"callnfy:google:connecting:{user_id}"


def note_connect_started(user_id: uuid.UUID) -> None:
    """Connect was pressed: for as long as its OAuth state lives, this user's revocations wait."""
    redis_connection().set(connecting_key(user_id), "1", ex=STATE_TTL_SECONDS)


def connect_finished(user_ids: list[uuid.UUID]) -> None:
    """After the callback's commit: the new connection now shows in `account_in_use` instead."""
    redis_connection().delete(*(connecting_key(user_id) for user_id in user_ids))


def connect_in_progress(user_id: uuid.UUID) -> bool:
    return bool(redis_connection().exists(connecting_key(user_id)))


def forget_tokens(event_id: str) -> None:
    """The grant is revoked (or belongs to a live connection): its ciphertexts are of no more use."""
    db.session.execute(_FORGET_TOKENS, {"id": uuid.UUID(event_id), "type": GOOGLE_DISCONNECTED})


_FORGET_TOKENS = text("""
    UPDATE events SET payload = payload || '{"refreshToken": null, "accessToken": null}'
    WHERE id = :id AND type = :type
""")


# -- key rotation --------------------------------------------------------------------------------------

_PENDING = (select(Event).where(Event.type == GOOGLE_DISCONNECTED)
            .where(Event.payload["refreshToken"].as_string().is_not(None) |
                   Event.payload["accessToken"].as_string().is_not(None)))


def _stale(box: SecretBox, payload: dict) -> list[str]:
    return [key for key in TOKEN_FIELDS if payload.get(key) and not box.is_current(bytes.fromhex(payload[key]))]


def rotate_pending() -> int:
    """Re-encrypt the token ciphertexts of revocations still to run with the first key; returns how many."""
    box, rotated = secret_box(), 0
    for event in db.session.scalars(_PENDING.with_for_update()):
        payload = dict(event.payload)
        for key in _stale(box, payload):
            plaintext = box.decrypt(bytes.fromhex(payload[key]), user_id=event.user_id, field=TOKEN_FIELDS[key])
            payload[key] = box.encrypt(plaintext, user_id=event.user_id, field=TOKEN_FIELDS[key]).hex()
            rotated += 1
        event.payload = payload
    db.session.flush()
    return rotated


def pending_on_old_keys() -> int:
    """Ciphertexts of revocations still to run that the first key did not make."""
    box = secret_box()
    return sum(len(_stale(box, event.payload)) for event in db.session.scalars(_PENDING))


def stop_channels(grant) -> str | None:
    """Stop the old grant's channels (they need a live access token: the stored one may have expired,
    so it is refreshed first). Returns the access token used, if any."""
    access_token = grant.access_token
    if not grant.channels:
        return access_token
    if grant.refresh_token:
        try:
            access_token = oauth.refresh(grant.refresh_token)["access_token"]
        except OAuthError:
            pass  # already revoked: the channels die with the grant
    if access_token:
        for channel, resource in grant.channels:
            calendar_api.stop_channel(access_token, channel, resource)
    return access_token
