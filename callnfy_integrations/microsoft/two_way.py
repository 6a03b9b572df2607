"""Two-way sync with Microsoft 365: the Graph subscription, the delta of the calendar view, notifications.

* Switching to two-way (`request_start`) asks for a **start**: a baseline — the calendar view's delta
  paged through without importing anything — gives the first `deltaLink` (`sync_token`) and the time
  from which new events may become appointments (`two_way_since`); then a subscription to the
  calendar's events (`created,updated,deleted`, a random `clientState` of which only the SHA-256 is
  kept, MICROSOFT_SUBSCRIPTION_MINUTES, below Graph's 4,230) with a lifecycle URL. The subscription
  lives in the connection's provider-neutral columns: `channel_id` = its id, `channel_token_hash`,
  `channel_expires_at`. Switching back to one-way, or disconnecting, clears them at once and deletes
  the subscription at Graph in a retried job.
* `POST /webhooks/microsoft/calendar` (and `/lifecycle`) checks every notification of a batch
  (subscription id and clientState, constant time) before anything is enqueued, then requests a
  coalesced incremental sync (a Redis flag, as Google's) or, for lifecycle notifications, a renewal
  (`reauthorizationRequired`), a new subscription and a sync (`subscriptionRemoved`), or a sync
  (`missed`).
* A sync follows the stored deltaLink through every page and stores the new one only after the
  last; a reset of the delta state (410 `syncStateNotFound`) → a fresh round over a new window.

Services here only flush; the runs in `two_way_runs.py` (named for RQ in `jobs/microsoft.py`) and
the views own the transactions.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import or_, select

from ..calendar_sync.models import CalendarLink
from ..extensions import AUTOCOMMIT_BIND, db
from ..integrations.models import CONNECTED, MICROSOFT_CALENDAR, TWO_WAY, Integration
from ..queues import CALENDAR, enqueue, enqueue_in, redis_connection
from ..timestamps import utcnow
from ..transactions import after_commit
from . import graph_api
from .oauth import MicrosoftUnavailable
from .tokens import call

log = logging.getLogger(__name__)

DEFAULT_CALENDAR = "default"
START_JOB = "jobs.microsoft.start_two_way"
SYNC_JOB = "jobs.microsoft.sync_calendar"
RENEW_JOB = "jobs.microsoft.renew_subscription"
RECREATE_JOB = "jobs.microsoft.recreate_subscription"
STOP_JOB = "jobs.microsoft.stop_subscription"
RENEW_WITHIN = timedelta(hours=24)
ERROR_MAX = 500
PENDING_TTL = 60  # as Google's: a lost sync job only delays the next one this long
MAX_SUBSCRIPTION_ID = 64  # Graph's ids are GUIDs (36); the column holds 64
MAX_CLIENT_STATE = 128  # Graph's limit
STOP_RETRY_INTERVALS = [10, 60, 300, 900, 3600]


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def notification_url() -> str:
    return f"{current_app.config['PUBLIC_API_URL']}/webhooks/microsoft/calendar"


def lifecycle_url() -> str:
    return f"{current_app.config['PUBLIC_API_URL']}/webhooks/microsoft/lifecycle"


def calendar_of(integration: Integration) -> str:
    return integration.calendar_id or DEFAULT_CALENDAR


# -- switching on and off ------------------------------------------------------------------------

def request_start(integration: Integration) -> None:
    """A baseline and a subscription, once the caller commits (switching on)."""
    integration.sync_token = None
    integration.sync_error = None
    integration.sync_attempts = 0
    after_commit(enqueue_start, integration.id)


def enqueue_start(integration_ids: list[uuid.UUID]) -> None:
    for integration_id in dict.fromkeys(integration_ids):
        try:
            enqueue(START_JOB, str(integration_id), queue=CALENDAR, result_ttl=0, failure_ttl=7 * 86400)
        except Exception:  # the subscription sweep finds two-way connections without a subscription
            log.warning("could not enqueue the Microsoft two-way start; the sweep will", exc_info=True)


def stop(integration: Integration, *, disconnecting: bool = False) -> None:
    """Back to one-way (or disconnecting): notifications are refused from this commit on; the
    subscription is deleted at Graph by a job after the commit. A disconnected connection's tokens
    are gone by then, so the job carries the access token's ciphertext (it is good for up to an hour;
    after that the subscription ends by itself within MICROSOFT_SUBSCRIPTION_MINUTES)."""
    subscription_id = integration.channel_id
    integration.channel_id = integration.channel_token_hash = integration.channel_expires_at = None
    integration.sync_token = None
    integration.two_way_since = None
    integration.sync_error = None
    if subscription_id:
        access = integration.access_token_encrypted if disconnecting else None
        after_commit(enqueue_stop, (integration.id, subscription_id, integration.user_id, access and access.hex()))


def enqueue_stop(items: list[tuple[uuid.UUID, str, uuid.UUID | None, str | None]]) -> None:
    from rq import Retry

    for integration_id, subscription_id, user_id, access_hex in items:
        try:
            # RQ logs a job's description, by default its arguments: not the token's ciphertext.
            enqueue(STOP_JOB, str(integration_id), subscription_id, user_id and str(user_id), access_hex,
                    queue=CALENDAR, result_ttl=0, failure_ttl=7 * 86400,
                    description=f"{STOP_JOB}({str(integration_id)!r}, {subscription_id!r})",
                    retry=Retry(max=len(STOP_RETRY_INTERVALS), interval=STOP_RETRY_INTERVALS))
        except Exception:  # it expires by itself; its notifications are answered 404 meanwhile
            log.warning("could not enqueue deleting a Microsoft subscription", exc_info=True)


def two_way_integration(integration_id: uuid.UUID, *, for_update: bool = False) -> Integration | None:
    statement = select(Integration).where(
        Integration.id == integration_id, Integration.provider == MICROSOFT_CALENDAR,
        Integration.status == CONNECTED, Integration.sync_mode == TWO_WAY)
    if for_update:
        statement = statement.with_for_update()
    return db.session.scalars(statement).one_or_none()


# -- the subscription ------------------------------------------------------------------------------

def lifetime() -> timedelta:
    return timedelta(minutes=current_app.config["MICROSOFT_SUBSCRIPTION_MINUTES"])


def renew_within() -> timedelta:
    """Renewed within a day of its end; a shorter-lived subscription at half its life."""
    return min(RENEW_WITHIN, lifetime() / 2)


@dataclass(frozen=True)
class Subscription:
    id: str
    client_state: str
    expires_at: datetime


def _expiry(answer: dict[str, Any], asked: datetime) -> datetime:
    """The expiry Graph answered (it may shorten what was asked), else what was asked."""
    try:
        found = datetime.fromisoformat(str(answer["expirationDateTime"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return asked
    return found if found.tzinfo else asked


def open_subscription(integration_id: uuid.UUID, calendar_id: str) -> Subscription:
    """Create a subscription at Graph (which first validates both of our URLs)."""
    client_state = secrets.token_urlsafe(48)  # 64 characters; Graph allows 128
    asked = utcnow() + lifetime()
    answer = call(integration_id, lambda token: graph_api.create_subscription(
        token, resource=graph_api.subscription_resource(calendar_id), notification_url=notification_url(),
        lifecycle_url=lifecycle_url(), client_state=client_state, expires_at=asked))
    subscription_id = str(answer.get("id") or "")
    if not subscription_id or len(subscription_id) > MAX_SUBSCRIPTION_ID:
        raise MicrosoftUnavailable("Graph: a subscription without a usable id")
    return Subscription(subscription_id, client_state, _expiry(answer, asked))


def renew_subscription(integration_id: uuid.UUID, subscription_id: str) -> datetime:
    """PATCH a later expiry; the new one. A GraphError 404 when Graph no longer holds it."""
    asked = utcnow() + lifetime()
    answer = call(integration_id, lambda token: graph_api.renew_subscription(token, subscription_id, asked))
    return _expiry(answer, asked)


def install_subscription(integration: Integration, subscription: Subscription) -> str | None:
    """Make `subscription` the connection's; the one it replaces (to delete after commit), if any."""
    replaced = integration.channel_id if integration.channel_id != subscription.id else None
    integration.channel_id = subscription.id
    integration.channel_token_hash = _hash(subscription.client_state)
    integration.channel_expires_at = subscription.expires_at
    return replaced


def delete_subscription(integration_id: uuid.UUID, subscription_id: str) -> None:
    call(integration_id, lambda token: graph_api.delete_subscription(token, subscription_id))


def linked_event_ids(integration_id: uuid.UUID, event_ids: set[str]) -> set[str]:
    """Which of these Outlook events are linked to an appointment of this connection."""
    integration = db.session.get(Integration, integration_id)
    if integration is None:
        return set()
    return set(db.session.scalars(select(CalendarLink.event_id).where(
        CalendarLink.user_id == integration.user_id, CalendarLink.provider == MICROSOFT_CALENDAR,
        CalendarLink.event_id.in_(event_ids))))


# -- the delta of the calendar view ------------------------------------------------------------------

def delta_window(at: datetime) -> tuple[datetime, datetime]:
    """The calendar view a delta round follows: a day before `at` to MICROSOFT_DELTA_WINDOW_DAYS after."""
    return at - timedelta(days=1), at + timedelta(days=current_app.config["MICROSOFT_DELTA_WINDOW_DAYS"])


WINDOW_END = "deltaWindowEnd"  # in the connection's `settings`: where the current round's window ends


def record_window(integration: Integration, end: datetime) -> None:
    integration.settings = {**(integration.settings or {}), WINDOW_END: end.isoformat()}


def window_ends_soon(integration: Integration, now: datetime) -> bool:
    """A round's window is fixed when it starts, so time runs towards its end: once a quarter of it is
    left, the next sync starts a fresh round over a window from now (else events booked beyond the end
    would never be seen). A connection without a recorded end counts from its baseline."""
    days = current_app.config["MICROSOFT_DELTA_WINDOW_DAYS"]
    recorded = (integration.settings or {}).get(WINDOW_END)
    try:
        end = datetime.fromisoformat(recorded) if recorded else None
    except (TypeError, ValueError):
        end = None
    if end is None and integration.two_way_since is not None:
        end = integration.two_way_since + timedelta(days=days)
    return end is not None and end - now < timedelta(days=days / 4)


def walk_delta(integration_id: uuid.UUID, calendar_id: str, *, link: str | None = None,
               window: tuple[datetime, datetime] | None = None,
               on_page: Callable[[list[dict[str, Any]]], None] | None = None) -> str:
    """Follow a delta round — from `link` (a stored deltaLink), or the initial query over `window` —
    through every page, handing each page's events to `on_page`; returns the round's final deltaLink.
    No transaction may be open when this is called, and `on_page` must commit what it does: Graph is
    asked for the next page outside any transaction."""
    page_size = current_app.config["MICROSOFT_DELTA_PAGE_SIZE"]
    start, end = window or (None, None)
    while True:
        page = call(integration_id, lambda token, link=link: graph_api.delta_page(
            token, calendar_id, link=link, start=start, end=end, page_size=page_size))
        items = page.get("value")
        if on_page is not None and isinstance(items, list) and items:
            on_page([item for item in items if isinstance(item, dict)])
        if page.get("@odata.nextLink"):
            link = str(page["@odata.nextLink"])
        elif page.get("@odata.deltaLink"):
            return str(page["@odata.deltaLink"])
        else:
            raise MicrosoftUnavailable("Graph: a delta page with neither a next nor a delta link")


# -- notifications -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Notification:
    integration_id: uuid.UUID
    lifecycle_event: str | None


def verify_notifications(batch: list[Any]) -> list[Notification] | None:
    """The batch's notifications, each tied to its connection; None when any one is not a current
    subscription of a connected two-way Microsoft calendar or has the wrong clientState (then nothing
    of the batch counts). One query for the whole batch; the rest is linear in its size."""
    pairs = []
    for item in batch:
        if not isinstance(item, dict):
            return None
        subscription_id, state = item.get("subscriptionId"), item.get("clientState")
        if not isinstance(subscription_id, str) or not 0 < len(subscription_id) <= MAX_SUBSCRIPTION_ID:
            return None
        if not isinstance(state, str) or not 0 < len(state) <= MAX_CLIENT_STATE:
            return None
        lifecycle_event = item.get("lifecycleEvent")
        pairs.append((subscription_id, _hash(state), lifecycle_event if isinstance(lifecycle_event, str) else None))
    if not pairs:
        return []
    # A lone read on the autocommit engine: no BEGIN/ROLLBACK around it (Graph waits for this answer).
    with db.engines[AUTOCOMMIT_BIND].connect() as connection:
        rows = connection.execute(select(Integration.id, Integration.channel_id, Integration.channel_token_hash).where(
            Integration.channel_id.in_({p[0] for p in pairs}), Integration.provider == MICROSOFT_CALENDAR,
            Integration.sync_mode == TWO_WAY, Integration.status == CONNECTED)).all()
    known = {row.channel_id: row for row in rows}
    found = []
    for subscription_id, state_hash, lifecycle_event in pairs:
        row = known.get(subscription_id)
        if row is None or not row.channel_token_hash or not hmac.compare_digest(row.channel_token_hash, state_hash):
            return None
        found.append(Notification(row.id, lifecycle_event))
    return found


def pending_key(integration_id: uuid.UUID | str) -> str:
    return f"callnfy:microsoft-sync-pending:{integration_id}"


def request_sync(integration_id: uuid.UUID) -> bool:
    """Coalesced as Google's: an incremental sync unless one is already waiting; True if this call
    asked for it. Graph sends one notification per change: the sync starts
    MICROSOFT_SYNC_DEBOUNCE_SECONDS after the first, and the rest of the burst finds it pending."""
    connection = redis_connection()
    if not connection.set(pending_key(integration_id), 1, nx=True, ex=PENDING_TTL):
        return False
    options = {"result_ttl": 0, "failure_ttl": 7 * 86400, "at_front": True,
               "job_id": f"microsoft-sync-{integration_id}-{uuid.uuid4().hex[:8]}"}
    debounce = current_app.config["MICROSOFT_SYNC_DEBOUNCE_SECONDS"]
    if debounce > 0:
        enqueue_in(timedelta(seconds=debounce), SYNC_JOB, str(integration_id), queue=CALENDAR,
                   connection=connection, **options)
    else:
        enqueue(SYNC_JOB, str(integration_id), queue=CALENDAR, connection=connection, **options)
    return True


def request_renewal(integration_id: uuid.UUID) -> None:
    """`reauthorizationRequired`: renew (PATCH) soon; renewing answers the challenge."""
    enqueue(RENEW_JOB, str(integration_id), queue=CALENDAR, result_ttl=0, failure_ttl=7 * 86400, at_front=True)


def request_recreate(integration_id: uuid.UUID) -> None:
    """`subscriptionRemoved`: a new subscription, then a sync of what changed meanwhile."""
    enqueue(RECREATE_JOB, str(integration_id), queue=CALENDAR, result_ttl=0, failure_ttl=7 * 86400, at_front=True)


def record_sync_error(integration: Integration, message: str) -> None:
    integration.sync_error = message[:ERROR_MAX]


# -- sweeps ----------------------------------------------------------------------------------------

def subscriptions_to_renew() -> list[uuid.UUID]:
    """Two-way connections whose subscription ends soon (`renew_within`), or that have none (a lost start)."""
    cutoff = utcnow() + renew_within()
    return list(db.session.scalars(select(Integration.id).where(
        Integration.provider == MICROSOFT_CALENDAR, Integration.status == CONNECTED, Integration.sync_mode == TWO_WAY,
        or_(Integration.channel_id.is_(None), Integration.channel_expires_at <= cutoff))))


def two_way_integrations() -> list[uuid.UUID]:
    """Two-way connections with a baseline (the safety sync's calendars)."""
    return list(db.session.scalars(select(Integration.id).where(
        Integration.provider == MICROSOFT_CALENDAR, Integration.status == CONNECTED, Integration.sync_mode == TWO_WAY,
        Integration.sync_token.is_not(None))))
