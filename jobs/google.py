"""Google jobs: push appointments to the calendar, sweep for lost pushes, revoke access after a disconnect.

These are edges: each commits its own work (the services under `callnfy_integrations/google` only
flush), and never keeps a transaction open across a call to Google.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from authlib.integrations.base_client.errors import OAuthError
from redis.exceptions import LockError, RedisError

from callnfy_integrations.crypto import secret_box
from callnfy_integrations.extensions import db
from callnfy_integrations.google import calendar_api, oauth, sync
from callnfy_integrations.google.tokens import ACCESS_FIELD, REFRESH_FIELD, ReauthorizationRequired
from callnfy_integrations.queues import CALENDAR, enqueue_in, redis_connection

log = logging.getLogger(__name__)

PUSH_LOCK_SECONDS = 120  # longer than the worst push: a few calls with a 10 s timeout each
PUSH_LOCK_WAIT_SECONDS = 30


def sync_appointments(appointment_ids: list[str]) -> int:
    """Make Google match each appointment's current state; returns how many calls-worth of pushes ran.

    Our per-user quota may run out mid-batch: the rest is re-enqueued for when it frees up.
    """
    pushed = 0
    for index, appointment_id in enumerate(appointment_ids):
        wait = push_appointment(uuid.UUID(appointment_id))
        if wait is not None:
            rest = appointment_ids[index:]
            try:
                enqueue_in(timedelta(seconds=wait), sync_appointments, rest, queue=CALENDAR, result_ttl=0)
            except RedisError:
                log.warning("could not re-enqueue calendar pushes; the sweeper will", exc_info=True)
            return pushed
        pushed += 1
    return pushed


def push_appointment(appointment_id: uuid.UUID) -> float | None:
    """One appointment, serialised with other pushes of it; returns seconds to wait when over quota."""
    lock = redis_connection().lock(f"callnfy:lock:google-push:{appointment_id}", timeout=PUSH_LOCK_SECONDS,
                                   blocking_timeout=PUSH_LOCK_WAIT_SECONDS)
    try:
        acquired = lock.acquire()
    except RedisError:
        acquired = False
    if not acquired:  # another push of it is stuck or Redis is away: the sweeper re-drives it
        return None
    try:
        return _push(appointment_id)
    finally:
        try:
            lock.release()
        except (LockError, RedisError):  # expired, or Redis was flushed meanwhile: nothing to release
            pass


def _push(appointment_id: uuid.UUID) -> float | None:
    push = sync.plan_push(appointment_id)
    db.session.commit()  # no transaction stays open while Google answers
    if push is None:
        return None
    retry_in = None
    try:
        sent = sync.send_push(push)
    except sync.QuotaWait as wait:
        sync.record_quota_wait(push, wait.seconds)
        db.session.commit()
        return wait.seconds
    except ReauthorizationRequired:
        sync.record_reconnect_needed(push)
    except (calendar_api.RetryLater, oauth.GoogleUnavailable) as exc:
        retry_in = sync.record_retry(push, exc)
    except calendar_api.CalendarError as exc:  # Rejected, or a second 401 right after a refresh
        sync.record_rejected(push, exc)
    except LookupError:  # disconnected meanwhile
        pass
    else:
        sync.record_success(push, sent)
    db.session.commit()
    if retry_in is not None:
        try:
            enqueue_in(timedelta(seconds=retry_in), sync_appointments, [str(appointment_id)], queue=CALENDAR,
                       result_ttl=0)
        except RedisError:
            log.warning("could not schedule a calendar retry; the sweeper will", exc_info=True)
    return None


def backfill_calendar(user_id: str) -> int:
    """After (re)connect: learn the calendar's time zone once, then push the user's pending
    appointments in batches (each push takes a slot of the per-user quota)."""
    owner = uuid.UUID(user_id)
    integration = sync.connected_integration(owner)
    db.session.commit()
    if integration is None:
        return 0
    if not integration.calendar_time_zone:
        try:
            zone_name = sync.fetch_time_zone(integration.id, integration.calendar_id or "primary")
        except sync.QuotaWait as wait:
            enqueue_in(timedelta(seconds=wait.seconds), backfill_calendar, user_id, queue=CALENDAR, result_ttl=0)
            return 0
        except (calendar_api.CalendarError, oauth.GoogleUnavailable, ReauthorizationRequired, LookupError):
            log.warning("could not learn the calendar's time zone; the first push will",
                        extra={"user_id": user_id})
        else:
            sync.store_time_zone(integration.id, zone_name)
            db.session.commit()
    items = sync.pending_of_user(owner)
    db.session.commit()
    sync.enqueue_pushes(items)
    return len(items)


def sweep_google_sync() -> int:
    """Re-drive pushes that are due and not done: lost jobs, a flushed Redis, a dead worker."""
    items = sync.claim_due()
    db.session.commit()
    if items:
        log.info("calendar sweep re-enqueued pushes", extra={"count": len(items)})
        sync.enqueue_pushes(items)
    return len(items)


def revoke_google_access(user_id: str, refresh_token_hex: str | None, access_token_hex: str | None,
                         channel_id: str | None = None, resource_id: str | None = None) -> None:
    """Stop the channel (it needs a live access token), then revoke the grant. Safe to run twice."""
    box, owner = secret_box(), uuid.UUID(user_id)
    refresh_token = refresh_token_hex and box.decrypt(bytes.fromhex(refresh_token_hex), user_id=owner,
                                                      field=REFRESH_FIELD)
    access_token = access_token_hex and box.decrypt(bytes.fromhex(access_token_hex), user_id=owner,
                                                    field=ACCESS_FIELD)
    if channel_id and resource_id:
        if refresh_token:
            try:  # the stored access token may have expired
                access_token = oauth.refresh(refresh_token)["access_token"]
            except OAuthError:
                pass  # already revoked: the channel dies with the grant
        if access_token:
            oauth.stop_channel(access_token, channel_id, resource_id)
    token = refresh_token or access_token
    if token:
        oauth.revoke(token)
