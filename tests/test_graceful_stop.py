"""SIGTERM (Heroku's restart) during each kind of long work: the worker hands over and exits well
inside Heroku's 30 s, nothing is lost, and no claim is left waiting for its lease."""

from __future__ import annotations

import signal
import time
from collections import Counter

import pytest
from sqlalchemy import func, select

from callnfy_integrations.calendar_sync.models import CalendarLink
from callnfy_integrations.events.models import Event, EventHandlerRun
from callnfy_integrations.extensions import db
from callnfy_integrations.queues import WEBHOOKS, enqueue
from callnfy_integrations.zapier.models import WebhookDelivery
from jobs.webhooks import sweep_webhooks
from tests.google_fixtures import GoogleUser, worker_env
from tests.support import run_flask, wait_for
from tests.zapier_fixtures import Account

pytestmark = pytest.mark.processes


def terminate(process, timeout: float = 25.0) -> float:
    """SIGTERM, and how long the process took to exit."""
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=timeout)
    return time.monotonic() - started


def test_sigterm_during_a_webhook_drain_records_what_was_in_flight_and_loses_nothing(
        hooks_app, hctx, receiver, process_env, ca_bundle):
    env = {**process_env, "WEBHOOK_ALLOWED_HOSTS": "localhost", "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
           "WEBHOOK_CA_BUNDLE": ca_bundle, "LOG_LEVEL": "WARNING", "OUTBOX_GRACE_SECONDS": "0"}
    account = Account(hooks_app)
    account.subscribe(receiver.url(), "call.received")
    receiver.delay = 1.0
    from tests.factories import call_body

    for _ in range(12):
        account.client.post("/calls", json=call_body(), headers=account.headers)
    dispatcher = run_flask(env, "worker", "--queue", "default")
    webhooks = run_flask(env, "worker", "--queue", "webhooks")
    try:
        wait_for(lambda: len(receiver.requests) >= 4, timeout=30)  # a round of attempts in flight
        took = terminate(webhooks)
        db.session.expire_all()
        stuck = db.session.scalar(select(func.count()).select_from(WebhookDelivery).where(
            WebhookDelivery.claimed_until.is_not(None)))
        delivered = db.session.scalar(select(func.count()).select_from(WebhookDelivery).where(
            WebhookDelivery.status == "delivered"))
        assert took < 10, took  # finished its in-flight attempts (1 s), claimed nothing more
        assert stuck == 0  # every attempt that was in flight has its outcome recorded
        assert delivered == len(receiver.requests) < 12

        after = run_flask(env, "worker", "--queue", "webhooks")
        enqueue(sweep_webhooks, queue=WEBHOOKS)
        wait_for(lambda: db.session.scalar(select(func.count()).select_from(WebhookDelivery).where(
            WebhookDelivery.status == "delivered")) == 12 or db.session.expire_all(), timeout=30)
        terminate(after)
    finally:
        terminate(dispatcher)
    assert set(Counter(r.headers["webhook-id"] for r in receiver.requests).values()) == {1}  # none twice


def test_sigterm_during_calendar_pushes_hands_the_rest_over(google_app, gctx, sandbox, config):
    user = GoogleUser(google_app, sandbox)
    assert user.connect() == {"success": "true"}
    env = worker_env(config, sandbox, LOG_LEVEL="WARNING", GOOGLE_SYNC_GRACE_SECONDS=0)
    first = run_flask(env, "worker")
    wait_for(lambda: sandbox.calls("events.list") >= 1, timeout=20)  # the connect's backfill ran
    sandbox.settings(write_delay=1.0)
    for day in range(1, 7):
        user.create(scheduledAt=f"2026-12-{day:02d}T10:00:00Z")
    try:
        wait_for(lambda: sandbox.calls("events.insert") >= 1, timeout=20)
        took = terminate(first)
    finally:
        if first.poll() is None:
            first.kill()
    assert took < 10, took  # the push in flight finished; the rest were handed over

    def synced() -> int:
        db.session.expire_all()
        return db.session.scalar(select(func.count()).select_from(CalendarLink).where(
            CalendarLink.state == "synced"))

    assert 1 <= synced() < 6  # SIGTERM came mid-way: pushes were left for the next worker
    second = run_flask(env, "worker")
    try:

        wait_for(lambda: synced() == 6, timeout=60, interval=0.2)
    finally:
        terminate(second)
    assert len(sandbox.events()) == 6  # each once


def test_sigterm_during_an_outbox_drain_loses_no_event(app, app_ctx, process_env, user_id):
    from callnfy_integrations.calls.service import record_call

    for _ in range(300):
        record_call(user_id, customer_phone="+14155550123", duration=30)
    db.session.commit()  # 300 events rung on the outbox doorbell at once
    worker = run_flask({**process_env, "LOG_LEVEL": "WARNING"}, "worker", "--queue", "default")
    wait_for(lambda: db.session.scalar(select(func.count()).select_from(Event)
                                       .where(Event.dispatched_at.is_not(None))) or db.session.expire_all(),
             timeout=20, interval=0.01)
    took = terminate(worker)
    assert took < 10, took
    db.session.expire_all()
    left = db.session.scalar(select(func.count()).select_from(Event).where(Event.dispatched_at.is_(None)))
    assert 0 < left < 300, left  # SIGTERM came mid-drain: it stopped with events left, for the next worker
    second = run_flask({**process_env, "LOG_LEVEL": "WARNING", "OUTBOX_GRACE_SECONDS": "0"}, "worker",
                       "--queue", "default")
    try:
        from jobs.events import sweep_outbox

        enqueue(sweep_outbox)

        def all_dispatched():
            db.session.expire_all()
            return db.session.scalar(select(func.count()).select_from(Event)
                                     .where(Event.dispatched_at.is_(None))) == 0

        wait_for(all_dispatched, timeout=30, interval=0.2)
    finally:
        terminate(second)
    from callnfy_integrations.events.registry import handlers_for

    runs = db.session.scalar(select(func.count()).select_from(EventHandlerRun))
    assert runs == 300 * len(handlers_for("call.received")) > 0  # every event's handlers ran, each once
