"""Signed, at-least-once webhook delivery to real HTTPS receivers by a real worker."""

import json
import time
from datetime import timedelta

from sqlalchemy import func, select, update
from standardwebhooks import Webhook

from callnfy_integrations import create_app
from callnfy_integrations.extensions import db
from callnfy_integrations.queues import WEBHOOKS, enqueue, redis_connection
from callnfy_integrations.zapier.delivery import next_delay
from callnfy_integrations.zapier.models import WebhookAttempt, WebhookDelivery, ZapierSubscription
from jobs.webhooks import sweep_webhooks
from tests.factories import call_body
from tests.zapier_fixtures import hooks_config, run_worker


def deliveries():
    db.session.expire_all()
    return db.session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.created_at)).all()


def attempts_of(delivery):
    return db.session.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery.id)
                              .order_by(WebhookAttempt.attempt)).all()


def retry_round(app):
    """What the scheduler does every few seconds: sweep for due deliveries, and a worker sends them."""
    enqueue(sweep_webhooks, queue=WEBHOOKS)
    run_worker(app)


def verify(received, api_key):
    """The stock Standard Webhooks verifier accepts the delivery; returns the parsed body."""
    return Webhook(api_key.encode()).verify(received.body, received.headers)


def test_each_event_is_delivered_once_signed_with_the_contract_body(hooks_app, account, receiver):
    for event in ("appointment.created", "appointment.cancelled", "appointment.completed", "call.received"):
        account.subscribe(receiver.url(f"/{event}"), event)
    first = account.book()
    second = account.book(scheduledAt="2026-12-02T10:00:00Z")
    account.client.post(f"/appointments/{first['id']}/cancel", json={"reason": "ill"}, headers=account.headers)
    account.client.post(f"/appointments/{second['id']}/complete", json={}, headers=account.headers)
    account.client.post("/calls", json=call_body(), headers=account.headers)

    run_worker(hooks_app)

    by_path = {}
    for received in receiver.requests:
        by_path.setdefault(received.path, []).append(received)
    assert {path: len(items) for path, items in by_path.items()} == {
        "/appointment.created": 2, "/appointment.cancelled": 1, "/appointment.completed": 1, "/call.received": 1}
    for received in receiver.requests:
        body = verify(received, account.api_key)
        assert set(body) == {"id", "event", "timestamp", "data"}
        assert received.path == f"/{body['event']}"
        assert received.headers["content-type"] == "application/json"
        assert received.headers["x-callnfy-key"] == account.api_key
        assert received.headers["webhook-id"] == body["id"] and body["id"].startswith("evt_")
        assert abs(int(received.headers["webhook-timestamp"]) - time.time()) < 60
    cancelled = json.loads(by_path["/appointment.cancelled"][0].body)["data"]
    assert cancelled["id"] == first["id"] and cancelled["reason"] == "ill"
    call = json.loads(by_path["/call.received"][0].body)["data"]
    assert call["customerPhone"] == "+14155550123" and call["duration"] == 125
    assert all(d.status == "delivered" and d.attempts == 1 for d in deliveries())


def test_only_subscribed_events_are_sent(hooks_app, account, receiver):
    account.subscribe(receiver.url(), "call.received")
    account.book()
    run_worker(hooks_app)
    assert receiver.requests == [] and deliveries() == []


def test_500_500_200_is_delivered_on_the_third_attempt_with_the_same_webhook_id(hooks_app, account, receiver):
    account.subscribe(receiver.url())
    receiver.answer(500, 500, 200)
    account.book()
    run_worker(hooks_app)
    for _ in range(2):
        retry_round(hooks_app)
    assert len(receiver.requests) == 3
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    assert len({r.body for r in receiver.requests}) == 1
    for received in receiver.requests:
        verify(received, account.api_key)  # each attempt signed afresh
    [delivery] = deliveries()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 3, 200)
    assert [(a.attempt, a.status_code) for a in attempts_of(delivery)] == [(1, 500), (2, 500), (3, 200)]
    assert all(a.duration_ms >= 0 for a in attempts_of(delivery))


def test_every_attempt_failing_makes_the_delivery_dead(hooks_app, account, receiver):
    account.subscribe(receiver.url())
    receiver.answer(500, 502, 503, 504, 500)
    account.book()
    run_worker(hooks_app)
    for _ in range(4):
        retry_round(hooks_app)
    [delivery] = deliveries()
    assert delivery.status == "dead" and delivery.attempts == 4  # 1 + the schedule's 3 retries
    assert len(receiver.requests) == 4 and "HTTP 504" in delivery.last_error


def test_410_removes_the_subscription(hooks_app, account, receiver):
    subscription = account.subscribe(receiver.url())
    receiver.answer(410)
    account.book()
    run_worker(hooks_app)
    [delivery] = deliveries()
    assert delivery.status == "gone"
    assert account.hook("get", "/subscriptions").json["data"] == []
    assert db.session.scalar(select(func.count()).select_from(ZapierSubscription)) == 0
    account.book()
    run_worker(hooks_app)
    assert len(receiver.requests) == 1  # nothing more sent to it
    assert subscription["id"].startswith("sub_")


def test_retry_after_is_honoured(hooks_app, account, receiver):
    account.subscribe(receiver.url())
    receiver.answer((429, {"Retry-After": "120"}))
    account.book()
    run_worker(hooks_app)
    [delivery] = deliveries()
    wait = delivery.next_attempt_at - db.session.scalar(select(func.now()))
    assert timedelta(seconds=110) < wait <= timedelta(seconds=121)  # not the schedule's 0 s
    retry_round(hooks_app)
    assert len(receiver.requests) == 1  # not due yet


def test_retry_delays_follow_the_schedule_with_jitter():
    schedule = [5, 300, 1800]
    delays = [next_delay(2, schedule, None) for _ in range(500)]
    assert 240 <= min(delays) < 260 and 340 < max(delays) <= 360  # 300 s ± 20 %
    assert next_delay(4, schedule, None) is None  # past the schedule: dead
    assert next_delay(1, schedule, 90) == 90  # Retry-After longer than the schedule wins
    assert next_delay(1, schedule, 10**9) == 6 * 3600  # …clamped


def test_redirects_are_not_followed(hooks_app, account, receiver):
    account.subscribe(receiver.url())
    receiver.answer(*[(302, {"Location": receiver.url("/elsewhere")})] * 4)
    account.book()
    run_worker(hooks_app)  # the schedule is 0,0,0: every retry is due at once
    assert [r.path for r in receiver.requests] == ["/hook"] * 4  # never /elsewhere
    [delivery] = deliveries()
    assert (delivery.status, delivery.last_status_code, delivery.attempts) == ("dead", 302, 4)  # each a failure


def test_revoking_the_key_during_retries_stops_all_sending(account, receiver, database_url, servers, ca_bundle):
    patient = create_app(hooks_config(database_url, servers, ca_bundle, WEBHOOK_RETRY_SCHEDULE="3600"))
    account.subscribe(receiver.url())
    receiver.answer(500)
    account.book()
    run_worker(patient)
    assert len(receiver.requests) == 1
    account.client.delete("/integrations/zapier/revoke-key", headers=account.headers)
    db.session.execute(update(WebhookDelivery).values(next_attempt_at=func.now()))  # the retry is due
    db.session.commit()
    for _ in range(3):
        retry_round(patient)
    assert len(receiver.requests) == 1
    [delivery] = deliveries()
    assert delivery.status == "cancelled" and delivery.last_error == "API key revoked"


def test_everything_is_still_delivered_after_redis_is_flushed(hooks_app, account, receiver):
    account.subscribe(receiver.url())
    for day in range(1, 6):
        account.book(scheduledAt=f"2026-12-0{day}T10:00:00Z")
    redis_connection().flushdb()  # the outbox doorbell and its job are gone
    from jobs.events import sweep_outbox

    enqueue(sweep_outbox)
    run_worker(hooks_app)  # outbox sweep → dispatch → deliveries → their doorbell → sent
    assert len(receiver.requests) == 5

    account.book(scheduledAt="2026-12-09T10:00:00Z")
    run_worker_dispatch_only(hooks_app)  # deliveries created; now lose the webhook doorbell
    redis_connection().flushdb()
    retry_round(hooks_app)
    assert len(receiver.requests) == 6
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 6
    assert all(d.status == "delivered" for d in deliveries())


def run_worker_dispatch_only(app):
    from callnfy_integrations.worker import build_worker

    build_worker(app, ("default",)).work(burst=True)


def test_send_time_checks_refuse_loopback_even_for_an_existing_subscription(
        hooks_app, account, receiver, database_url, servers, ca_bundle):
    account.subscribe(receiver.url())  # allowed while private networks were allowed
    account.book()
    run_worker_dispatch_only(hooks_app)
    strict = create_app(hooks_config(database_url, servers, ca_bundle, WEBHOOK_ALLOW_PRIVATE_NETWORKS="false"))
    run_worker(strict)
    assert receiver.requests == []
    [delivery] = deliveries()
    assert delivery.status == "dead" and delivery.attempts == 4 and delivery.last_status_code is None
    assert "InvalidIPAddress" in delivery.last_error


def test_a_duplicate_doorbell_sends_once(hooks_app, account, receiver):
    from callnfy_integrations.zapier.delivery import WEBHOOKS_BELL

    account.subscribe(receiver.url())
    account.book()
    run_worker_dispatch_only(hooks_app)
    [delivery] = deliveries()
    WEBHOOKS_BELL.ring([delivery.id, delivery.id], redis_connection())
    enqueue(sweep_webhooks, queue=WEBHOOKS)
    run_worker(hooks_app)
    assert len(receiver.requests) == 1
