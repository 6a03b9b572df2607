"""One-way sync, provider-neutral: each connected calendar converges to each appointment's *current*
state.

* An outbox handler marks a changed appointment's link to every connected calendar `pending` (in the
  dispatch transaction) and, after commit, enqueues that provider's push job; connecting marks the
  next days' scheduled appointments the same way (the backfill).
* A push reads the appointment as it is now, not as the event described it, so pushes are idempotent
  and order-proof; the adapter makes one calendar match it (`Adapter.send`).
* Outcomes land on the link (`googleSync` / `microsoftSync`): synced, retried with backoff, failed
  for good, or waiting for the user to reconnect.
* The sweeper re-drives pushes that are due and were lost (Redis flushed, worker killed).

These functions only flush: the runs (`push_runs.py`) and dispatch own the transactions.
"""

from __future__ import annotations

import logging
import random
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import func, select, text, update

from ..appointments.models import CANCELLED, SOURCE_CALLNFY, Appointment
from ..appointments.payloads import appointment_id_of
from ..events import registry
from ..events.models import Event
from ..extensions import db
from ..integrations.models import CONNECTED, Integration
from ..queues import CALENDAR, enqueue, redis_connection
from ..transactions import after_commit
from .adapter import Adapter, Push, Sent, adapter_for
from .models import FAILED, PENDING, SYNCED, CalendarLink

log = logging.getLogger(__name__)

BATCH_SIZE = 25  # appointments per job: a backfill is many small jobs, so other work interleaves
MAX_ATTEMPTS = 12  # retryable failures; with the backoff cap that is many hours of trying
ERROR_MAX = 500


def _grace() -> float:
    return current_app.config["GOOGLE_SYNC_GRACE_SECONDS"]


# -- requesting pushes ---------------------------------------------------------------------------

# A link already synced at the current version (a change that came from the calendar, by two-way sync)
# is not pushed back.
_MARK_LINKS_CHANGED = text("""
    UPDATE calendar_links l
    SET state = 'pending', error = NULL, attempts = 0,
        next_sync_at = clock_timestamp() + make_interval(secs => :grace)
    FROM appointments a, integrations i
    WHERE l.appointment_id = :appointment_id AND a.id = l.appointment_id
      AND i.user_id = l.user_id AND i.provider = l.provider
      AND (l.state IS DISTINCT FROM 'synced' OR l.synced_version IS DISTINCT FROM a.version)
    RETURNING l.provider, i.status
""")

_ADD_LINKS = text("""
    INSERT INTO calendar_links (appointment_id, provider, user_id, state, next_sync_at)
    SELECT a.id, i.provider, a.user_id, 'pending', clock_timestamp() + make_interval(secs => :grace)
    FROM appointments a JOIN integrations i ON i.user_id = a.user_id
    WHERE a.id = :appointment_id AND i.provider IN ('google_calendar', 'microsoft_calendar')
    ON CONFLICT (appointment_id, provider) DO NOTHING
    RETURNING provider, (SELECT status FROM integrations WHERE user_id = calendar_links.user_id
                         AND provider = calendar_links.provider)
""")


@registry.handles("calendar-sync", registry.APPOINTMENT_CREATED, registry.APPOINTMENT_UPDATED,
                  registry.APPOINTMENT_CANCELLED, registry.APPOINTMENT_COMPLETED)
def request_push(event: Event) -> None:
    """Mark the appointment pending with each connected calendar; push it once committed."""
    appointment_id = appointment_id_of(event.payload)
    params = {"appointment_id": appointment_id, "grace": _grace()}
    rows = db.session.execute(_MARK_LINKS_CHANGED, params).all() + db.session.execute(_ADD_LINKS, params).all()
    for provider, status in rows:
        if status == CONNECTED:  # a lapsed connection keeps it pending until the user reconnects
            after_commit(enqueue_pushes, (provider, event.user_id, appointment_id))


_MARK_BACKFILL = text("""
    WITH wanted AS (
        SELECT id, user_id FROM appointments a
        WHERE a.user_id = :user_id AND a.status = 'scheduled' AND a.scheduled_at >= clock_timestamp()
          AND (:force OR a.scheduled_at < clock_timestamp() + make_interval(days => :days))
    ), added AS (
        INSERT INTO calendar_links (appointment_id, provider, user_id, state, next_sync_at)
        SELECT id, :provider, user_id, 'pending', clock_timestamp() + make_interval(secs => :grace) FROM wanted
        ON CONFLICT (appointment_id, provider) DO UPDATE SET
            state = 'pending', error = NULL, attempts = 0, next_sync_at = EXCLUDED.next_sync_at,
            synced_version = CASE WHEN :force THEN NULL ELSE calendar_links.synced_version END
        RETURNING appointment_id
    ), again AS (
        UPDATE calendar_links SET error = NULL, attempts = 0,
            next_sync_at = clock_timestamp() + make_interval(secs => :grace)
        WHERE user_id = :user_id AND provider = :provider AND state IN ('pending', 'failed')
          AND appointment_id NOT IN (SELECT id FROM wanted)
        RETURNING appointment_id
    )
    SELECT appointment_id FROM added UNION ALL SELECT appointment_id FROM again
""")


def request_backfill(provider: str, user_id: uuid.UUID, *, every_upcoming: bool = False) -> int:
    """On (re)connect: the next days' scheduled appointments, and whatever was left pending, become
    pending; once committed, the backfill job pushes them in batches. `every_upcoming` (an
    operator's resync): every future appointment, however far ahead."""
    config = current_app.config
    count = len(db.session.scalars(_MARK_BACKFILL, {
        "user_id": user_id, "provider": provider, "days": config["GOOGLE_BACKFILL_DAYS"], "grace": _grace(),
        "force": every_upcoming}).all())
    after_commit(enqueue_backfill, (provider, user_id))
    return count


def enqueue_backfill(items: list[tuple[str, uuid.UUID]]) -> None:
    try:
        for provider, user_id in dict.fromkeys(items):
            enqueue(adapter_for(provider).backfill_job, str(user_id), queue=CALENDAR,
                    meta={"user_id": str(user_id)}, result_ttl=0, failure_ttl=7 * 86400)
    except Exception:  # the links say pending: the sweeper pushes them once they are due
        log.warning("could not enqueue the calendar backfill; the sweeper will", exc_info=True)


def pending_of_user(provider: str, user_id: uuid.UUID) -> list[tuple[str, uuid.UUID, uuid.UUID]]:
    ids = db.session.scalars(select(CalendarLink.appointment_id).join(
        Appointment, Appointment.id == CalendarLink.appointment_id).where(
        CalendarLink.user_id == user_id, CalendarLink.provider == provider,
        CalendarLink.state.in_((PENDING, FAILED)), CalendarLink.next_sync_at.is_not(None))
        .order_by(Appointment.scheduled_at))
    return [(provider, user_id, appointment_id) for appointment_id in ids]


def connected_integration(provider: str, user_id: uuid.UUID) -> Integration | None:
    return db.session.scalars(select(Integration).where(
        Integration.user_id == user_id, Integration.provider == provider,
        Integration.status == CONNECTED)).one_or_none()


def store_time_zone(integration_id: uuid.UUID, zone_name: str) -> None:
    db.session.execute(update(Integration).where(Integration.id == integration_id)
                       .values(calendar_time_zone=zone_name))


def stop_syncing(provider: str, user_id: uuid.UUID) -> None:
    """Disconnected: nothing of this user is pushed to that calendar any more."""
    db.session.execute(update(CalendarLink).where(
        CalendarLink.user_id == user_id, CalendarLink.provider == provider, CalendarLink.state != "off")
        .values(state="off", next_sync_at=None, error=None))


def enqueue_pushes(items: list[tuple[str, uuid.UUID, uuid.UUID]]) -> None:
    """After commit: one job per provider, user and batch; a failure is repaired by the sweeper."""
    by_user: dict[tuple[str, uuid.UUID], list[str]] = {}
    for provider, user_id, appointment_id in items:
        by_user.setdefault((provider, user_id), []).append(str(appointment_id))
    try:
        connection = redis_connection()
        for (provider, user_id), ids in by_user.items():
            unique = list(dict.fromkeys(ids))
            for start in range(0, len(unique), BATCH_SIZE):
                enqueue(adapter_for(provider).sync_job, unique[start:start + BATCH_SIZE], queue=CALENDAR,
                        connection=connection, meta={"user_id": str(user_id)}, result_ttl=0,
                        failure_ttl=7 * 86400)
    except Exception:  # the links say pending: the sweeper pushes them once they are due
        log.warning("could not enqueue calendar pushes; the sweeper will", exc_info=True)


_CLAIM_DUE = text("""
    UPDATE calendar_links l SET next_sync_at = clock_timestamp() + make_interval(secs => :grace)
    WHERE (l.appointment_id, l.provider) IN (
        SELECT l2.appointment_id, l2.provider FROM calendar_links l2
        JOIN integrations i ON i.user_id = l2.user_id AND i.provider = l2.provider AND i.status = 'connected'
        WHERE l2.next_sync_at <= clock_timestamp() AND l2.state IN ('pending', 'failed')
        ORDER BY l2.next_sync_at
        LIMIT :limit
        FOR UPDATE OF l2 SKIP LOCKED
    )
    RETURNING l.provider, l.user_id, l.appointment_id
""")


def claim_due(limit: int = 1000) -> list[tuple[str, uuid.UUID, uuid.UUID]]:
    """Pushes that are due and not done (lost job, flushed Redis, dead worker), claimed for one grace
    period so the next sweep does not enqueue them again; the caller commits, then enqueues."""
    rows = db.session.execute(_CLAIM_DUE, {"grace": _grace(), "limit": limit}).all()
    return [(row.provider, row.user_id, row.appointment_id) for row in rows]


# -- one push ------------------------------------------------------------------------------------

def plan_push(provider: str, appointment_id: uuid.UUID) -> Push | None:
    """The push this appointment needs now with that calendar, or None (gone, in sync already, no
    healthy connection)."""
    link = db.session.get(CalendarLink, (appointment_id, provider), populate_existing=True)
    if link is None or link.state not in (PENDING, FAILED):
        return None
    appointment = db.session.get(Appointment, appointment_id, populate_existing=True)
    integration = connected_integration(provider, link.user_id)
    if appointment is None or integration is None:
        return None
    if link.synced_version == appointment.version and link.state == SYNCED:
        return None
    customer = appointment.customer
    return Push(
        appointment_id=appointment.id, integration_id=integration.id, provider=provider,
        calendar_id=integration.calendar_id, time_zone=integration.calendar_time_zone,
        version=appointment.version, delete=appointment.status == CANCELLED, event_id=link.event_id,
        attempts=link.attempts, ours=appointment.source == SOURCE_CALLNFY, user_id=appointment.user_id,
        remote_time=(link.remote_start_at, link.remote_duration),
        fields={"customer_name": customer.name, "customer_phone": customer.phone, "customer_email": customer.email,
                "notes": appointment.notes, "scheduled_at": appointment.scheduled_at,
                "duration": appointment.duration})


# -- recording outcomes --------------------------------------------------------------------------

# A version that moved while the push ran (a Callnfy edit, or a calendar change applied by two-way
# sync) goes back to pending at once, due now: the calendar holds what this push wrote, no longer current.
_RECORD_SUCCESS = text("""
    UPDATE calendar_links l SET
        event_id = coalesce(:event_id, l.event_id),
        event_left = :left,
        -- what the calendar holds: the event written, nothing after a delete, unchanged when nothing was sent
        etag = CASE WHEN :untouched THEN l.etag ELSE :etag END,
        remote_start_at = CASE WHEN :untouched THEN l.remote_start_at ELSE :start_at END,
        remote_duration = CASE WHEN :untouched THEN l.remote_duration ELSE :duration END,
        remote_updated_at = CASE WHEN :untouched THEN l.remote_updated_at
                                 ELSE CAST(:updated_at AS timestamptz) END,
        synced_version = :version, synced_at = clock_timestamp(), error = NULL, attempts = 0,
        state = CASE WHEN a.version = :version THEN 'synced' ELSE 'pending' END,
        next_sync_at = CASE WHEN a.version = :version THEN NULL
                            ELSE least(l.next_sync_at, clock_timestamp()) END
    FROM appointments a
    WHERE l.appointment_id = :appointment_id AND l.provider = :provider AND a.id = l.appointment_id
    RETURNING a.version <> :version AS moved
""")


def record_success(push: Push, sent: Sent) -> bool:
    """Record what the calendar now holds; True when the appointment changed meanwhile and needs
    another push."""
    moved = db.session.scalar(_RECORD_SUCCESS, {
        "appointment_id": push.appointment_id, "provider": push.provider, "version": push.version,
        "event_id": sent.event_id, "etag": sent.etag, "left": sent.left_in_calendar or None,
        "updated_at": sent.updated_at,
        "untouched": not push.ours and not sent.written,
        "start_at": push.fields["scheduled_at"] if sent.written else None,
        "duration": push.fields["duration"] if sent.written else None})
    values: dict[str, Any] = {"last_sync_at": func.clock_timestamp()}
    if sent.time_zone:
        values["calendar_time_zone"] = sent.time_zone
    db.session.execute(update(Integration).where(Integration.id == push.integration_id).values(**values))
    return bool(moved)


_RECORD_FAILURE = text("""
    UPDATE calendar_links l SET state = 'failed', error = :error, attempts = l.attempts + 1,
        next_sync_at = CASE WHEN CAST(:delay AS double precision) IS NULL THEN NULL
                            ELSE clock_timestamp() + make_interval(secs => CAST(:delay AS double precision)) END
    FROM appointments a
    WHERE l.appointment_id = :appointment_id AND l.provider = :provider AND a.id = l.appointment_id
      AND a.version = :version
""")  # a newer version is already pending with its own job: leave it be


def backoff_seconds(attempt: int, retry_after: float | None = None) -> float:
    """base × 2^(attempt-1) with ±20 % jitter, capped; the provider's Retry-After wins when longer."""
    config = current_app.config
    delay = min(config["GOOGLE_RETRY_BASE_SECONDS"] * 2 ** max(attempt - 1, 0), config["GOOGLE_RETRY_MAX_SECONDS"])
    delay *= random.uniform(0.8, 1.2)
    return max(delay, min(retry_after or 0.0, config["GOOGLE_RETRY_MAX_SECONDS"]))


def record_retry(adapter: Adapter, push: Push, error: Exception) -> float | None:
    """A retryable failure: tried again after a backoff (returned), or failed for good once the
    attempts are used up (None)."""
    attempt = push.attempts + 1
    _log_failure(push, error)
    if attempt >= MAX_ATTEMPTS:
        _record_failure(push, f"{adapter.describe(error)}; gave up after {attempt} attempts", None)
        return None
    delay = backoff_seconds(attempt, adapter.retry_after(error))
    # The sweeper steps in one grace period after the retry's own job was due.
    _record_failure(push, f"{adapter.describe(error)}; will retry", delay + _grace())
    return delay


def record_rejected(adapter: Adapter, push: Push, error: Exception) -> None:
    """The provider refused this request as wrong: recorded on the link, not retried until it changes."""
    _log_failure(push, error)
    _record_failure(push, adapter.describe(error), None)


def _log_failure(push: Push, error: Exception) -> None:
    """The detail the user's message leaves out (never a token: none is in these exceptions)."""
    log.warning("calendar push failed", extra={"appointment_id": str(push.appointment_id), "provider": push.provider,
                                               "error": type(error).__name__, "detail": str(error)[:500]})


def record_reconnect_needed(adapter: Adapter, push: Push) -> None:
    """invalid_grant: the push waits, pending, for the user to reconnect (which re-drives it)."""
    db.session.execute(text("""
        UPDATE calendar_links l SET state = 'pending', error = :error, next_sync_at = NULL
        FROM appointments a
        WHERE l.appointment_id = :appointment_id AND l.provider = :provider AND a.id = l.appointment_id
          AND a.version = :version"""),
        {"appointment_id": push.appointment_id, "provider": push.provider, "version": push.version,
         "error": adapter.reconnect_message})


def record_quota_wait(push: Push, seconds: float) -> None:
    db.session.execute(text("""
        UPDATE calendar_links SET next_sync_at = clock_timestamp() + make_interval(secs => :delay)
        WHERE appointment_id = :appointment_id AND provider = :provider AND state IN ('pending', 'failed')"""),
        {"appointment_id": push.appointment_id, "provider": push.provider, "delay": seconds + _grace()})


def _record_failure(push: Push, error: str, delay: float | None) -> None:
    """`failed`, retried after `delay` seconds by the sweeper's clock, or never (None)."""
    db.session.execute(_RECORD_FAILURE, {"appointment_id": push.appointment_id, "provider": push.provider,
                                         "version": push.version, "error": error[:ERROR_MAX], "delay": delay})


@dataclass(frozen=True)
class FailedPush:
    appointment_id: uuid.UUID
    scheduled_at: datetime
    status: str  # the appointment's
    state: str  # the link's
    error: str | None
    attempts: int
    next_sync_at: datetime | None


def failed_pushes(provider: str, user_id: uuid.UUID, *, offset: int, limit: int) -> tuple[list[FailedPush], int]:
    """The user's appointments whose push to that calendar failed for good, or failed and waits for its
    retry (newest first)."""
    conditions = [CalendarLink.user_id == user_id, CalendarLink.provider == provider,
                  (CalendarLink.state == FAILED) | CalendarLink.error.is_not(None)]
    total = db.session.scalar(select(func.count()).select_from(CalendarLink).where(*conditions))
    rows = db.session.execute(
        select(Appointment.id, Appointment.scheduled_at, Appointment.status, CalendarLink.state, CalendarLink.error,
               CalendarLink.attempts, CalendarLink.next_sync_at)
        .join(CalendarLink, CalendarLink.appointment_id == Appointment.id).where(*conditions)
        .order_by(Appointment.updated_at.desc(), Appointment.id.desc()).offset(offset).limit(limit)).all()
    return [FailedPush(*row) for row in rows], total or 0
