"""One-way sync: the user's Google calendar converges to each appointment's *current* state.

* An outbox handler marks a changed appointment `pending` (in the dispatch transaction) and, after
  commit, enqueues `jobs.google.sync_appointments`; connecting marks the next 90 days' scheduled
  appointments the same way (the backfill).
* A push reads the appointment as it is now, not as the event described it, so pushes are
  idempotent and order-proof: scheduled/completed → upsert the event under a deterministic id
  (insert; 409 → update), cancelled → delete (404/410 = done). One write call per change when the
  token is fresh; the job serialises pushes of one appointment with a Redis lock (two-way sync
  takes the same lock before it applies a Google change to the appointment).
* An event Callnfy did not create (an appointment imported from the owner's calendar) is never
  rewritten or deleted: a change patches only its start and end, and a cancellation leaves it in
  Google (`googleSync.leftInGoogle`).
* Outcomes land on the appointment (`googleSync`): synced, retried with backoff (401 → one
  refresh; 403 rate limits, 429, 5xx, network), failed for good (other 4xx), or waiting for the
  user to reconnect (`invalid_grant`).
* The sweeper re-drives pushes that are due and were lost (Redis flushed, worker killed).

These functions only flush: the job (`jobs/google.py`) and dispatch own the transactions.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import func, select, text, update

from ..appointments.models import CANCELLED, SOURCE_CALLNFY, SYNC_FAILED, SYNC_PENDING, SYNC_SYNCED, Appointment
from ..appointments.payloads import appointment_id_of
from ..events import registry
from ..events.models import Event
from ..extensions import db
from ..integrations.models import CONNECTED, GOOGLE_CALENDAR, Integration
from ..queues import CALENDAR, enqueue, redis_connection
from ..transactions import after_commit
from . import calendar_api, quota, sync_errors, tokens
from .event_body import DEFAULT_TIME_ZONE, build_event, event_id_for

log = logging.getLogger(__name__)

SYNC_JOB = "jobs.google.sync_appointments"
BACKFILL_JOB = "jobs.google.backfill_calendar"
BATCH_SIZE = 25  # appointments per job: a backfill is many small jobs, so other work interleaves
MAX_ATTEMPTS = 12  # retryable failures; with the backoff cap that is many hours of trying
ERROR_MAX = 500
RECONNECT_NEEDED = "Google Calendar needs to be reconnected"


class QuotaWait(Exception):
    """Our own per-user quota is used up for now; try again after `seconds`."""

    def __init__(self, seconds: float):
        super().__init__(f"quota: wait {seconds:.2f}s")
        self.seconds = seconds


# -- requesting pushes ---------------------------------------------------------------------------

_MARK_CHANGED = text("""
    UPDATE appointments a
    SET google_sync_state = 'pending', google_sync_error = NULL, google_sync_attempts = 0,
        google_next_sync_at = clock_timestamp() + make_interval(secs => :grace)
    FROM integrations i
    WHERE a.id = :appointment_id AND i.user_id = a.user_id AND i.provider = 'google_calendar'
      -- a change that came from Google (two-way sync) is already synced at its version: not pushed back
      AND (a.google_sync_state IS DISTINCT FROM 'synced' OR a.google_synced_version IS DISTINCT FROM a.version)
    RETURNING i.status
""")


@registry.handles("google-calendar-sync", registry.APPOINTMENT_CREATED, registry.APPOINTMENT_UPDATED,
                  registry.APPOINTMENT_CANCELLED, registry.APPOINTMENT_COMPLETED)
def request_push(event: Event) -> None:
    """Mark the appointment pending for a user with a Google connection; push it once committed."""
    appointment_id = appointment_id_of(event.payload)
    status = db.session.scalar(_MARK_CHANGED, {"appointment_id": appointment_id,
                                               "grace": current_app.config["GOOGLE_SYNC_GRACE_SECONDS"]})
    if status == CONNECTED:  # a lapsed connection keeps it pending until the user reconnects
        after_commit(enqueue_pushes, (event.user_id, appointment_id))


_MARK_BACKFILL = text("""
    UPDATE appointments
    SET google_sync_state = 'pending', google_sync_error = NULL, google_sync_attempts = 0,
        google_next_sync_at = clock_timestamp() + make_interval(secs => :grace),
        google_synced_version = CASE WHEN :force THEN NULL ELSE google_synced_version END
    WHERE user_id = :user_id AND (
        (status = 'scheduled' AND scheduled_at >= clock_timestamp()
         AND (:force OR scheduled_at < clock_timestamp() + make_interval(days => :days)))
        OR google_sync_state IN ('pending', 'failed'))
    RETURNING id
""")


def request_backfill(user_id: uuid.UUID, *, every_upcoming: bool = False) -> int:
    """On (re)connect: the next days' scheduled appointments, and whatever was left pending, become
    pending; once committed, the backfill job learns the calendar's zone and pushes them in batches.
    `every_upcoming` (an operator's resync): every future appointment, however far ahead."""
    config = current_app.config
    count = len(db.session.scalars(_MARK_BACKFILL, {"user_id": user_id, "days": config["GOOGLE_BACKFILL_DAYS"],
                                                    "grace": config["GOOGLE_SYNC_GRACE_SECONDS"],
                                                    "force": every_upcoming}).all())
    after_commit(enqueue_backfill, user_id)
    return count


def enqueue_backfill(user_ids: list[uuid.UUID]) -> None:
    try:
        for user_id in dict.fromkeys(user_ids):
            enqueue(BACKFILL_JOB, str(user_id), queue=CALENDAR, meta={"user_id": str(user_id)}, result_ttl=0,
                    failure_ttl=7 * 86400)
    except Exception:  # the appointments say pending: the sweeper pushes them once they are due
        log.warning("could not enqueue the calendar backfill; the sweeper will", exc_info=True)


_PENDING_OF_USER = text("""
    SELECT id FROM appointments
    WHERE user_id = :user_id AND google_sync_state IN ('pending', 'failed') AND google_next_sync_at IS NOT NULL
    ORDER BY scheduled_at
""")


def pending_of_user(user_id: uuid.UUID) -> list[tuple[uuid.UUID, uuid.UUID]]:
    return [(user_id, appointment_id) for appointment_id in db.session.scalars(_PENDING_OF_USER,
                                                                               {"user_id": user_id})]


def connected_integration(user_id: uuid.UUID) -> Integration | None:
    return db.session.scalars(select(Integration).where(
        Integration.user_id == user_id, Integration.provider == GOOGLE_CALENDAR,
        Integration.status == CONNECTED)).one_or_none()


def call(integration_id: uuid.UUID, request: Callable[[str], Any]) -> Any:
    """`request(access_token)` on our per-user quota (a slot per call), refreshing the token once on a
    401; raises what a push raises (QuotaWait included)."""
    token = tokens.access_token(integration_id)
    _take_slot(integration_id)
    try:
        return request(token)
    except calendar_api.TokenRejected:
        _take_slot(integration_id)
        return request(tokens.access_token(integration_id, rejected=token))


def fetch_time_zone(integration_id: uuid.UUID, calendar_id: str) -> str:
    """The calendar's own zone (one events.list, on our quota); raises what a push raises."""
    return call(integration_id, lambda token: calendar_api.calendar_time_zone(token, calendar_id)) \
        or DEFAULT_TIME_ZONE


def store_time_zone(integration_id: uuid.UUID, zone_name: str) -> None:
    db.session.execute(update(Integration).where(Integration.id == integration_id)
                       .values(calendar_time_zone=zone_name))


_MARK_OFF = text("""
    UPDATE appointments SET google_sync_state = 'off', google_next_sync_at = NULL, google_sync_error = NULL
    WHERE user_id = :user_id AND google_sync_state IS NOT NULL AND google_sync_state <> 'off'
""")


def stop_syncing(user_id: uuid.UUID) -> None:
    """Disconnected: nothing of this user is pushed any more."""
    db.session.execute(_MARK_OFF, {"user_id": user_id})


def enqueue_pushes(items: list[tuple[uuid.UUID, uuid.UUID]]) -> None:
    """After commit: one job per user and batch; a failure is repaired by the sweeper."""
    by_user: dict[uuid.UUID, list[str]] = {}
    for user_id, appointment_id in items:
        by_user.setdefault(user_id, []).append(str(appointment_id))
    try:
        connection = redis_connection()
        for user_id, ids in by_user.items():
            unique = list(dict.fromkeys(ids))
            for start in range(0, len(unique), BATCH_SIZE):
                enqueue(SYNC_JOB, unique[start:start + BATCH_SIZE], queue=CALENDAR, connection=connection,
                        meta={"user_id": str(user_id)}, result_ttl=0, failure_ttl=7 * 86400)
    except Exception:  # the rows say pending: the sweeper pushes them once they are due
        log.warning("could not enqueue calendar pushes; the sweeper will", exc_info=True)


_CLAIM_DUE = text("""
    UPDATE appointments a SET google_next_sync_at = clock_timestamp() + make_interval(secs => :grace)
    WHERE a.id IN (
        SELECT a2.id FROM appointments a2
        JOIN integrations i ON i.user_id = a2.user_id AND i.provider = 'google_calendar' AND i.status = 'connected'
        WHERE a2.google_next_sync_at <= clock_timestamp() AND a2.google_sync_state IN ('pending', 'failed')
        ORDER BY a2.google_next_sync_at
        LIMIT :limit
        FOR UPDATE OF a2 SKIP LOCKED
    )
    RETURNING a.user_id, a.id
""")


def claim_due(limit: int = 1000) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """Pushes that are due and not done (lost job, flushed Redis, dead worker), claimed for one grace
    period so the next sweep does not enqueue them again; the caller commits, then enqueues."""
    rows = db.session.execute(_CLAIM_DUE, {"grace": current_app.config["GOOGLE_SYNC_GRACE_SECONDS"],
                                           "limit": limit}).all()
    return [(row.user_id, row.id) for row in rows]


# -- one push ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Push:
    """What one push needs, read before any call to Google (no transaction stays open across it)."""

    appointment_id: uuid.UUID
    integration_id: uuid.UUID
    calendar_id: str
    time_zone: str | None
    version: int
    delete: bool
    event_id: str
    linked: bool  # an event id is stored: update it (insert only when Google no longer has it)
    attempts: int  # retryable failures so far
    fields: dict[str, Any]
    ours: bool = True  # Callnfy created the event; False: the owner's own, imported (start/end only)
    user_id: uuid.UUID | None = None
    google_time: tuple[Any, Any] = (None, None)  # (start, duration) Google holds, as of our last write or read


@dataclass(frozen=True)
class Sent:
    event: dict[str, Any] | None  # None after a delete
    time_zone: str | None  # learnt from Google during this push, to store
    left_in_google: bool = False  # a cancelled appointment whose event is the owner's: nothing was deleted


def plan_push(appointment_id: uuid.UUID) -> Push | None:
    """The push this appointment needs now, or None (gone, in sync already, no healthy connection)."""
    appointment = db.session.get(Appointment, appointment_id, populate_existing=True)
    if appointment is None or appointment.google_sync_state not in (SYNC_PENDING, SYNC_FAILED):
        return None
    integration = db.session.scalars(select(Integration).where(
        Integration.user_id == appointment.user_id, Integration.provider == GOOGLE_CALENDAR)).one_or_none()
    if integration is None or integration.status != CONNECTED:
        return None
    if appointment.google_synced_version == appointment.version and appointment.google_sync_state == SYNC_SYNCED:
        return None
    customer = appointment.customer
    return Push(
        appointment_id=appointment.id, integration_id=integration.id,
        calendar_id=integration.calendar_id or "primary", time_zone=integration.calendar_time_zone,
        version=appointment.version, delete=appointment.status == CANCELLED,
        event_id=appointment.google_event_id or event_id_for(appointment.id),
        linked=appointment.google_event_id is not None, attempts=appointment.google_sync_attempts,
        ours=appointment.source == SOURCE_CALLNFY, user_id=appointment.user_id,
        google_time=(appointment.google_start_at, appointment.google_duration),
        fields={"customer_name": customer.name, "customer_phone": customer.phone, "customer_email": customer.email,
                "notes": appointment.notes, "scheduled_at": appointment.scheduled_at,
                "duration": appointment.duration})


def send_push(push: Push) -> Sent:
    """Make Google match the plan; a 401 refreshes the token once. Raises calendar_api errors,
    tokens.ReauthorizationRequired, oauth.GoogleUnavailable or QuotaWait."""
    token = tokens.access_token(push.integration_id)
    try:
        return _write(push, token)
    except calendar_api.TokenRejected:
        return _write(push, tokens.access_token(push.integration_id, rejected=token))


def _take_slot(integration_id: uuid.UUID) -> None:
    if not quota.wait_for_slot(integration_id):
        raise QuotaWait(quota.take_slot(integration_id) or 1.0)


def _write(push: Push, token: str) -> Sent:
    if not push.ours:
        return _write_foreign(push, token)
    learnt_zone = None
    if push.delete:
        _take_slot(push.integration_id)
        calendar_api.delete_event(token, push.calendar_id, push.event_id)
        return Sent(None, None)
    zone_name = push.time_zone
    if zone_name is None:  # once per connection: the calendar's own zone
        _take_slot(push.integration_id)
        zone_name = learnt_zone = calendar_api.calendar_time_zone(token, push.calendar_id) or DEFAULT_TIME_ZONE
    body = build_event(appointment_id=push.appointment_id, version=push.version, time_zone=zone_name, **push.fields)
    if push.linked:
        try:
            _take_slot(push.integration_id)
            return Sent(calendar_api.update_event(token, push.calendar_id, push.event_id, body), learnt_zone)
        except calendar_api.Rejected as exc:
            if exc.status not in (404, 410):
                raise  # 404/410: Google no longer has it; write it anew below
    target = event_id_for(push.appointment_id)
    try:
        _take_slot(push.integration_id)
        return Sent(calendar_api.insert_event(token, push.calendar_id, {"id": target, **body}), learnt_zone)
    except calendar_api.Rejected as exc:
        if exc.status != 409:
            raise
    _take_slot(push.integration_id)  # 409 duplicate: an earlier or concurrent push inserted it; make it current
    return Sent(calendar_api.update_event(token, push.calendar_id, target, body), learnt_zone)


class EventGone(calendar_api.Rejected):
    """The owner's event no longer exists in Google: Callnfy does not write a new one in its place."""


def _write_foreign(push: Push, token: str) -> Sent:
    """The owner's own event (imported by two-way sync): Callnfy owns only its time. A change patches
    start and end (their `dateTime`: the event keeps its own time zone, summary, description, guests,
    conference and reminders); a cancellation leaves the event where it is. The event's guests would
    otherwise lose a meeting the owner organised, with nobody told (`sendUpdates=none`)."""
    if push.delete:
        return Sent(None, None, left_in_google=True)
    if push.google_time == (push.fields["scheduled_at"], push.fields["duration"]):
        return Sent(None, None)  # notes, completion: nothing of the event's changes
    start = push.fields["scheduled_at"].astimezone(UTC)
    end = start + timedelta(minutes=push.fields["duration"])
    body = {"start": {"dateTime": start.isoformat(timespec="seconds")},
            "end": {"dateTime": end.isoformat(timespec="seconds")}}
    _take_slot(push.integration_id)
    try:
        return Sent(calendar_api.patch_event(token, push.calendar_id, push.event_id, body), None)
    except calendar_api.Rejected as exc:
        if exc.status in (404, 410):
            raise EventGone(exc.status, "eventGone", "the owner's event is no longer in Google Calendar") from None
        raise


# -- recording outcomes --------------------------------------------------------------------------

# A version that moved while the push ran (a Callnfy edit, or a Google change applied by two-way sync)
# goes back to pending at once, due now: Google holds what this push wrote, which is no longer current.
_RECORD_SUCCESS = text("""
    UPDATE appointments SET
        google_event_id = coalesce(:event_id, google_event_id), google_event_left = :left,
        -- what Google holds: the event written, nothing after a delete, unchanged when nothing was sent
        google_etag = CASE WHEN :untouched THEN google_etag ELSE :etag END,
        google_start_at = CASE WHEN :untouched THEN google_start_at ELSE :start_at END,
        google_duration = CASE WHEN :untouched THEN google_duration ELSE :duration END,
        google_updated_at = CASE WHEN :untouched THEN google_updated_at ELSE CAST(:updated_at AS timestamptz) END,
        google_synced_version = :version, google_synced_at = clock_timestamp(),
        google_sync_error = NULL, google_sync_attempts = 0,
        google_sync_state = CASE WHEN version = :version THEN 'synced' ELSE 'pending' END,
        google_next_sync_at = CASE WHEN version = :version THEN NULL
                                   ELSE least(google_next_sync_at, clock_timestamp()) END
    WHERE id = :appointment_id
    RETURNING version <> :version AS moved
""")

_RECORD_FAILURE = text("""
    UPDATE appointments SET google_sync_state = 'failed', google_sync_error = :error,
        google_sync_attempts = google_sync_attempts + 1,
        google_next_sync_at = CASE WHEN CAST(:delay AS double precision) IS NULL THEN NULL
                                   ELSE clock_timestamp() + make_interval(secs => CAST(:delay AS double precision)) END
    WHERE id = :appointment_id AND version = :version
""")  # a newer version is already pending with its own job: leave it be


def record_success(push: Push, sent: Sent) -> bool:
    """Record what Google now holds; True when the appointment changed meanwhile and needs another push."""
    event = sent.event or {}
    written = sent.event is not None
    moved = db.session.scalar(_RECORD_SUCCESS, {
        "appointment_id": push.appointment_id, "version": push.version, "event_id": event.get("id"),
        "etag": event.get("etag"), "left": sent.left_in_google or None, "updated_at": event.get("updated"),
        "untouched": not push.ours and not written,
        "start_at": push.fields["scheduled_at"] if written else None,
        "duration": push.fields["duration"] if written else None})
    values: dict[str, Any] = {"last_sync_at": func.clock_timestamp()}
    if sent.time_zone:
        values["calendar_time_zone"] = sent.time_zone
    db.session.execute(update(Integration).where(Integration.id == push.integration_id).values(**values))
    return bool(moved)


def backoff_seconds(attempt: int, retry_after: float | None = None) -> float:
    """base × 2^(attempt-1) with ±20 % jitter, capped; Google's Retry-After wins when longer."""
    config = current_app.config
    delay = min(config["GOOGLE_RETRY_BASE_SECONDS"] * 2 ** max(attempt - 1, 0), config["GOOGLE_RETRY_MAX_SECONDS"])
    delay *= random.uniform(0.8, 1.2)
    return max(delay, min(retry_after or 0.0, config["GOOGLE_RETRY_MAX_SECONDS"]))


def record_retry(push: Push, error: Exception) -> float | None:
    """A retryable failure: tried again after a backoff (returned), or failed for good once the
    attempts are used up (None)."""
    attempt = push.attempts + 1
    _log_failure(push, error)
    if attempt >= MAX_ATTEMPTS:
        _record_failure(push, sync_errors.gave_up(error, attempt), None)
        return None
    delay = backoff_seconds(attempt, getattr(error, "retry_after", None))
    # The sweeper steps in one grace period after the retry's own job was due.
    _record_failure(push, sync_errors.will_retry(error), delay + current_app.config["GOOGLE_SYNC_GRACE_SECONDS"])
    return delay


def record_rejected(push: Push, error: calendar_api.CalendarError) -> None:
    """Google refused this request as wrong: recorded on the appointment, not retried until it changes."""
    _log_failure(push, error)
    _record_failure(push, sync_errors.describe(error), None)


def _log_failure(push: Push, error: Exception) -> None:
    """The detail the user's message leaves out (never a token: none is in these exceptions)."""
    log.warning("calendar push failed", extra={"appointment_id": str(push.appointment_id),
                                               "error": type(error).__name__, "detail": str(error)[:500]})


def record_reconnect_needed(push: Push) -> None:
    """invalid_grant: the push waits, pending, for the user to reconnect (which re-drives it)."""
    db.session.execute(text("""
        UPDATE appointments SET google_sync_state = 'pending', google_sync_error = :error, google_next_sync_at = NULL
        WHERE id = :appointment_id AND version = :version"""),
        {"appointment_id": push.appointment_id, "version": push.version, "error": RECONNECT_NEEDED})


def record_quota_wait(push: Push, seconds: float) -> None:
    db.session.execute(text("""
        UPDATE appointments SET google_next_sync_at = clock_timestamp() + make_interval(secs => :delay)
        WHERE id = :appointment_id AND google_sync_state IN ('pending', 'failed')"""),
        {"appointment_id": push.appointment_id,
         "delay": seconds + current_app.config["GOOGLE_SYNC_GRACE_SECONDS"]})


def _record_failure(push: Push, error: str, delay: float | None) -> None:
    """`failed`, retried after `delay` seconds by the sweeper's clock, or never (None)."""
    db.session.execute(_RECORD_FAILURE, {"appointment_id": push.appointment_id, "version": push.version,
                                         "error": error[:ERROR_MAX], "delay": delay})


def failed_pushes(user_id: uuid.UUID, *, offset: int, limit: int) -> tuple[list[Appointment], int]:
    """The user's appointments whose push failed for good, or failed and waits for its retry (newest first)."""
    conditions = [Appointment.user_id == user_id,
                  (Appointment.google_sync_state == SYNC_FAILED) | Appointment.google_sync_error.is_not(None)]
    total = db.session.scalar(select(func.count()).select_from(Appointment).where(*conditions))
    items = db.session.scalars(select(Appointment).where(*conditions)
                               .order_by(Appointment.updated_at.desc(), Appointment.id.desc())
                               .offset(offset).limit(limit)).all()
    return list(items), total or 0
