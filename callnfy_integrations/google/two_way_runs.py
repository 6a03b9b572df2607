"""Running two-way sync: the steps behind `jobs.google.start_two_way`, `renew_channel`, `sync_calendar`,
`stop_channels`, `sweep_two_way` and `safety_sync`.

Like event dispatch, these are edges: each step commits its own work (the services in `two_way.py`
only flush), one run of a calendar at a time (a lease), and no transaction stays open while Google
answers. `jobs/google.py` only names them for RQ.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import timedelta

from flask import current_app
from redis.exceptions import RedisError

from ..calendar_sync.apply_runs import AppointmentBusy, Pages, apply_event, refresh_busy, report_skipped
from ..extensions import db
from ..integrations.models import Integration
from ..locking import Lease
from ..queues import CALENDAR, enqueue, enqueue_in, redis_connection
from ..timestamps import utcnow
from . import busy, calendar_api, events, oauth, safety_sync, sync, sync_errors, two_way
from .tokens import ReauthorizationRequired

log = logging.getLogger(__name__)

RENEW_JOB = "jobs.google.renew_channel"
TWO_WAY_LOCK_WAIT_SECONDS = 60
MAX_TWO_WAY_ATTEMPTS = 12


def _two_way_lock(integration_id: uuid.UUID) -> Lease:
    """One start, renewal or sync of a calendar at a time (a second waits for the first)."""
    return Lease(f"callnfy:lock:google-two-way:{integration_id}", wait=TWO_WAY_LOCK_WAIT_SECONDS)


# -- the runs --------------------------------------------------------------------------------------

def start(integration_id: str) -> str:
    """Switching on (or reconnecting in two-way): a baseline sync token, then a channel."""
    return _run(two_way.START_JOB, integration_id, lambda iid, calendar_id: _open_channel(
        iid, calendar_id, baseline=True))


def renew(integration_id: str) -> str:
    """A new channel before the current one expires; the old one is stopped once the new one is stored."""
    return _run(RENEW_JOB, integration_id, lambda iid, calendar_id: _open_channel(iid, calendar_id, baseline=False))


def sync_changes(integration_id: str) -> str:
    """Apply what changed in Google since the stored sync token (a notification, or the safety sweep)."""
    try:
        redis_connection().delete(two_way.pending_key(integration_id))  # from now on a notification queues the next
    except RedisError:
        pass
    return _run(two_way.SYNC_JOB, integration_id, _incremental)


def _run(job: str, integration_id: str, work: Callable[[uuid.UUID, str], str]) -> str:
    """`work(integration id, calendar id)` under the calendar's lease; how a failure is retried."""
    iid = uuid.UUID(integration_id)
    integration = two_way.two_way_integration(iid)
    calendar_id = integration and (integration.calendar_id or "primary")
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
    if isinstance(exc, sync.QuotaWait):
        again_in, outcome = exc.seconds, "quota"
    elif isinstance(exc, AppointmentBusy):  # the sync token was not moved: the next run reads these again
        again_in, outcome = 5.0, "busy"
    elif isinstance(exc, ReauthorizationRequired):  # marked for reconnecting; a reconnect starts again
        outcome = "reauthorization required"
    elif isinstance(exc, (calendar_api.RetryLater, oauth.GoogleUnavailable)):
        again_in, outcome = _record_failure(iid, exc, retry=True), "retry"
    elif isinstance(exc, (calendar_api.CalendarError, LookupError)):
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
        delay = sync.backoff_seconds(integration.sync_attempts, getattr(exc, "retry_after", None))
    two_way.record_sync_error(integration, sync_errors.will_retry(exc) if delay else
                              sync_errors.gave_up(exc, integration.sync_attempts) if retry else
                              sync_errors.describe(exc))
    db.session.commit()
    log.warning("two-way sync failed", extra={"integration_id": str(iid), "error": type(exc).__name__,
                                               "detail": str(exc)[:500], "retry_in": delay})
    return delay


# -- channels --------------------------------------------------------------------------------------

def _open_channel(iid: uuid.UUID, calendar_id: str, *, baseline: bool) -> str:
    started = utcnow()
    sync_token = two_way.baseline_token(iid, calendar_id) if baseline else None
    channel = two_way.open_channel(iid, calendar_id)
    integration = two_way.two_way_integration(iid, for_update=True)
    if integration is None:  # switched off or disconnected meanwhile: this channel must not live on
        db.session.commit()
        _stop_replaced(iid, [(channel.id, channel.resource_id)])
        return "switched off meanwhile"
    to_stop = two_way.install_channel(integration, channel)
    if baseline:
        integration.sync_token, integration.two_way_since, integration.last_sync_at = sync_token, started, utcnow()
        integration.sync_error = None
    db.session.commit()  # both channels are accepted from here until the old one is stopped
    _stop_replaced(iid, to_stop)
    if baseline:
        refresh_busy(iid, busy.PROVIDER, calendar_id)  # from now on notifications keep it fresh
    return "started" if baseline else "renewed"


def _stop_replaced(iid: uuid.UUID, channels: list[tuple[str, str]]) -> None:
    """Stop replaced channels now; what fails is left to a retried job (they also expire by themselves)."""
    if not channels:
        return
    try:
        two_way.stop_at_google(iid, channels)
    except Exception:
        log.warning("could not stop a replaced Google channel; retrying in a job", exc_info=True)
        two_way.enqueue_stop([(iid, tuple(channels))])
        return
    _forget_stopped(iid, channels)


def _forget_stopped(iid: uuid.UUID, channels) -> None:
    """Google stopped these channels: stop accepting them."""
    integration = db.session.get(Integration, iid, with_for_update=True)
    if integration is not None:
        for channel_id, _ in channels:
            two_way.forget_previous(integration, channel_id)
    db.session.commit()


def stop_channels(integration_id: str, channels: list[list[str]]) -> int:
    """Stop channels at Google (switched to one-way, or replaced); raises to be retried."""
    iid = uuid.UUID(integration_id)
    if db.session.get(Integration, iid) is None:
        db.session.commit()
        return 0  # disconnected: the revocation job stops what it knew of, and the grant dies anyway
    db.session.commit()
    two_way.stop_at_google(iid, [(c, r) for c, r in channels])
    _forget_stopped(iid, channels)
    return len(channels)


# -- applying changes ------------------------------------------------------------------------------

def _incremental(iid: uuid.UUID, calendar_id: str) -> str:
    integration = two_way.two_way_integration(iid)
    sync_token = integration.sync_token
    db.session.commit()
    if not sync_token:  # no baseline yet (a lost start): take one
        return _open_channel(iid, calendar_id, baseline=True)
    try:
        pages = _apply_pages(iid, lambda token, page_token: calendar_api.list_events(
            token, calendar_id, sync_token=sync_token, page_token=page_token))
    except calendar_api.SyncTokenExpired:
        # Google dropped our token: re-read everything (deleted events included) and reconcile.
        db.session.rollback()
        pages = _apply_pages(iid, lambda token, page_token: calendar_api.list_events(
            token, calendar_id, page_token=page_token, show_deleted=True))
        sync_token = None
    integration = two_way.two_way_integration(iid, for_update=True)
    if integration is not None and (sync_token is None or integration.sync_token == sync_token):
        integration.sync_token = pages.last["nextSyncToken"]  # only once every page is applied
        integration.last_sync_at = utcnow()
        integration.sync_error = pages.errors[-1][:two_way.ERROR_MAX] if pages.errors else None
    db.session.commit()
    if pages.foreign:
        refresh_busy(iid, busy.PROVIDER, calendar_id)
    return f"applied {pages.applied}" if sync_token else f"re-baselined, applied {pages.applied}"


def _apply_pages(iid: uuid.UUID, list_page: Callable[[str, str | None], dict]) -> Pages:
    """Apply every page; each event in its own savepoint, each page in its own transaction. At most
    GOOGLE_IMPORT_MAX_PER_SYNC appointments are created per sync; what is skipped is logged."""
    pages = Pages(cap=current_app.config["GOOGLE_IMPORT_MAX_PER_SYNC"], label="Google")
    page_token = None
    while True:
        page = two_way.call(iid, lambda token, page_token=page_token: list_page(token, page_token))
        integration = two_way.two_way_integration(iid)
        if integration is None:
            raise LookupError("switched off or disconnected during the sync")
        for item in page.get("items") or []:
            if item.get("id"):
                apply_event(iid, integration, events.normalize(item, integration.email), pages, log,
                            "a Google event could not be applied")
            pages.foreign += not busy.is_mirror(item)
        db.session.commit()
        page_token = page.get("nextPageToken")
        if not page_token:
            pages.last = page
            report_skipped(iid, pages, log)
            return pages


# -- sweeps ----------------------------------------------------------------------------------------

def sweep_channels() -> dict[str, int]:
    """Renew channels ending within a day (or missing: a lost start)."""
    renew_ids = two_way.channels_to_renew()
    db.session.commit()
    for integration_id in renew_ids:
        enqueue(RENEW_JOB, str(integration_id), queue=CALENDAR, result_ttl=0)
    return {"renewing": len(renew_ids)}


def request_safety_syncs(now: float | None = None) -> int:
    """Google does not guarantee notifications: every two-way calendar syncs every few hours anyway,
    each at its own moment of the interval (safety_sync.py); returns how many were requested."""
    integration_ids = two_way.two_way_integrations()
    db.session.commit()
    connection = redis_connection()
    due, through = safety_sync.take(integration_ids, current_app.config, connection, now)
    requested = sum(1 for integration_id in due if two_way.request_sync(integration_id))
    safety_sync.taken(through, connection)
    return requested
