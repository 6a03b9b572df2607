"""Signed, at-least-once webhook delivery to Zapier hook URLs.

* An outbox handler writes one delivery row per matching subscription, in the event's dispatch
  transaction, and rings the webhook doorbell after commit.
* A drain job (`jobs.webhooks.send_webhooks`) claims due deliveries in batches — the claim
  re-checks, in the same statement, that the subscription and the API key still exist — commits the
  claim, and sends them concurrently from a pool of keep-alive, SSRF-safe sessions; one RQ job
  serves many deliveries. The job owns the transactions: the functions here only run statements.
* Outcomes are recorded per attempt: 2xx delivered; 410 removes the subscription; anything else
  (3xx included: redirects are never followed) is retried on WEBHOOK_RETRY_SCHEDULE with ±20 %
  jitter, honouring Retry-After, until the schedule runs out and the delivery is dead.
* The sweeper rings again for deliveries that are due (retries, and claims whose worker died).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from email.utils import parsedate_to_datetime

import requests
from flask import Flask, current_app
from requests_hardened import Config as HardenedConfig
from requests_hardened import HTTPSession
from sqlalchemy import DateTime, Integer, String, Text, bindparam, delete, insert, text, update
from sqlalchemy.dialects.postgresql import ARRAY, UUID

from ..crypto import secret_box
from ..doorbell import Doorbell
from ..events.models import Event
from ..events.registry import handles
from ..extensions import db
from ..integrations.service import ZAPIER_API_KEY_FIELD
from ..queues import WEBHOOKS, redis_connection
from ..timestamps import utcnow
from ..transactions import after_commit
from .models import CANCELLED, DEAD, DELIVERED, GONE, PENDING, WebhookAttempt, WebhookDelivery, ZapierSubscription
from .service import ZAPIER_EVENTS, delivery_body
from .signing import delivery_headers

log = logging.getLogger(__name__)

WEBHOOKS_BELL = Doorbell("webhooks", "jobs.webhooks.send_webhooks", WEBHOOKS)
CONNECT_TIMEOUT, TOTAL_TIMEOUT = 5.0, 15.0
RESPONSE_READ_LIMIT = 64 * 1024
ERROR_MAX = 500
CLAIM_LEASE_SECONDS = 60  # a claimed delivery whose worker died is due again after this
RETRY_AFTER_MAX_SECONDS = 6 * 3600
USER_AGENT = "Callnfy-Webhooks/1.0"


# -- creating deliveries -------------------------------------------------------------------------

_CREATE = text("""
    INSERT INTO webhook_deliveries (id, user_id, event_id, subscription_id, hook_url)
    SELECT gen_random_uuid(), s.user_id, :event_id, s.id, s.hook_url
    FROM zapier_subscriptions s
    WHERE s.user_id = :user_id AND s.event = :event_type
    ON CONFLICT (event_id, subscription_id) DO NOTHING
    RETURNING id
""")


@handles("zapier-deliveries", *ZAPIER_EVENTS)
def create_deliveries(event: Event) -> None:
    """One pending delivery per subscription to this event (idempotent), sent once committed."""
    ids = list(db.session.scalars(_CREATE, {"event_id": event.id, "user_id": event.user_id,
                                            "event_type": event.type}))
    for delivery_id in ids:
        after_commit(ring, delivery_id)


def ring(delivery_ids: list) -> None:
    try:
        WEBHOOKS_BELL.ring(delivery_ids, redis_connection())
    except Exception:  # committed: the sweeper finds due deliveries without the doorbell
        log.warning("could not ring the webhook doorbell; the sweeper will", exc_info=True)


# -- claiming ------------------------------------------------------------------------------------

_CLAIM = text("""
    UPDATE webhook_deliveries d
    SET attempts = d.attempts + 1,
        next_attempt_at = clock_timestamp() + make_interval(secs => :lease)
    FROM zapier_subscriptions s, integrations i, events e
    WHERE d.id = ANY(:ids) AND d.status = 'pending' AND d.next_attempt_at <= clock_timestamp()
      AND s.id = d.subscription_id
      AND i.user_id = d.user_id AND i.provider = 'zapier' AND i.api_key_encrypted IS NOT NULL
      AND e.id = d.event_id
    RETURNING d.id, d.user_id, d.subscription_id, d.attempts, d.hook_url,
              e.id AS event_id, e.type AS event_type, e.payload, e.created_at AS event_created_at,
              i.api_key_encrypted
""").bindparams(bindparam("ids", type_=ARRAY(UUID(as_uuid=True))))


@dataclass(frozen=True)
class Claimed:
    delivery_id: uuid.UUID
    subscription_id: uuid.UUID
    attempt: int
    url: str
    body: bytes
    message_id: str
    api_key: str


def claim(delivery_ids: list[uuid.UUID]) -> list[Claimed]:
    """Take due deliveries whose subscription and key still exist; the caller commits before sending."""
    rows = db.session.execute(_CLAIM, {"ids": delivery_ids, "lease": CLAIM_LEASE_SECONDS}).all()
    claimed = []
    for row in rows:
        body = delivery_body(row.event_id, row.event_type, row.event_created_at, row.payload)
        api_key = secret_box().decrypt(row.api_key_encrypted, user_id=row.user_id, field=ZAPIER_API_KEY_FIELD)
        claimed.append(Claimed(row.id, row.subscription_id, row.attempts, row.hook_url,
                               json.dumps(body, separators=(",", ":")).encode(), body["id"], api_key))
    return claimed


# -- sending -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    claimed: Claimed
    status_code: int | None
    duration_ms: int
    error: str | None
    retry_after: float | None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class Sender:
    """A pool of threads, each with its own keep-alive, SSRF-safe session."""

    def __init__(self, *, concurrency: int, allow_private: bool, ca_bundle: str | None):
        self._config = HardenedConfig(
            ip_filter_enable=not allow_private,  # resolve once, pin, refuse private/loopback/link-local
            ip_filter_allow_loopback_ips=False,
            never_redirect=True,
            default_timeout=(CONNECT_TIMEOUT, TOTAL_TIMEOUT),
            user_agent_override=USER_AGENT,
        )
        self._verify = ca_bundle or True
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="webhook-sender")

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = HTTPSession(self._config)
            session.trust_env = False  # no proxies or CA bundles from the environment
            session.verify = self._verify
        return session

    def send_all(self, claimed: list[Claimed]) -> list[Outcome]:
        return list(self._pool.map(self.send, claimed))

    def send(self, item: Claimed) -> Outcome:
        timestamp = int(time.time())
        started = time.monotonic()
        response = None
        try:
            response = self._session().post(
                item.url, data=item.body, headers=delivery_headers(item.api_key, item.message_id, timestamp,
                                                                    item.body),
                timeout=(CONNECT_TIMEOUT, TOTAL_TIMEOUT), allow_redirects=False, stream=True)
            snippet = _read_limited(response, started + TOTAL_TIMEOUT)
            status = response.status_code
            error = None if 200 <= status < 300 else f"HTTP {status}: {snippet[:200]}".strip()
            return Outcome(item, status, _elapsed_ms(started), error, _retry_after(response))
        except Exception as exc:  # timeouts, refused addresses, TLS failures: all retried
            return Outcome(item, None, _elapsed_ms(started), f"{type(exc).__name__}: {exc}"[:ERROR_MAX], None)
        finally:
            if response is not None:
                response.close()


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _read_limited(response: requests.Response, deadline: float) -> str:
    """At most 64 kB of the body, and never past the total deadline."""
    received = bytearray()
    for chunk in response.raw.stream(8192, decode_content=True):
        received.extend(chunk)
        if len(received) >= RESPONSE_READ_LIMIT or time.monotonic() > deadline:
            break
    return bytes(received[:RESPONSE_READ_LIMIT]).decode("utf-8", "replace")


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, (parsedate_to_datetime(value) - utcnow()).total_seconds())
        except (TypeError, ValueError):
            return None


def sender(app: Flask | None = None) -> Sender:
    app = app or current_app._get_current_object()
    existing = app.extensions.get("callnfy_webhook_sender")
    if existing is None:
        existing = app.extensions["callnfy_webhook_sender"] = Sender(
            concurrency=app.config["WEBHOOK_CONCURRENCY"], allow_private=app.config["WEBHOOK_ALLOW_PRIVATE_NETWORKS"],
            ca_bundle=app.config["WEBHOOK_CA_BUNDLE"])
    return existing


# -- recording outcomes --------------------------------------------------------------------------

def next_delay(attempt: int, schedule: list[int], retry_after: float | None) -> float | None:
    """Seconds until the next attempt after failed attempt number `attempt`; None when none is left."""
    if attempt > len(schedule):
        return None
    delay = schedule[attempt - 1] * random.uniform(0.8, 1.2)
    if retry_after is not None:  # the receiver's wish wins when it asks for longer, within reason
        delay = max(delay, min(retry_after, RETRY_AFTER_MAX_SECONDS))
    return delay


_RECORD = text("""
    UPDATE webhook_deliveries d
    SET status = o.status, next_attempt_at = coalesce(o.next_attempt_at, d.next_attempt_at),
        last_status_code = o.status_code, last_error = o.error,
        delivered_at = CASE WHEN o.status = 'delivered' THEN clock_timestamp() ELSE d.delivered_at END
    FROM unnest(:ids, :statuses, :next_attempts, :codes, :errors)
         AS o(id, status, next_attempt_at, status_code, error)
    WHERE d.id = o.id AND d.status = 'pending'
""").bindparams(bindparam("ids", type_=ARRAY(UUID(as_uuid=True))),
                bindparam("statuses", type_=ARRAY(String)),
                bindparam("next_attempts", type_=ARRAY(DateTime(timezone=True))),
                bindparam("codes", type_=ARRAY(Integer)), bindparam("errors", type_=ARRAY(Text)))


def record(outcomes: list[Outcome]) -> None:
    """Write a batch's attempts and outcomes (one statement each); the caller commits them together."""
    if not outcomes:
        return
    schedule = current_app.config["WEBHOOK_RETRY_SCHEDULE"]
    now = utcnow()
    db.session.execute(insert(WebhookAttempt), [
        {"delivery_id": o.claimed.delivery_id, "attempt": o.claimed.attempt, "status_code": o.status_code,
         "duration_ms": o.duration_ms, "error": o.error and o.error[:ERROR_MAX]} for o in outcomes])
    rows = {"ids": [], "statuses": [], "next_attempts": [], "codes": [], "errors": []}
    gone_subscriptions = []
    for outcome in outcomes:
        status, next_attempt, error = PENDING, None, outcome.error
        if outcome.delivered:
            status, error = DELIVERED, None
        elif outcome.status_code == 410:
            status = GONE
            gone_subscriptions.append(outcome.claimed.subscription_id)
        else:
            delay = next_delay(outcome.claimed.attempt, schedule, outcome.retry_after)
            if delay is None:
                status = DEAD
            else:
                next_attempt = now + timedelta(seconds=delay)
        for key, value in zip(rows, (outcome.claimed.delivery_id, status, next_attempt, outcome.status_code, error)):
            rows[key].append(value)
    # Only still-pending rows change: a delivery cancelled by a revoke meanwhile stays cancelled.
    db.session.execute(_RECORD, rows)
    if gone_subscriptions:
        # The receiver said the hook is gone for good: stop everything queued for it.
        db.session.execute(update(WebhookDelivery).where(WebhookDelivery.subscription_id.in_(gone_subscriptions),
                                                         WebhookDelivery.status == PENDING)
                           .values(status=CANCELLED, last_error="hook answered 410 Gone"))
        db.session.execute(delete(ZapierSubscription).where(ZapierSubscription.id.in_(gone_subscriptions)))


# -- finding due deliveries ----------------------------------------------------------------------

_DUE = text("""
    SELECT id FROM webhook_deliveries
    WHERE status = 'pending' AND next_attempt_at <= clock_timestamp()
    ORDER BY next_attempt_at LIMIT :limit
""")


def due_deliveries(limit: int = 5000) -> list[uuid.UUID]:
    """Pending deliveries that are due: scheduled retries, and claims whose worker never reported back."""
    return list(db.session.scalars(_DUE, {"limit": limit}))
