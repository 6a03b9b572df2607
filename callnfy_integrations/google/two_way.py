"""Two-way sync: Google Calendar → Callnfy, through push notifications and incremental sync.

* Switching to two-way (or connecting while the stored mode is two-way) requests a **start**: a
  baseline — a full `events.list`, paged, asking only for the tokens — gives the first sync token
  without importing anything from before, then an `events.watch` channel is opened (own id, a
  random token of which only the SHA-256 is kept, 7 days). Switching back to one-way, or
  disconnecting, clears the token and channel at once and stops the channel at Google in a job.
* `POST /webhooks/google/calendar` checks the channel id and token (constant time) and, for
  `exists`/`not_exists`, requests an incremental sync: a Redis flag coalesces a burst into at most
  one sync running plus one pending.
* The incremental sync lists with the stored sync token page by page, applies each changed event
  in its own savepoint (bad data is recorded and skipped) and stores the new token only after the
  last page; 410 → a new baseline that re-reads every event (deleted ones included) and reconciles
  the linked appointments.
* Applying a change: a linked event (our private tag or the stored event id) cancelled → the
  appointment is cancelled; moved or resized → rescheduled; our own echo (the etag stored after our
  last write, or content already equal) → ignored. An unlinked, timed, busy, confirmed, single
  (non-recurring) event created after the baseline that the owner organises or has accepted → a new
  appointment with `source: google` (at most GOOGLE_IMPORT_MAX_PER_SYNC per sync). A change that came
  from Google is marked synced at its new version, so it is never pushed back. These rules are the
  engine's (`calendar_sync/apply.py`, fed `events.normalize`d items by `two_way_runs.py`); the
  rules when both sides changed are its `_apply_to_linked`'s.
* Channels are renewed a day before they expire (the new one opened before the old one is stopped;
  both are accepted meanwhile), and a safety sync runs every few hours for every two-way calendar.

Services here only flush; the jobs in `jobs/google.py` and the views own the transactions.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import or_, select

from ..extensions import db
from ..integrations.models import CONNECTED, GOOGLE_CALENDAR, TWO_WAY, Integration
from ..queues import CALENDAR, enqueue, enqueue_in, redis_connection
from ..timestamps import utcnow
from ..transactions import after_commit
from . import calendar_api
from .sync import call  # one Calendar call on our quota, refreshing the token once on a 401
from .sync_mode import on_sync_mode_change

log = logging.getLogger(__name__)

CHANNEL_TTL_SECONDS = 7 * 86400
RENEW_WITHIN = timedelta(hours=24)
START_JOB = "jobs.google.start_two_way"
SYNC_JOB = "jobs.google.sync_calendar"
STOP_JOB = "jobs.google.stop_channels"
ERROR_MAX = 500
# A lost sync job (Redis lost it, or a worker took it and was killed before it started and cleared
# the flag) only delays the calendar's next sync this long: until then every notification, and the
# safety sync, finds one "already pending". A sync really waiting longer only gets a second one.
PENDING_TTL = 60


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def push_address() -> str:
    return f"{current_app.config['PUBLIC_API_URL']}/webhooks/google/calendar"


# -- switching on and off ------------------------------------------------------------------------

@on_sync_mode_change
def _sync_mode_changed(integration_id: uuid.UUID, old: str, new: str) -> None:
    integration = db.session.get(Integration, integration_id)
    if new == TWO_WAY:
        request_start(integration)
    else:
        stop(integration)


def request_start(integration: Integration) -> None:
    """A baseline and a channel, once the caller commits (switching on, or reconnecting in two-way)."""
    integration.sync_token = None
    integration.sync_error = None
    integration.sync_attempts = 0
    after_commit(enqueue_start, integration.id)


def enqueue_start(integration_ids: list[uuid.UUID]) -> None:
    for integration_id in dict.fromkeys(integration_ids):
        try:
            enqueue(START_JOB, str(integration_id), queue=CALENDAR, result_ttl=0, failure_ttl=7 * 86400)
        except Exception:  # the safety sweep finds two-way integrations without a channel
            log.warning("could not enqueue the two-way start; the safety sweep will", exc_info=True)


def channels_of(integration: Integration) -> list[tuple[str, str]]:
    """(channel id, resource id) of every channel Google may still be sending to."""
    pairs = [(integration.channel_id, integration.channel_resource_id),
             (integration.previous_channel_id, integration.previous_channel_resource_id)]
    return [(c, r) for c, r in pairs if c and r]


def _clear_channels(integration: Integration) -> None:
    integration.channel_id = integration.channel_token_hash = integration.channel_resource_id = None
    integration.channel_expires_at = None
    integration.previous_channel_id = integration.previous_channel_token_hash = None
    integration.previous_channel_resource_id = None


def stop(integration: Integration) -> None:
    """Back to one-way: notifications are refused from this commit on; the channels are stopped at
    Google by a job (which needs a live token, so it runs after the commit)."""
    channels = channels_of(integration)
    _clear_channels(integration)
    integration.sync_token = None
    integration.two_way_since = None
    integration.sync_error = None
    if channels:
        after_commit(enqueue_stop, (integration.id, tuple(channels)))


def enqueue_stop(items: list[tuple[uuid.UUID, tuple]]) -> None:
    from rq import Retry

    for integration_id, channels in items:
        try:
            enqueue(STOP_JOB, str(integration_id), [list(c) for c in channels], queue=CALENDAR, result_ttl=0,
                    failure_ttl=7 * 86400, retry=Retry(max=5, interval=[10, 60, 300, 900, 3600]))
        except Exception:  # the channel expires by itself within 7 days; its notifications get 404s
            log.warning("could not enqueue stopping a Google channel", exc_info=True)


def two_way_integration(integration_id: uuid.UUID, *, for_update: bool = False) -> Integration | None:
    statement = select(Integration).where(Integration.id == integration_id, Integration.provider == GOOGLE_CALENDAR,
                                          Integration.status == CONNECTED, Integration.sync_mode == TWO_WAY)
    if for_update:
        statement = statement.with_for_update()
    return db.session.scalars(statement).one_or_none()


def baseline_token(integration_id: uuid.UUID, calendar_id: str) -> str:
    """Page through the whole calendar asking only for tokens: the sync token of 'now'."""
    page_token = None
    while True:
        page = call(integration_id, lambda token, page_token=page_token: calendar_api.list_events(
            token, calendar_id, page_token=page_token, fields=calendar_api.BASELINE_FIELDS))
        page_token = page.get("nextPageToken")
        if not page_token:
            return page["nextSyncToken"]


@dataclass(frozen=True)
class Channel:
    id: str
    token: str
    resource_id: str
    expires_at: datetime


def open_channel(integration_id: uuid.UUID, calendar_id: str) -> Channel:
    channel_id = f"callnfy-{uuid.uuid4().hex}"  # 40 characters; Google allows 64
    secret = secrets.token_urlsafe(32)
    answer = call(integration_id, lambda token: calendar_api.watch(
        token, calendar_id, channel_id=channel_id, token=secret, address=push_address(),
        ttl_seconds=CHANNEL_TTL_SECONDS))
    expiration = answer.get("expiration")
    expires_at = (datetime.fromtimestamp(int(expiration) / 1000, UTC) if expiration
                  else utcnow() + timedelta(seconds=CHANNEL_TTL_SECONDS))
    return Channel(channel_id, secret, answer["resourceId"], expires_at)


def install_channel(integration: Integration, channel: Channel) -> list[tuple[str, str]]:
    """Make `channel` the current one; the current one is kept as previous (both accepted) and
    returned with any older one, for the caller to stop after commit."""
    to_stop = []
    if integration.previous_channel_id and integration.previous_channel_resource_id:
        to_stop.append((integration.previous_channel_id, integration.previous_channel_resource_id))
    integration.previous_channel_id = integration.channel_id
    integration.previous_channel_token_hash = integration.channel_token_hash
    integration.previous_channel_resource_id = integration.channel_resource_id
    if integration.channel_id and integration.channel_resource_id:
        to_stop.append((integration.channel_id, integration.channel_resource_id))
    integration.channel_id, integration.channel_token_hash = channel.id, _hash(channel.token)
    integration.channel_resource_id, integration.channel_expires_at = channel.resource_id, channel.expires_at
    return to_stop


def forget_previous(integration: Integration, channel_id: str) -> None:
    """The replaced channel was stopped at Google: stop accepting it."""
    if integration.previous_channel_id == channel_id:
        integration.previous_channel_id = integration.previous_channel_token_hash = None
        integration.previous_channel_resource_id = None


def stop_at_google(integration_id: uuid.UUID, channels: list[tuple[str, str]]) -> None:
    for channel_id, resource_id in channels:
        call(integration_id, lambda token, c=channel_id, r=resource_id: calendar_api.stop_channel(token, c, r))


# -- notifications -------------------------------------------------------------------------------

def verify_notification(channel_id: str | None, token: str | None, resource_id: str | None) -> uuid.UUID | None:
    """The integration this notification is for, or None (unknown or stopped channel, wrong token)."""
    if not channel_id or len(channel_id) > 64 or not token or len(token) > 256:
        return None
    from ..extensions import AUTOCOMMIT_BIND

    # A lone read on the autocommit engine: no BEGIN/ROLLBACK around it (Google waits for this answer).
    with db.engines[AUTOCOMMIT_BIND].connect() as connection:
        row = connection.execute(select(
            Integration.id, Integration.channel_id, Integration.channel_token_hash, Integration.channel_resource_id,
            Integration.previous_channel_token_hash, Integration.previous_channel_resource_id,
        ).where(or_(Integration.channel_id == channel_id, Integration.previous_channel_id == channel_id),
                Integration.sync_mode == TWO_WAY, Integration.status == CONNECTED)).one_or_none()
    if row is None:
        return None
    current = row.channel_id == channel_id
    expected_hash = row.channel_token_hash if current else row.previous_channel_token_hash
    expected_resource = row.channel_resource_id if current else row.previous_channel_resource_id
    if not expected_hash or not hmac.compare_digest(expected_hash, _hash(token)):
        return None
    if resource_id and expected_resource and not hmac.compare_digest(expected_resource, resource_id):
        return None
    return row.id


def pending_key(integration_id: uuid.UUID | str) -> str:
    return f"callnfy:google-sync-pending:{integration_id}"


def request_sync(integration_id: uuid.UUID) -> bool:
    """Coalesced: an incremental sync unless one is already waiting; True if this call asked for it.

    Google sends one notification per change, so a bulk edit is a burst: the sync starts
    GOOGLE_SYNC_DEBOUNCE_SECONDS after the first notification (RQ's scheduler), and every
    notification until it starts is absorbed by the same pending flag."""
    connection = redis_connection()
    if not connection.set(pending_key(integration_id), 1, nx=True, ex=PENDING_TTL):
        return False
    # At the front of the calendar queue: another account's backlog of pushes must not hold up this
    # calendar's changes (and its busy time). Syncs are coalesced per calendar, so pushes still run.
    options = {"result_ttl": 0, "failure_ttl": 7 * 86400, "at_front": True,
               "job_id": f"google-sync-{integration_id}-{uuid.uuid4().hex[:8]}"}
    debounce = current_app.config["GOOGLE_SYNC_DEBOUNCE_SECONDS"]
    if debounce > 0:
        enqueue_in(timedelta(seconds=debounce), SYNC_JOB, str(integration_id), queue=CALENDAR,
                   connection=connection, **options)
    else:
        enqueue(SYNC_JOB, str(integration_id), queue=CALENDAR, connection=connection, **options)
    return True


def record_sync_error(integration: Integration, message: str) -> None:
    integration.sync_error = message[:ERROR_MAX]


# -- sweeps ----------------------------------------------------------------------------------------

def channels_to_renew() -> list[uuid.UUID]:
    """Two-way integrations whose channel ends within a day, or that have none (a lost start)."""
    cutoff = utcnow() + RENEW_WITHIN
    return list(db.session.scalars(select(Integration.id).where(
        Integration.provider == GOOGLE_CALENDAR, Integration.status == CONNECTED, Integration.sync_mode == TWO_WAY,
        or_(Integration.channel_id.is_(None), Integration.channel_expires_at <= cutoff))))


def two_way_integrations(*, with_token: bool = True) -> list[uuid.UUID]:
    statement = select(Integration.id).where(Integration.provider == GOOGLE_CALENDAR, Integration.status == CONNECTED,
                                             Integration.sync_mode == TWO_WAY)
    if with_token:
        statement = statement.where(Integration.sync_token.is_not(None))
    return list(db.session.scalars(statement))
