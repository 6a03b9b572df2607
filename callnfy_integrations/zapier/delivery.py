"""Signed, at-least-once webhook delivery to Zapier hook URLs: the statements of the engine.

* An outbox handler writes one delivery row per active subscription to the event, in the event's
  dispatch transaction, and wakes the drain job after commit.
* The drain (`drain.py`, run by the job `jobs.webhooks.send_webhooks`) owns the transactions. It claims only as many due
  deliveries as it has free senders, fairly across accounts and never more than
  WEBHOOK_ACCOUNT_CONCURRENCY in flight per account (counted in the database, so across every
  worker; more, up to WEBHOOK_ACCOUNT_CONCURRENCY_MAX, while its receiver answers fast: pace.py),
  commits the claim, starts each attempt at once, and records each outcome as soon as
  that attempt ends. An attempt has a hard total deadline (`sender.Sender`); a claim's lease is
  longer than that deadline, so a claim outlives its attempt only when its worker died.
* Outcomes: 2xx delivered; 410 the subscription is removed and its queue cancelled; anything else
  (3xx included: redirects are never followed) is retried on WEBHOOK_RETRY_SCHEDULE with ±20 %
  jitter, honouring Retry-After, until the schedule runs out and the delivery is dead. A lost
  attempt (its worker died) is recorded as such when its lease ends and counts like any other.
* A due delivery whose subscription or key is gone (or whose subscription was disabled) ends
  `cancelled` instead of being sent, whatever raced with its creation.
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Flask, current_app
from sqlalchemy import DateTime, Integer, String, Text, bindparam, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY, UUID

from ..crypto import secret_box
from ..doorbell import Doorbell
from ..errors import Conflict, NotFound
from ..events.models import Event
from ..events.registry import handles, keep_events_while
from ..extensions import db
from ..integrations.service import ZAPIER_API_KEY_FIELD
from ..queues import WEBHOOKS, redis_connection
from ..timestamps import utcnow
from ..transactions import after_commit
from .models import (
    CANCELLED,
    DEAD,
    DELIVERED,
    GONE,
    HOOK_GONE,
    PENDING,
    SUBSCRIPTION_DISABLED,
    WebhookDelivery,
    ZapierSubscription,
)
from .pace import Pace
from .sender import ERROR_MAX, Request, Result, Sender
from .service import ZAPIER_EVENTS, delivery_body
from .signing import delivery_headers

log = logging.getLogger(__name__)

LEASE_MARGIN_SECONDS = 30  # a claim's lease = the attempt's deadline + this (time to record it)
RETRY_AFTER_MAX_SECONDS = 6 * 3600
_CLAIM_LOCK = 0x63_6C_77_68  # pg_advisory_xact_lock key: claims are serialised, so per-account counts hold


def drain_job_timeout(config) -> int:
    """RQ's job_timeout for a drain job: its sending budget, plus one attempt, plus room to record."""
    return int(config["WEBHOOK_DRAIN_SECONDS"] + config["WEBHOOK_ATTEMPT_TIMEOUT"] + 2 * LEASE_MARGIN_SECONDS)


WEBHOOKS_BELL = Doorbell("webhooks", "jobs.webhooks.send_webhooks", WEBHOOKS,
                         job_timeout=lambda: drain_job_timeout(current_app.config))


# -- creating deliveries -------------------------------------------------------------------------

_CREATE = text("""
    INSERT INTO webhook_deliveries (id, user_id, event_id, subscription_id, hook_url)
    SELECT gen_random_uuid(), s.user_id, :event_id, s.id, s.hook_url
    FROM zapier_subscriptions s
    WHERE s.user_id = :user_id AND s.event = :event_type AND s.disabled_at IS NULL
    ON CONFLICT (event_id, subscription_id) DO NOTHING
    RETURNING id
""")


@handles("zapier-deliveries", *ZAPIER_EVENTS)
def create_deliveries(event: Event) -> None:
    """One pending delivery per active subscription to this event (idempotent), sent once committed."""
    created = db.session.scalars(_CREATE, {"event_id": event.id, "user_id": event.user_id,
                                           "event_type": event.type}).first()
    if created is not None:
        after_commit(ring, created)


# A delivery (pending, or kept for the delivery log) reads its event's payload and id.
keep_events_while("zapier-deliveries", "EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id)")


def ring(_delivery_ids: list | None = None) -> None:
    """Wake the drain job (it claims from the database, so which ids rang does not matter)."""
    try:
        WEBHOOKS_BELL.wake(redis_connection())
    except Exception:  # committed: the sweeper finds due deliveries without the doorbell
        log.warning("could not ring the webhook doorbell; the sweeper will", exc_info=True)


# -- claiming ------------------------------------------------------------------------------------


# A claim whose lease ended without an outcome lost its worker: that attempt is recorded as lost
# and counts; the next one follows the schedule from when the lost one started.
_EXPIRE_LOST = text("""
    WITH lost AS (
        UPDATE webhook_deliveries d
        SET claimed_until = NULL,
            status = CASE WHEN d.attempts > cardinality(:schedule) THEN 'dead' ELSE 'pending' END,
            next_attempt_at = CASE WHEN d.attempts > cardinality(:schedule) THEN d.next_attempt_at
                ELSE greatest(clock_timestamp(), d.claimed_until - make_interval(secs => :lease)
                              + make_interval(secs => (:schedule)[d.attempts])) END,
            last_status_code = NULL,
            last_error = 'attempt ' || d.attempts || ': no outcome (its worker stopped mid-attempt)'
        WHERE d.status = 'pending' AND d.claimed_until IS NOT NULL AND d.claimed_until <= clock_timestamp()
        RETURNING d.id, d.attempts, d.last_error
    )
    INSERT INTO webhook_attempts (delivery_id, attempt, status_code, duration_ms, error)
    SELECT id, attempts, NULL, 0, last_error FROM lost
""").bindparams(bindparam("schedule", type_=ARRAY(Integer)))

# Fair claiming: accounts already at their limit of attempts in flight are skipped (counted across
# every worker), then every remaining account's oldest due delivery first, then every account's
# second …, at most :slots (the free senders). An account's limit is :per_account, or the raised one
# this worker learnt (pace.py) while none of its attempts in flight has run past :fast seconds; its
# extra slots come after every account's base ones. The scan is bounded (:window rows, oldest due
# first, saturated accounts excluded before the limit), so a huge backlog of one account costs
# nothing and cannot hide another account's delivery. A due delivery that can no longer be sent
# (subscription deleted or disabled, key revoked) is cancelled instead.
_CLAIM = text("""
    WITH raised AS (
        SELECT * FROM unnest(CAST(:raised_users AS uuid[]), CAST(:raised_limits AS integer[])) AS r(user_id, cap)
    ), in_flight AS (
        SELECT user_id, count(*) AS n, min(claimed_until) - make_interval(secs => :lease) AS oldest
        FROM webhook_deliveries
        WHERE claimed_until IS NOT NULL AND status = 'pending' GROUP BY user_id
    ), limits AS (
        SELECT f.user_id, f.n,
               CASE WHEN f.oldest > clock_timestamp() - make_interval(secs => :fast)
                    THEN coalesce(r.cap, :per_account) ELSE :per_account END AS cap
        FROM in_flight f LEFT JOIN raised r USING (user_id)
    ), due AS (
        SELECT d.id, d.user_id, d.subscription_id, d.next_attempt_at
        FROM webhook_deliveries d
        WHERE d.status = 'pending' AND d.claimed_until IS NULL AND d.next_attempt_at <= clock_timestamp()
          AND d.user_id NOT IN (SELECT user_id FROM limits WHERE n >= cap)
        ORDER BY d.next_attempt_at
        LIMIT :window
    ), checked AS (
        SELECT due.*, (s.id IS NOT NULL AND s.disabled_at IS NULL AND i.id IS NOT NULL) AS sendable,
               CASE WHEN i.id IS NULL THEN 'key_revoked'
                    WHEN s.id IS NULL THEN 'subscription_deleted'
                    ELSE 'subscription_disabled' END AS reason
        FROM due
        LEFT JOIN zapier_subscriptions s ON s.id = due.subscription_id
        LEFT JOIN integrations i ON i.user_id = due.user_id AND i.provider = 'zapier'
                                 AND i.api_key_encrypted IS NOT NULL
    ), ranked AS (
        SELECT checked.id, checked.next_attempt_at,
               row_number() OVER (PARTITION BY checked.user_id ORDER BY checked.next_attempt_at, checked.id)
               + coalesce(l.n, 0) AS slot,
               coalesce(l.cap, r.cap, :per_account) AS cap
        FROM checked LEFT JOIN limits l USING (user_id) LEFT JOIN raised r USING (user_id)
        WHERE checked.sendable
    ), picked AS (
        SELECT id FROM ranked WHERE slot <= cap ORDER BY slot, next_attempt_at LIMIT :slots
    ), cancelled AS (
        UPDATE webhook_deliveries d SET status = 'cancelled', cancel_reason = checked.reason,
            last_error = CASE checked.reason WHEN 'key_revoked' THEN 'API key revoked'
                              WHEN 'subscription_deleted' THEN 'subscription deleted'
                              ELSE 'subscription disabled' END
        FROM checked WHERE d.id = checked.id AND NOT checked.sendable
        RETURNING d.id
    )
    UPDATE webhook_deliveries d
    SET attempts = d.attempts + 1,
        claimed_until = clock_timestamp() + make_interval(secs => :lease),
        next_attempt_at = clock_timestamp() + make_interval(secs => :lease)
    FROM picked, events e, integrations i
    WHERE d.id = picked.id AND e.id = d.event_id AND i.user_id = d.user_id AND i.provider = 'zapier'
    RETURNING d.id, d.user_id, d.subscription_id, d.attempts, d.hook_url,
              e.id AS event_id, e.type AS event_type, e.payload, e.created_at AS event_created_at,
              i.api_key_encrypted
""")


@dataclass(frozen=True)
class Claimed:
    delivery_id: uuid.UUID
    user_id: uuid.UUID
    subscription_id: uuid.UUID
    attempt: int
    request: Request


EXPIRE_EVERY_SECONDS = 1.0
_expired_at = float("-inf")


def lease_seconds(config) -> float:
    return config["WEBHOOK_ATTEMPT_TIMEOUT"] + LEASE_MARGIN_SECONDS


def claim(slots: int) -> list[Claimed]:
    """Take up to `slots` due deliveries, fairly across accounts; the caller commits, then sends
    each at once (the claim is the last check of the subscription and the key)."""
    config = current_app.config
    db.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CLAIM_LOCK})
    lease = lease_seconds(config)
    global _expired_at
    if time.monotonic() - _expired_at >= EXPIRE_EVERY_SECONDS:  # lost claims are rare: look once a second
        db.session.execute(_EXPIRE_LOST, {"schedule": config["WEBHOOK_RETRY_SCHEDULE"], "lease": lease})
        _expired_at = time.monotonic()
    if slots <= 0:
        return []
    per_account = config["WEBHOOK_ACCOUNT_CONCURRENCY"]
    raised = pace().raised()
    rows = db.session.execute(_CLAIM, {"slots": slots, "per_account": per_account, "lease": lease,
                                       "window": max(256, 4 * slots * per_account),
                                       "raised_users": list(raised), "raised_limits": list(raised.values()),
                                       "fast": config["WEBHOOK_FAST_ANSWER_SECONDS"]}).all()
    claimed = []
    for row in rows:
        body = delivery_body(row.event_id, row.event_type, row.event_created_at, row.payload)
        raw = json.dumps(body, separators=(",", ":")).encode()
        api_key = secret_box().decrypt(row.api_key_encrypted, user_id=row.user_id, field=ZAPIER_API_KEY_FIELD)
        headers = delivery_headers(api_key, body["id"], int(utcnow().timestamp()), raw)
        claimed.append(Claimed(row.id, row.user_id, row.subscription_id, row.attempts,
                               Request(row.hook_url, raw, headers)))
    return claimed


def pace(app: Flask | None = None) -> Pace:
    """The process's record of which accounts' receivers answer fast (one per app, built on first use)."""
    app = app or current_app._get_current_object()
    existing = app.extensions.get("callnfy_webhook_pace")
    if existing is None:
        config = app.config
        existing = app.extensions["callnfy_webhook_pace"] = Pace(
            base=config["WEBHOOK_ACCOUNT_CONCURRENCY"], fast_seconds=config["WEBHOOK_FAST_ANSWER_SECONDS"],
            # At most half a worker's senders: a fast receiver that stalls leaves the other half.
            maximum=min(config["WEBHOOK_ACCOUNT_CONCURRENCY_MAX"], config["WEBHOOK_CONCURRENCY"] // 2))
    return existing


def sender(app: Flask | None = None) -> Sender:
    """The process's sender pool (one per app, built on first use)."""
    app = app or current_app._get_current_object()
    existing = app.extensions.get("callnfy_webhook_sender")
    if existing is None:
        existing = app.extensions["callnfy_webhook_sender"] = Sender(
            concurrency=app.config["WEBHOOK_CONCURRENCY"], allow_private=app.config["WEBHOOK_ALLOW_PRIVATE_NETWORKS"],
            ca_bundle=app.config["WEBHOOK_CA_BUNDLE"], timeout=app.config["WEBHOOK_ATTEMPT_TIMEOUT"])
    return existing


# -- recording outcomes --------------------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    claimed: Claimed
    result: Result


def next_delay(attempt: int, schedule: list[int], retry_after: float | None) -> float | None:
    """Seconds until the next attempt after failed attempt number `attempt`; None when none is left."""
    if attempt > len(schedule):
        return None
    delay = schedule[attempt - 1] * random.uniform(0.8, 1.2)
    if retry_after is not None:  # the receiver's wish wins when it asks for longer, within reason
        delay = max(delay, min(retry_after, RETRY_AFTER_MAX_SECONDS))
    return delay


# One statement writes a batch: the attempts, then each delivery's new state — applied only to the
# attempt that holds the claim (a late outcome of an attempt whose lease had already ended stays in
# the attempt log but does not overrule the attempt that followed it), except a 2xx, which always
# wins: the receiver has the event — and a success clears its subscription's failing streak.
_RECORD = text("""
    WITH o AS (
        SELECT * FROM unnest(:ids, :attempts, :statuses, :next_attempts, :codes, :errors, :durations,
                             :attempt_errors)
               AS o(id, attempt, status, next_attempt_at, status_code, error, duration_ms, attempt_error)
    ), logged AS (
        INSERT INTO webhook_attempts (delivery_id, attempt, status_code, duration_ms, error)
        SELECT id, attempt, status_code, duration_ms, attempt_error FROM o
    ), updated AS (
        UPDATE webhook_deliveries d
        SET status = o.status, next_attempt_at = coalesce(o.next_attempt_at, d.next_attempt_at),
            claimed_until = NULL, last_status_code = o.status_code, last_error = o.error,
            delivered_at = CASE WHEN o.status = 'delivered' THEN clock_timestamp() ELSE d.delivered_at END
        FROM o
        WHERE d.id = o.id AND d.status = 'pending' AND (d.attempts = o.attempt OR o.status = 'delivered')
        RETURNING d.subscription_id, o.status
    )
    UPDATE zapier_subscriptions s SET failing_since = NULL
    FROM updated u
    WHERE s.id = u.subscription_id AND u.status = 'delivered' AND s.failing_since IS NOT NULL
""").bindparams(bindparam("ids", type_=ARRAY(UUID(as_uuid=True))), bindparam("attempts", type_=ARRAY(Integer)),
                bindparam("statuses", type_=ARRAY(String)),
                bindparam("next_attempts", type_=ARRAY(DateTime(timezone=True))),
                bindparam("codes", type_=ARRAY(Integer)), bindparam("errors", type_=ARRAY(Text)),
                bindparam("durations", type_=ARRAY(Integer)), bindparam("attempt_errors", type_=ARRAY(Text)))

_FAILING = text("""
    UPDATE zapier_subscriptions SET failing_since = coalesce(failing_since, clock_timestamp())
    WHERE id = ANY(:ids)
""").bindparams(bindparam("ids", type_=ARRAY(UUID(as_uuid=True))))

_DISABLE = text("""
    UPDATE zapier_subscriptions
    SET disabled_at = clock_timestamp(), disabled_reason = :reason
    WHERE id = ANY(:ids) AND disabled_at IS NULL
      AND failing_since <= clock_timestamp() - make_interval(secs => :after)
    RETURNING id
""").bindparams(bindparam("ids", type_=ARRAY(UUID(as_uuid=True))))


def record(outcomes: list[Outcome]) -> None:
    """Write these attempts and their deliveries' new state; the caller commits."""
    if not outcomes:
        return
    config = current_app.config
    schedule = config["WEBHOOK_RETRY_SCHEDULE"]
    now = utcnow()
    rows: dict[str, list] = {key: [] for key in ("ids", "attempts", "statuses", "next_attempts", "codes",
                                                 "errors", "durations", "attempt_errors")}
    gone, healthy, failing = [], [], []
    paced = pace()
    for outcome in outcomes:
        result, claimed = outcome.result, outcome.claimed
        paced.observe(claimed.user_id, delivered=result.delivered, seconds=result.duration_ms / 1000)
        status, next_attempt, error = PENDING, None, result.error
        if result.delivered:
            status, error = DELIVERED, None
            healthy.append(claimed.subscription_id)
        elif result.status_code == 410:
            status = GONE
            gone.append(claimed.subscription_id)
        else:
            failing.append(claimed.subscription_id)
            delay = next_delay(claimed.attempt, schedule, result.retry_after)
            if delay is None:
                status = DEAD
            else:
                next_attempt = now + timedelta(seconds=delay)
        attempt_error = result.error and result.error[:ERROR_MAX]
        for key, value in zip(rows, (claimed.delivery_id, claimed.attempt, status, next_attempt,
                                     result.status_code, error, result.duration_ms, attempt_error), strict=True):
            rows[key].append(value)
    db.session.execute(_RECORD, rows)
    failing = [s for s in failing if s not in set(healthy)]  # a success in the same batch: not failing
    if failing:
        db.session.execute(_FAILING, {"ids": failing})
        days = config["WEBHOOK_DISABLE_AFTER_DAYS"]
        disabled = list(db.session.scalars(_DISABLE, {
            "ids": failing, "after": days * 86400, "reason": f"every delivery failed for {days:g} days"}))
        if disabled:
            log.warning("webhook subscriptions disabled after failing", extra={
                "subscriptions": [str(s) for s in disabled], "days": days})
            _cancel_pending(disabled, SUBSCRIPTION_DISABLED,
                            f"subscription disabled: every delivery failed for {days:g} days")
    if gone:
        # The receiver said the hook is gone for good: stop everything queued for it.
        _cancel_pending(gone, HOOK_GONE, "hook answered 410 Gone")
        db.session.execute(delete(ZapierSubscription).where(ZapierSubscription.id.in_(gone)))


def _cancel_pending(subscription_ids: list[uuid.UUID], reason: str, message: str) -> None:
    db.session.execute(update(WebhookDelivery).where(WebhookDelivery.subscription_id.in_(subscription_ids),
                                                     WebhookDelivery.status == PENDING)
                       .values(status=CANCELLED, claimed_until=None, cancel_reason=reason, last_error=message))


# -- what is due ---------------------------------------------------------------------------------

_NEXT_DUE = text("SELECT min(next_attempt_at) FROM webhook_deliveries WHERE status = 'pending'")


def next_due_at() -> datetime | None:
    """When the next pending delivery (a retry, or a lease ending) is due; None when none is pending."""
    return db.session.scalar(_NEXT_DUE)


def due_now() -> bool:
    due = next_due_at()
    return due is not None and due <= utcnow()


# -- retention -----------------------------------------------------------------------------------

_PRUNE = text("""
    DELETE FROM webhook_deliveries WHERE id IN (
        SELECT id FROM webhook_deliveries
        WHERE status <> 'pending' AND created_at < :cutoff
        LIMIT :batch
    )
""")


def prune_finished(cutoff: datetime, batch: int) -> int:
    """Delete up to `batch` finished deliveries (and their attempts) created before `cutoff`."""
    return db.session.execute(_PRUNE, {"cutoff": cutoff, "batch": batch}).rowcount


# -- operators and the delivery log ----------------------------------------------------------------

def send_again(delivery_ids: list[uuid.UUID]) -> int:
    """Dead (or cancelled-by-disable) deliveries back to pending with a fresh schedule, due now; a
    disabled subscription among them is enabled again (retrying says the receiver is fixed). The
    caller commits, then rings."""
    if not delivery_ids:
        return 0
    subscriptions = [row for row in db.session.execute(
        update(WebhookDelivery).where(WebhookDelivery.id.in_(delivery_ids))
        .values(status=PENDING, attempts=0, next_attempt_at=text("clock_timestamp()"), claimed_until=None,
                cancel_reason=None,
                last_error=None, last_status_code=None)
        .returning(WebhookDelivery.subscription_id)).scalars() if row is not None]
    if subscriptions:
        db.session.execute(update(ZapierSubscription).where(ZapierSubscription.id.in_(subscriptions),
                                                            ZapierSubscription.disabled_at.is_not(None))
                           .values(disabled_at=None, disabled_reason=None, failing_since=None))
    after_commit(ring, delivery_ids[0])
    return len(delivery_ids)


def dead_deliveries(*, since: datetime | None = None, user_id: uuid.UUID | None = None) -> list[uuid.UUID]:
    """Dead deliveries whose subscription still exists (optionally created since, of one account)."""
    statement = select(WebhookDelivery.id).where(WebhookDelivery.status == DEAD,
                                                 WebhookDelivery.subscription_id.is_not(None))
    if since is not None:
        statement = statement.where(WebhookDelivery.created_at >= since)
    if user_id is not None:
        statement = statement.where(WebhookDelivery.user_id == user_id)
    return list(db.session.scalars(statement))


def list_deliveries(user_id: uuid.UUID, *, status: str | None, offset: int, limit: int) -> tuple[list, int]:
    """The account's deliveries, newest first, with their event's type (the delivery log)."""
    conditions = [WebhookDelivery.user_id == user_id]
    if status:
        conditions.append(WebhookDelivery.status == status)
    total = db.session.scalar(select(func.count()).select_from(WebhookDelivery).where(*conditions))
    rows = db.session.execute(
        select(WebhookDelivery, Event.type).join(Event, Event.id == WebhookDelivery.event_id).where(*conditions)
        .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc()).offset(offset).limit(limit)).all()
    items = []
    for delivery, event_type in rows:
        delivery.event_type = event_type
        items.append(delivery)
    return items, total or 0


def retry_delivery(user_id: uuid.UUID, delivery_id: uuid.UUID | None) -> WebhookDelivery:
    """A dead delivery, or one cancelled because its subscription was disabled, sent again from the
    start of the schedule (404 another account's or a missing one; 409 any other state)."""
    delivery = db.session.scalars(select(WebhookDelivery).where(
        WebhookDelivery.id == delivery_id, WebhookDelivery.user_id == user_id).with_for_update()).one_or_none() \
        if delivery_id else None
    if delivery is None:
        raise NotFound("Delivery not found")
    retryable = delivery.status == DEAD or (
        delivery.status == CANCELLED and delivery.cancel_reason == SUBSCRIPTION_DISABLED)
    if not retryable or delivery.subscription_id is None:
        raise Conflict("Only a dead delivery, or one cancelled when its subscription was disabled, can be retried",
                       code="NOT_RETRYABLE", details={"status": delivery.status, "lastError": delivery.last_error})
    send_again([delivery.id])
    db.session.flush()
    db.session.refresh(delivery)
    delivery.event_type = db.session.scalar(select(Event.type).where(Event.id == delivery.event_id))
    return delivery
