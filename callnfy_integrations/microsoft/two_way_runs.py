"""Running Microsoft two-way sync: the steps behind `jobs.microsoft.start_two_way`, `renew_subscription`,
`recreate_subscription`, `sync_calendar` and `stop_subscription` (the periodic ones are in `sweeps.py`).

As Google's (`google/two_way_runs.py`): these are edges. Each step commits its own work (the services in
`two_way.py` only flush), one run of a calendar at a time (a lease), and no transaction stays open
while Graph answers. Each changed event is translated (`events.normalize`) and handed to the engine's
provider-neutral apply step (`calendar_sync.apply`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import current_app
from redis.exceptions import RedisError

from ..calendar_sync.apply_runs import AppointmentBusy, Pages, apply_event, refresh_busy, report_skipped
from ..calendar_sync.push import backoff_seconds
from ..crypto import secret_box
from ..extensions import db
from ..integrations.models import CONNECTED, Integration
from ..locking import Lease
from ..queues import CALENDAR, enqueue_in, redis_connection
from ..timestamps import utcnow
from . import busy, events, graph_api, oauth, sync_errors, two_way
from .tokens import ACCESS_FIELD, ReauthorizationRequired, call

log = logging.getLogger(__name__)

TWO_WAY_LOCK_WAIT_SECONDS = 60
MAX_TWO_WAY_ATTEMPTS = 12


def _two_way_lock(integration_id: uuid.UUID) -> Lease:
    """One start, renewal or sync of a calendar at a time (a second waits for the first)."""
    return Lease(f"callnfy:lock:microsoft-two-way:{integration_id}", wait=TWO_WAY_LOCK_WAIT_SECONDS)


# -- the runs --------------------------------------------------------------------------------------

def start(integration_id: str) -> str:
    """Switching on: a baseline deltaLink (nothing imported), then a subscription."""
    return _run(two_way.START_JOB, integration_id, _begin)


def renew(integration_id: str) -> str:
    """A later expiry for the subscription (PATCH); a new one when Graph no longer holds it."""
    return _run(two_way.RENEW_JOB, integration_id, _renew)


def recreate(integration_id: str) -> str:
    """After `subscriptionRemoved`: a new subscription, then a sync of what changed meanwhile."""
    return _run(two_way.RECREATE_JOB, integration_id, _resubscribe)


def sync_changes(integration_id: str) -> str:
    """Apply what changed in Outlook since the stored deltaLink (a notification, or the safety sweep)."""
    try:
        redis_connection().delete(two_way.pending_key(integration_id))  # from now on a notification queues the next
    except RedisError:
        pass
    return _run(two_way.SYNC_JOB, integration_id, _incremental)


def _run(job: str, integration_id: str, work: Callable[[uuid.UUID, str], str]) -> str:
    """`work(integration id, calendar id)` under the calendar's lease; how a failure is retried."""
    iid = uuid.UUID(integration_id)
    integration = two_way.two_way_integration(iid)
    calendar_id = integration and two_way.calendar_of(integration)
    db.session.commit()
    if integration is None:
        return "not two-way"
    lock = _two_way_lock(iid)
    if not lock.acquire():  # another run holds it for long: try again shortly
        enqueue_in(timedelta(seconds=5), job, integration_id, queue=CALENDAR, result_ttl=0)
        return "busy"
    try:
        outcome = work(iid, calendar_id)
        _record_success(iid)
        return outcome
    except Exception as exc:  # sorted by `_after_failure`, which raises again what it does not know
        db.session.rollback()
        return _after_failure(job, iid, exc)
    finally:
        lock.release()


def _after_failure(job: str, iid: uuid.UUID, exc: Exception) -> str:
    """Record a failed run and schedule it again when it may succeed later; what happened, for the log."""
    again_in: float | None = None
    if isinstance(exc, AppointmentBusy):  # the deltaLink was not moved: the next run reads these again
        again_in, outcome = 5.0, "busy"
    elif isinstance(exc, ReauthorizationRequired):  # marked for reconnecting by the token store
        outcome = "reauthorization required"
    elif isinstance(exc, (oauth.MicrosoftUnavailable, graph_api.DeltaExpired)) or (
            isinstance(exc, graph_api.GraphError) and exc.retryable):
        again_in, outcome = _record_failure(iid, exc, retry=True), "retry"
    elif isinstance(exc, (graph_api.GraphError, LookupError)):
        _record_failure(iid, exc, retry=False)
        outcome = "failed"
    else:
        raise exc
    if again_in is not None:
        enqueue_in(timedelta(seconds=again_in), job, str(iid), queue=CALENDAR, result_ttl=0)
    return outcome


def _record_success(iid: uuid.UUID) -> None:
    integration = two_way.two_way_integration(iid, for_update=True)
    if integration is not None and integration.sync_attempts:
        integration.sync_attempts = 0
    db.session.commit()


def _record_failure(iid: uuid.UUID, exc: Exception, *, retry: bool) -> float | None:
    integration = two_way.two_way_integration(iid, for_update=True)
    if integration is None:
        db.session.commit()
        return None
    integration.sync_attempts += 1
    delay = None
    if retry and integration.sync_attempts < MAX_TWO_WAY_ATTEMPTS:
        delay = backoff_seconds(integration.sync_attempts, getattr(exc, "retry_after", None))
    two_way.record_sync_error(integration, sync_errors.will_retry(exc) if delay else
                              sync_errors.gave_up(exc, integration.sync_attempts) if retry else
                              sync_errors.describe(exc))
    db.session.commit()
    log.warning("microsoft two-way sync failed", extra={"integration_id": str(iid), "error": type(exc).__name__,
                                                         "detail": str(exc)[:500], "retry_in": delay})
    return delay


# -- baseline and subscription -----------------------------------------------------------------------

def _begin(iid: uuid.UUID, calendar_id: str) -> str:
    """The baseline (every page of the delta, nothing imported), then the subscription; both stored
    together, so a failure of either starts again from scratch."""
    started = utcnow()
    window = two_way.delta_window(started)
    delta_link = two_way.walk_delta(iid, calendar_id, window=window)
    subscription = two_way.open_subscription(iid, calendar_id)
    integration = two_way.two_way_integration(iid, for_update=True)
    if integration is None:  # switched off or disconnected meanwhile: this subscription must not live on
        db.session.commit()
        _delete_replaced(iid, subscription.id)
        return "switched off meanwhile"
    replaced = two_way.install_subscription(integration, subscription)
    integration.sync_token, integration.two_way_since, integration.last_sync_at = delta_link, started, utcnow()
    two_way.record_window(integration, window[1])
    integration.sync_error = None
    db.session.commit()
    _delete_replaced(iid, replaced)
    refresh_busy(iid, busy.PROVIDER, calendar_id)  # from now on notifications keep it fresh
    return "started"


def _renew(iid: uuid.UUID, calendar_id: str) -> str:
    integration = two_way.two_way_integration(iid)
    subscription_id, baseline = integration.channel_id, integration.sync_token
    db.session.commit()
    if not baseline:  # a lost start
        return _begin(iid, calendar_id)
    if subscription_id:
        try:
            expires_at = two_way.renew_subscription(iid, subscription_id)
        except graph_api.GraphError as exc:
            if exc.status != 404 or isinstance(exc, graph_api.Unauthorized):
                raise
            log.info("Graph no longer holds the subscription; creating a new one", extra={"integration_id": str(iid)})
        else:
            integration = two_way.two_way_integration(iid, for_update=True)
            if integration is not None and integration.channel_id == subscription_id:
                integration.channel_expires_at = expires_at
            db.session.commit()
            return "renewed"
    return _resubscribe(iid, calendar_id)


def _resubscribe(iid: uuid.UUID, calendar_id: str) -> str:
    """A new subscription in place of the current one (gone at Graph, or about to be deleted), then a
    sync: changes made while no subscription listened sent no notification."""
    integration = two_way.two_way_integration(iid)
    baseline = integration.sync_token
    db.session.commit()
    if not baseline:
        return _begin(iid, calendar_id)
    subscription = two_way.open_subscription(iid, calendar_id)
    integration = two_way.two_way_integration(iid, for_update=True)
    if integration is None:
        db.session.commit()
        _delete_replaced(iid, subscription.id)
        return "switched off meanwhile"
    replaced = two_way.install_subscription(integration, subscription)
    db.session.commit()
    _delete_replaced(iid, replaced)
    two_way.request_sync(iid)
    return "resubscribed"


def _delete_replaced(iid: uuid.UUID, subscription_id: str | None) -> None:
    """Delete a replaced subscription now; what fails is left to a retried job (it also expires)."""
    if not subscription_id:
        return
    try:
        two_way.delete_subscription(iid, subscription_id)
    except Exception:
        log.warning("could not delete a replaced Microsoft subscription; retrying in a job", exc_info=True)
        two_way.enqueue_stop([(iid, subscription_id, None, None)])


def stop_subscription(integration_id: str, subscription_id: str, user_id: str | None = None,
                      access_token_hex: str | None = None) -> str:
    """Delete a subscription at Graph (switched to one-way, replaced, or disconnected); raises to be
    retried. A disconnected connection's tokens are gone: its access token's ciphertext came along."""
    iid = uuid.UUID(integration_id)
    integration = db.session.get(Integration, iid)
    connected = integration is not None and integration.status == CONNECTED
    db.session.commit()
    if connected:
        try:
            two_way.delete_subscription(iid, subscription_id)
        except ReauthorizationRequired:
            return "reauthorization required; it expires by itself"
        return "deleted"
    if not (access_token_hex and user_id):
        return "nothing to delete it with; it expires by itself"
    token = secret_box().decrypt(bytes.fromhex(access_token_hex), user_id=uuid.UUID(user_id), field=ACCESS_FIELD)
    try:
        graph_api.delete_subscription(token, subscription_id)
    except graph_api.Unauthorized:  # the last access token expired: Graph drops it at its expiry
        return "token expired; it expires by itself"
    return "deleted"


# -- applying changes ------------------------------------------------------------------------------

def _incremental(iid: uuid.UUID, calendar_id: str) -> str:
    integration = two_way.two_way_integration(iid)
    link = integration.sync_token
    move_window = two_way.window_ends_soon(integration, utcnow())
    db.session.commit()
    if not link:  # no baseline yet (a lost start): take one
        return _begin(iid, calendar_id)
    pages = Pages(cap=current_app.config["MICROSOFT_IMPORT_MAX_PER_SYNC"], label="Outlook")
    on_page = lambda items: _apply_page(iid, items, pages)  # noqa: E731
    window = None
    try:
        new_link = two_way.walk_delta(iid, calendar_id, link=link, on_page=on_page)
    except graph_api.DeltaExpired:
        # Graph dropped the round's state: a fresh round over a new window, every event in it handed to
        # apply (linked ones reconcile; unlinked ones created before `two_way_since` stay out).
        db.session.rollback()
        move_window = True
    if move_window:  # (or the window nears its end: the round's changes are applied first, above)
        window = two_way.delta_window(utcnow())
        new_link = two_way.walk_delta(iid, calendar_id, window=window, on_page=on_page)
    rebaselined = window is not None
    report_skipped(iid, pages, log)
    integration = two_way.two_way_integration(iid, for_update=True)
    if integration is not None and (rebaselined or integration.sync_token == link):
        if window is not None:
            two_way.record_window(integration, window[1])
        integration.sync_token = new_link  # only once every page is applied
        integration.last_sync_at = utcnow()
        integration.sync_error = pages.errors[-1][:two_way.ERROR_MAX] if pages.errors else None
    db.session.commit()
    if pages.foreign:
        refresh_busy(iid, busy.PROVIDER, calendar_id)
    return f"re-baselined, applied {pages.applied}" if rebaselined else f"applied {pages.applied}"


def _apply_page(iid: uuid.UUID, items: list[dict[str, Any]], pages: Pages) -> None:
    """Each event of a page in its own savepoint; the page committed before Graph is asked for the next."""
    items = _confirm_removals(iid, items)
    integration = two_way.two_way_integration(iid)
    if integration is None:
        raise LookupError("switched off or disconnected during the sync")
    for item in items:
        event = events.normalize(item, integration.email)
        if not event.id:
            continue
        pages.seen += 1
        apply_event(iid, integration, event, pages, log, "an Outlook event could not be applied")
        # Not our own copy of an appointment (the delta cannot $expand our tag; transactionId tells).
        pages.foreign += event.tagged_appointment_id is None
    db.session.commit()


def _confirm_removals(iid: uuid.UUID, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Graph says `@removed` both for an event deleted and for one moved out of the round's window (to a
    past date, say): only a deleted one may cancel its appointment. A removal of a linked event is
    checked with a GET (outside any transaction); the event as it is now replaces it when it exists."""
    removed = {str(item.get("id")) for item in items if "@removed" in item and item.get("id")}
    if not removed:
        return items
    linked = two_way.linked_event_ids(iid, removed)
    db.session.commit()
    found = {event_id: call(iid, lambda token, e=event_id: graph_api.event_or_none(token, e)) for event_id in linked}
    return [found.get(str(item.get("id"))) or item for item in items]
