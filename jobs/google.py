"""Google jobs: push appointments to the calendar, sweep for lost pushes, revoke access after a disconnect.

These are edges: each commits its own work (the services under `callnfy_integrations/google` only
flush), and never keeps a transaction open across a call to Google.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import Counter
from datetime import timedelta

from flask import current_app
from redis.exceptions import LockError, RedisError
from rq import get_current_job

from callnfy_integrations.extensions import db
from callnfy_integrations.google import calendar_api, oauth, revocation, sync, sync_errors, two_way
from callnfy_integrations.google.tokens import ReauthorizationRequired
from callnfy_integrations.integrations.models import Integration
from callnfy_integrations.process_flags import stopping
from callnfy_integrations.queues import CALENDAR, enqueue, enqueue_in, redis_connection
from callnfy_integrations.timestamps import utcnow

log = logging.getLogger(__name__)

LOCK_LEASE_SECONDS = 15  # how long a lock outlives a holder that was killed (it is renewed while held)
PUSH_LOCK_WAIT_SECONDS = 30


class Lease:
    """A Redis lock held for as long as its holder runs, and at most LOCK_LEASE_SECONDS longer.

    The lock's TTL is short and a thread renews it every third of that while it is held. A TTL
    sized for the longest run instead (minutes: several Calendar calls with a 10 s timeout each)
    outlives a SIGKILLed worker by as long, and every push or sync of that appointment or calendar
    would meanwhile wait behind the dead holder, holding a worker while it waits.
    """

    def __init__(self, name: str, *, wait: float):
        # Not thread-local: the renewing thread presents the holder's token.
        self.lock = redis_connection().lock(name, timeout=LOCK_LEASE_SECONDS, blocking_timeout=wait,
                                            thread_local=False)
        self._released = threading.Event()

    def acquire(self) -> bool:
        try:
            acquired = self.lock.acquire()
        except RedisError:
            return False
        if acquired:
            threading.Thread(target=self._renew, name="lock-lease", daemon=True).start()
        return acquired

    def _renew(self) -> None:
        while not self._released.wait(LOCK_LEASE_SECONDS / 3):
            try:
                self.lock.reacquire()
            except (LockError, RedisError):  # lost (Redis flushed): the next holder takes a fresh one
                return

    def release(self) -> None:
        self._released.set()
        try:
            self.lock.release()
        except (LockError, RedisError):  # expired, or Redis was flushed meanwhile: nothing to release
            pass


def sync_appointments(appointment_ids: list[str]) -> int:
    """Make Google match each appointment's current state; returns how many calls-worth of pushes ran.

    Our per-user quota may run out mid-batch: the rest is re-enqueued for when it frees up.
    """
    pushed = 0
    for index, appointment_id in enumerate(appointment_ids):
        if index and stopping():  # SIGTERM: hand the rest to another worker, exit in time
            enqueue(sync_appointments, appointment_ids[index:], queue=CALENDAR, result_ttl=0)
            return pushed
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


def push_lease(appointment_id: uuid.UUID) -> Lease:
    """The lock every write of this appointment's Google state takes: a push, and two-way sync applying
    a Google change to it (so neither records its outcome over the other's)."""
    return Lease(f"callnfy:lock:google-push:{appointment_id}", wait=PUSH_LOCK_WAIT_SECONDS)


def push_appointment(appointment_id: uuid.UUID) -> float | None:
    """One appointment, serialised with other pushes of it; returns seconds to wait when over quota."""
    lock = push_lease(appointment_id)
    if not lock.acquire():  # another push of it is stuck or Redis is away: the sweeper re-drives it
        return None
    try:
        return _push(appointment_id)
    finally:
        lock.release()


def _push(appointment_id: uuid.UUID) -> float | None:  # noqa: C901  (split by the thin-jobs change)
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
        if sync.record_success(push, sent):  # changed while this push ran: push the current state now
            retry_in = 0.0
    db.session.commit()
    if retry_in == 0.0:
        sync.enqueue_pushes([(push.user_id, appointment_id)])
    elif retry_in is not None:
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


def revoke_google_access(user_id: str, refresh_token_hex: str | None = None, access_token_hex: str | None = None,
                         channel_id: str | None = None, resource_id: str | None = None,
                         previous_channel_id: str | None = None, previous_resource_id: str | None = None,
                         event_id: str | None = None) -> str:
    """After a disconnect (the `google.disconnected` event `event_id`): stop the channels (it needs a
    live access token), then revoke the grant, unless a connection we hold uses that Google account
    (Google would end that one too). Safe to run twice. Jobs queued before `event_id` existed carry
    ciphertexts in the other arguments; they find their event by job id too (see revocation.py)."""
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


# -- two-way sync ---------------------------------------------------------------------------------

TWO_WAY_LOCK_WAIT_SECONDS = 60
MAX_TWO_WAY_ATTEMPTS = 12


def _two_way_lock(integration_id: uuid.UUID) -> Lease:
    """One start, renewal or sync of a calendar at a time (a second waits for the first)."""
    return Lease(f"callnfy:lock:google-two-way:{integration_id}", wait=TWO_WAY_LOCK_WAIT_SECONDS)


def start_two_way(integration_id: str) -> str:
    """Switching on (or reconnecting in two-way): a baseline sync token, then a channel."""
    return _run_two_way(start_two_way, integration_id, lambda iid, calendar_id: _open_channel(
        iid, calendar_id, baseline=True))


def renew_channel(integration_id: str) -> str:
    """A new channel before the current one expires; the old one is stopped once the new one is stored."""
    return _run_two_way(renew_channel, integration_id, lambda iid, calendar_id: _open_channel(
        iid, calendar_id, baseline=False))


def sync_calendar(integration_id: str) -> str:
    """Apply what changed in Google since the stored sync token (a notification, or the safety sweep)."""
    try:
        redis_connection().delete(two_way.pending_key(integration_id))  # from now on a notification queues the next
    except RedisError:
        pass
    return _run_two_way(sync_calendar, integration_id, _incremental)


def _run_two_way(job, integration_id: str, work) -> str:
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
        _record_two_way_success(iid)
        return outcome
    except sync.QuotaWait as wait:
        db.session.rollback()
        enqueue_in(timedelta(seconds=wait.seconds), job, integration_id, queue=CALENDAR, result_ttl=0)
        return "quota"
    except AppointmentBusy:
        db.session.rollback()  # the sync token was not moved: the next run reads these changes again
        enqueue_in(timedelta(seconds=5), job, integration_id, queue=CALENDAR, result_ttl=0)
        return "busy"
    except ReauthorizationRequired:
        db.session.rollback()  # the connection is marked for reconnecting; a reconnect starts again
        return "reauthorization required"
    except (calendar_api.RetryLater, oauth.GoogleUnavailable) as exc:
        db.session.rollback()
        delay = _record_two_way_failure(iid, exc, retry=True)
        if delay is not None:
            enqueue_in(timedelta(seconds=delay), job, integration_id, queue=CALENDAR, result_ttl=0)
        return "retry"
    except (calendar_api.CalendarError, LookupError) as exc:
        db.session.rollback()
        _record_two_way_failure(iid, exc, retry=False)
        return "failed"
    finally:
        lock.release()


def _record_two_way_success(iid: uuid.UUID) -> None:
    integration = two_way.two_way_integration(iid, for_update=True)
    if integration is not None and integration.sync_attempts:
        integration.sync_attempts = 0
    db.session.commit()


def _record_two_way_failure(iid: uuid.UUID, exc: Exception, *, retry: bool) -> float | None:
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


def _open_channel(iid: uuid.UUID, calendar_id: str, *, baseline: bool) -> str:
    started = utcnow()
    sync_token = two_way.baseline_token(iid, calendar_id) if baseline else None
    channel = two_way.open_channel(iid, calendar_id)
    integration = two_way.two_way_integration(iid, for_update=True)
    if integration is None:  # switched off or disconnected meanwhile: this channel must not live on
        db.session.commit()
        _stop_channels(iid, [(channel.id, channel.resource_id)])
        return "switched off meanwhile"
    to_stop = two_way.install_channel(integration, channel)
    if baseline:
        integration.sync_token, integration.two_way_since, integration.last_sync_at = sync_token, started, utcnow()
        integration.sync_error = None
    db.session.commit()  # both channels are accepted from here until the old one is stopped
    _stop_channels(iid, to_stop)
    return "started" if baseline else "renewed"


def _stop_channels(iid: uuid.UUID, channels: list[tuple[str, str]]) -> None:
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


def _incremental(iid: uuid.UUID, calendar_id: str) -> str:
    integration = two_way.two_way_integration(iid)
    sync_token = integration.sync_token
    db.session.commit()
    if not sync_token:  # no baseline yet (a lost start): take one
        return _open_channel(iid, calendar_id, baseline=True)
    try:
        applied, last, errors = _apply_pages(iid, lambda token, page_token: calendar_api.list_events(
            token, calendar_id, sync_token=sync_token, page_token=page_token))
    except calendar_api.SyncTokenExpired:
        # Google dropped our token: re-read everything (deleted events included) and reconcile.
        db.session.rollback()
        applied, last, errors = _apply_pages(iid, lambda token, page_token: calendar_api.list_events(
            token, calendar_id, page_token=page_token, show_deleted=True))
        sync_token = None
    integration = two_way.two_way_integration(iid, for_update=True)
    if integration is not None and (sync_token is None or integration.sync_token == sync_token):
        integration.sync_token = last["nextSyncToken"]  # only once every page is applied
        integration.last_sync_at = utcnow()
        integration.sync_error = errors[-1][:two_way.ERROR_MAX] if errors else None  # the latest skipped event
    db.session.commit()
    return f"applied {applied}" if sync_token else f"re-baselined, applied {applied}"


class AppointmentBusy(Exception):
    """A push of a linked appointment held its lock for too long: the sync runs again shortly."""


def _apply_pages(iid: uuid.UUID, list_page) -> tuple[int, dict, list[str]]:  # noqa: C901  (split by the thin-jobs change)
    """Apply every page; each event in its own savepoint, each page in its own transaction. A linked
    event is applied under its appointment's push lock and committed before the lock is released.
    At most GOOGLE_IMPORT_MAX_PER_SYNC appointments are created per sync; what is skipped is logged.
    Returns (appointments changed, the last page, what was skipped as bad data or over the cap)."""
    applied, created, page_token, errors = 0, 0, None, []
    skipped: Counter[str] = Counter()
    cap = current_app.config["GOOGLE_IMPORT_MAX_PER_SYNC"]
    while True:
        page = two_way.call(iid, lambda token, page_token=page_token: list_page(token, page_token))
        integration = two_way.two_way_integration(iid)
        if integration is None:
            raise LookupError("switched off or disconnected during the sync")
        for item in page.get("items") or []:
            lease = None
            linked = two_way.linked_appointment_id(integration, item) if item.get("id") else None
            if linked is not None:
                lease = push_lease(linked)
                if not lease.acquire():
                    raise AppointmentBusy(str(linked))
            try:
                with db.session.begin_nested():
                    outcome = two_way.apply_change(integration, item, may_create=created < cap)
                if lease is not None:
                    db.session.commit()  # before the lock goes: a push then reads what was applied
                if outcome in ("created", "cancelled", "rescheduled"):
                    applied += 1
                    created += outcome == "created"
                elif outcome.startswith("skipped"):
                    skipped[outcome.removeprefix("skipped: ")] += 1
            except Exception as exc:  # one event's bad data is recorded and skipped, never blocks the rest
                log.warning("a Google event could not be applied", exc_info=not isinstance(exc, two_way.Skipped),
                            extra={"integration_id": str(iid), "event_id": str(item.get("id"))[:100],
                                   "error": type(exc).__name__})
                errors.append(sync_errors.unapplied_event(item.get("id"), exc))
            finally:
                if lease is not None:
                    lease.release()
        db.session.commit()
        page_token = page.get("nextPageToken")
        if not page_token:
            if skipped:
                log.info("two-way sync skipped Google events", extra={
                    "integration_id": str(iid), "skipped": dict(skipped), "imported": created})
            if skipped[two_way.IMPORT_CAPPED.removeprefix("skipped: ")]:
                errors.append(f"{skipped[two_way.IMPORT_CAPPED.removeprefix('skipped: ')]} new Google events were "
                              f"not imported: one sync imports at most {cap}")
            return applied, page, errors


def sweep_two_way() -> dict[str, int]:
    """Renew channels ending within a day (or missing); request a safety sync of every two-way calendar."""
    renew = two_way.channels_to_renew()
    db.session.commit()
    for integration_id in renew:
        enqueue(renew_channel, str(integration_id), queue=CALENDAR, result_ttl=0)
    return {"renewing": len(renew)}


def safety_sync(now: float | None = None) -> int:
    """Google does not guarantee notifications: every two-way calendar syncs every few hours anyway,
    each at its own moment of the interval (google/safety_sync.py); returns how many were requested."""
    from callnfy_integrations.google import safety_sync as spread

    integration_ids = two_way.two_way_integrations()
    db.session.commit()
    connection = redis_connection()
    due, through = spread.take(integration_ids, current_app.config, connection, now)
    requested = sum(1 for integration_id in due if two_way.request_sync(integration_id))
    spread.taken(through, connection)
    return requested
