"""The delivery engine under slow, stalled and dying parts: real workers, real HTTPS receivers.

Each test names the behaviour of issue 9 it proves: a hard deadline per attempt, per-account
isolation, the retry schedule kept to the second, no outcome lost when a worker dies, no queue
starved by a webhook backlog, nothing left pending when a subscription or key disappears, the
subscription cap, disabling, retention.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import threading
import time
import uuid
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text, update

from callnfy_integrations import create_app
from callnfy_integrations.events.models import Event
from callnfy_integrations.extensions import db
from callnfy_integrations.queues import WEBHOOKS, enqueue, get_queue, redis_connection
from callnfy_integrations.zapier.models import WebhookAttempt, WebhookDelivery, ZapierSubscription
from jobs.webhooks import sweep_webhooks
from tests.receiver import Receiver
from tests.support import run_flask, wait_for
from tests.zapier_fixtures import Account, hooks_config, run_worker

TIMEOUT = 0.6  # WEBHOOK_ATTEMPT_TIMEOUT in these tests


def engine_settings(**overrides):
    settings = {"WEBHOOK_ATTEMPT_TIMEOUT": str(TIMEOUT), "WEBHOOK_ACCOUNT_CONCURRENCY": "4",
                "WEBHOOK_CONCURRENCY": "16", "WEBHOOK_RETRY_SCHEDULE": "1", "WEBHOOK_DRAIN_SECONDS": "30"}
    settings.update(overrides)
    return settings


@pytest.fixture
def engine_env(process_env, ca_bundle):
    """Environment of a real `flask worker` process delivering to loopback receivers."""
    return {**process_env, "WEBHOOK_ALLOWED_HOSTS": "localhost", "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
            "WEBHOOK_CA_BUNDLE": ca_bundle, "OUTBOX_GRACE_SECONDS": "0", "LOG_LEVEL": "WARNING",
            "ZAPIER_AUTH_FAILURE_LIMIT": "1000 per minute", **engine_settings()}


class Workers:
    """Real worker processes, stopped (and their output kept) at the end of the test."""

    def __init__(self, env):
        self.env = env
        self.processes = []

    def start(self, *queues, **overrides):
        args = ["worker", *[arg for q in queues for arg in ("--queue", q)]]
        # Its own process group: RQ's scheduler runs in a child process, which must go with it.
        process = run_flask({**self.env, **overrides}, *args, start_new_session=True)
        self.processes.append(process)
        return process

    def stop(self):
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except Exception:
                pass
            try:  # whatever of its group is left (a scheduler child after a SIGKILL, a hung worker)
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def workers(engine_env):
    started = Workers(engine_env)
    yield started
    started.stop()


@pytest.fixture
def second_receiver(ca):
    server = Receiver(ca)
    yield server
    server.close()


def deliveries_of(account):
    db.session.expire_all()
    return db.session.scalars(select(WebhookDelivery).where(WebhookDelivery.user_id == account.user_id)
                              .order_by(WebhookDelivery.created_at)).all()


def attempts_of(delivery_id):
    return db.session.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery_id)
                              .order_by(WebhookAttempt.attempt)).all()


def record_calls(account, count):
    from tests.factories import call_body

    for _ in range(count):
        response = account.client.post("/calls", json=call_body(), headers=account.headers)
        assert response.status_code == 201


def sweep_and_run(app):
    """The scheduler's sweep (it finds what is due without any doorbell), then a worker."""
    enqueue(sweep_webhooks, queue=WEBHOOKS)
    run_worker(app)


def engine_app(database_url, servers, ca_bundle, **overrides):
    return create_app(hooks_config(database_url, servers, ca_bundle, **engine_settings(**overrides)))


# -- a hard total deadline per attempt -----------------------------------------------------------

@pytest.mark.parametrize("mode", ["stall", "trickle"])
def test_an_attempt_ends_at_its_deadline_whatever_the_receiver_does(account, receiver, mode, database_url,
                                                                    servers, ca_bundle):
    app = engine_app(database_url, servers, ca_bundle, WEBHOOK_RETRY_SCHEDULE="3600")
    receiver.mode = mode
    account.subscribe(receiver.url(), "call.received")
    record_calls(account, 3)
    run_worker(app)
    assert len(receiver.requests) == 3
    # The three were in flight side by side (their recorded spans overlap), not one after the other.
    assert max_concurrent(spans_of(account)) == 3
    for delivery in deliveries_of(account):
        [attempt] = attempts_of(delivery.id)
        assert attempt.error == f"deadline exceeded: no complete answer within {TIMEOUT:g} s"
        assert TIMEOUT * 1000 - 50 <= attempt.duration_ms <= TIMEOUT * 1000 + 400
        assert delivery.status == "pending" and delivery.claimed_until is None  # a retry in an hour


# -- isolation between accounts, the schedule, and dead after the last entry -----------------------

@pytest.mark.processes
def test_a_stalled_receiver_delays_another_account_by_less_than_a_second(hooks_app, hctx, workers, receiver,
                                                                         second_receiver):
    stalled, healthy = Account(hooks_app), Account(hooks_app)
    receiver.mode = "stall"
    stalled.subscribe(receiver.url("/stalled"), "call.received")
    healthy.subscribe(second_receiver.url("/healthy"), "call.received")
    workers.start("default")
    workers.start(WEBHOOKS)
    record_calls(stalled, 45)
    wait_for(lambda: len(receiver.requests) >= 4, timeout=20)  # the stalled account is using its senders

    latencies = []
    for _ in range(5):
        sent = len(second_receiver.requests)
        record_calls(healthy, 1)
        committed = db.session.scalar(select(func.max(Event.created_at)).where(Event.user_id == healthy.user_id))
        arrival = wait_for(lambda sent=sent: len(second_receiver.requests) > sent and second_receiver.requests[-1],
                           timeout=10)
        latencies.append(arrival.at - committed.timestamp())
        time.sleep(0.3)
    # Every healthy delivery arrived while the other account's receiver was stalling its attempts.
    assert statistics.median(latencies) < 0.5 and max(latencies) < 1.5, latencies

    # The stalled account: every delivery tried exactly twice (1 + a schedule of one entry), never
    # early, then dead; every attempt recorded once; never more than 4 in flight at a time.
    wait_for(lambda: all(d.status == "dead" for d in deliveries_of(stalled)) and len(deliveries_of(stalled)) == 45,
             timeout=60, interval=0.5)
    for delivery in deliveries_of(stalled):
        attempts = attempts_of(delivery.id)
        assert [a.attempt for a in attempts] == [1, 2] and delivery.attempts == 2
        assert all(a.error.startswith("deadline exceeded") for a in attempts)
        gap = (attempts[1].attempted_at - attempts[0].attempted_at).total_seconds() - attempts[1].duration_ms / 1000
        # Never before the 1 s entry (-20 % jitter); later when the account's own backlog holds its
        # four senders (45 deliveries at 0.6 s each, four at a time): its limit, not other accounts'.
        assert gap >= 0.75, gap
    per_id = Counter(r.headers["webhook-id"] for r in receiver.requests)
    assert len(per_id) == 45 and set(per_id.values()) == {2}  # each attempt sent once: no duplicates
    attempts = [a for d in deliveries_of(stalled) for a in attempts_of(d.id)]
    assert max_concurrent(attempts) <= 4


def max_concurrent(attempts):
    """Most attempts in flight at once, each from its start to its recorded end (`attempted_at` is
    when it ended, `duration_ms` how long it took). The receiver's arrival times cannot tell: on a
    loaded machine a TLS handshake can delay an arrival past the end of the attempt before it."""
    spans = [(a.attempted_at.timestamp() - a.duration_ms / 1000, a.attempted_at.timestamp()) for a in attempts]
    # 2 ms of slack at each end: duration_ms is whole milliseconds
    edges = sorted([(start + 0.002, 1) for start, _ in spans] + [(end - 0.002, -1) for _, end in spans],
                   key=lambda e: (e[0], e[1]))
    current = peak = 0
    for _, step in edges:
        current += step
        peak = max(peak, current)
    return peak


def spans_of(account, started_after: float = 0.0):
    return [a for d in deliveries_of(account) for a in attempts_of(d.id)
            if a.attempted_at.timestamp() - a.duration_ms / 1000 >= started_after]


@pytest.mark.processes
def test_a_fast_receiver_gets_more_attempts_in_flight_than_the_base(hooks_app, hctx, workers, receiver):
    """Answers within WEBHOOK_FAST_ANSWER_SECONDS raise the account's limit above 4, up to half the
    worker's senders (8 of 16 here)."""
    account = Account(hooks_app)
    account.subscribe(receiver.url(), "call.received")
    receiver.delay = 0.05  # fast, but long enough for attempts to overlap
    workers.start("default")
    workers.start(WEBHOOKS)
    record_calls(account, 120)
    wait_for(lambda: sum(d.status == "delivered" for d in deliveries_of(account)) == 120, timeout=60, interval=0.5)
    assert 4 < max_concurrent(spans_of(account)) <= 8


@pytest.mark.processes
def test_a_fast_receiver_that_starts_stalling_falls_back_to_the_base_and_delays_no_other_account(
        hooks_app, hctx, workers, receiver, second_receiver):
    fast, other = Account(hooks_app), Account(hooks_app)
    fast.subscribe(receiver.url("/fast"), "call.received")
    other.subscribe(second_receiver.url("/other"), "call.received")
    receiver.delay = 0.05
    workers.start("default")
    workers.start(WEBHOOKS)
    record_calls(fast, 60)
    wait_for(lambda: sum(d.status == "delivered" for d in deliveries_of(fast)) == 60, timeout=60, interval=0.5)
    assert max_concurrent(spans_of(fast)) > 4  # raised

    receiver.mode = "stall"  # every attempt from now on is held until its 0.6 s deadline
    stalled_from = time.time()
    record_calls(fast, 40)
    wait_for(lambda: len(receiver.requests) >= 64, timeout=20)  # the stall holds its senders
    latencies = []
    for _ in range(4):
        sent = len(second_receiver.requests)
        record_calls(other, 1)
        committed = db.session.scalar(select(func.max(Event.created_at)).where(Event.user_id == other.user_id))
        arrival = wait_for(lambda sent=sent: len(second_receiver.requests) > sent and second_receiver.requests[-1],
                           timeout=10)
        latencies.append(arrival.at - committed.timestamp())
        time.sleep(0.3)
    assert statistics.median(latencies) < 0.5 and max(latencies) < 1.5, latencies
    wait_for(lambda: len(spans_of(fast, stalled_from)) >= 24, timeout=30, interval=0.5)
    stalled = spans_of(fast, stalled_from)
    assert all(a.error.startswith("deadline exceeded") for a in stalled)
    assert max_concurrent(stalled) <= 8  # at most the raised limit while the first ones stall …
    first_ended = min(a.attempted_at.timestamp() for a in stalled)
    assert max_concurrent(spans_of(fast, first_ended)) <= 4  # … then the base


@pytest.mark.processes
def test_retries_fire_at_their_due_time(hooks_app, hctx, workers, receiver):
    account = Account(hooks_app)
    account.subscribe(receiver.url(), "call.received")
    receiver.answer(500, 500, 500)
    # 1 s is waited for inside the drain; 5 s is longer than the drain waits, so a scheduled wake-up
    # (RQ's scheduler in the worker) starts the next drain at the due time.
    workers.start("default")
    workers.start(WEBHOOKS, WEBHOOK_RETRY_SCHEDULE="1,5")
    record_calls(account, 1)
    wait_for(lambda: len(receiver.requests) == 3, timeout=20)
    first, second, third = (r.at for r in receiver.requests)
    assert 0.8 <= second - first <= 1.2 + 0.5, second - first
    assert 4.0 <= third - second <= 6.0 + 1.2, third - second  # ±20 %, + the scheduler's 1 s poll
    wait_for(lambda: deliveries_of(account)[0].status == "dead", timeout=5)


# -- a worker killed mid-drain ----------------------------------------------------------------------

@pytest.mark.processes
def test_a_worker_killed_mid_drain_loses_no_outcome_and_duplicates_only_what_was_in_flight(
        hooks_app, hctx, workers, receiver):
    account = Account(hooks_app)
    account.subscribe(receiver.url(), "call.received")
    receiver.delay = 0.4
    workers.start("default")
    webhook_worker = workers.start(WEBHOOKS)
    record_calls(account, 16)
    wait_for(lambda: len(receiver.requests) >= 6, timeout=20)
    os.killpg(webhook_worker.pid, signal.SIGKILL)  # the worker and its scheduler child, as a dyno crash
    webhook_worker.wait()
    killed_at = time.time()
    db.session.expire_all()
    recorded = {d.id: d.status for d in deliveries_of(account)}
    in_flight = db.session.scalar(select(func.count()).select_from(WebhookDelivery).where(
        WebhookDelivery.user_id == account.user_id, WebhookDelivery.claimed_until.is_not(None)))
    assert 1 <= in_flight <= 4  # the per-account limit: at most 4 claims can be lost
    # The leases end (time passes; here, at once), and a new worker takes over.
    db.session.execute(update(WebhookDelivery).where(WebhookDelivery.claimed_until.is_not(None)).values(
        claimed_until=func.now() - timedelta(seconds=1), next_attempt_at=func.now() - timedelta(seconds=1)))
    db.session.commit()
    workers.start(WEBHOOKS)
    enqueue(sweep_webhooks, queue=WEBHOOKS)
    wait_for(lambda: all(d.status == "delivered" for d in deliveries_of(account)), timeout=30, interval=0.2)

    for delivery in deliveries_of(account):
        if recorded[delivery.id] == "delivered":  # recorded before the kill: kept, and never sent again
            assert delivery.attempts == 1
    sent = Counter(r.headers["webhook-id"] for r in receiver.requests)
    assert len(sent) == 16
    duplicates = [message for message, count in sent.items() if count > 1]
    assert len(duplicates) <= in_flight and all(sent[m] == 2 for m in duplicates)
    lost = db.session.scalars(select(WebhookAttempt).where(WebhookAttempt.error.like("%no outcome%"))).all()
    assert len(lost) == in_flight  # each lost attempt is in the log, and counted
    assert all(r.at < killed_at for r in receiver.requests[:6])


# -- recovery ---------------------------------------------------------------------------------------

@pytest.mark.processes
def test_after_a_restart_with_an_empty_redis_the_first_lost_event_arrives_within_15_s(
        hctx, workers, receiver, database_url, servers, ca_bundle):
    """The workers are down (killed) while events commit; Redis then loses everything (the doorbells,
    the queued jobs); the workers come back. The scheduler ran throughout, with the deployed sweep
    intervals and the 60 s grace period: only the sweepers can find the lost events."""
    account = Account(engine_app(database_url, servers, ca_bundle, OUTBOX_GRACE_SECONDS="60"))
    account.subscribe(receiver.url(), "call.received")
    deployed = {"OUTBOX_GRACE_SECONDS": "60", "OUTBOX_SWEEP_SECONDS": "", "WEBHOOK_SWEEP_SECONDS": ""}
    workers.processes.append(run_flask({**workers.env, **deployed}, "scheduler"))
    record_calls(account, 40)  # committed; their dispatch waits in Redis for a worker
    redis_connection().flushdb()
    restarted = time.time()
    workers.start("default", "calendar", **deployed)
    workers.start(WEBHOOKS, **deployed)
    wait_for(lambda: len({r.headers["webhook-id"] for r in receiver.requests}) == 40, timeout=90, interval=0.2)
    first = min(r.at for r in receiver.requests) - restarted  # when the receiver got it, by its own clock
    assert first < 15, f"the first lost event arrived {first:.1f} s after the workers started"


# -- queues do not starve each other ---------------------------------------------------------------

@pytest.mark.processes
def test_a_webhook_backlog_does_not_delay_outbox_dispatch_on_a_worker_serving_every_queue(
        hooks_app, hctx, workers, receiver):
    account = Account(hooks_app)
    receiver.mode = "stall"
    account.subscribe(receiver.url(), "call.received")
    workers.start(WEBHOOK_RETRY_SCHEDULE="3600")  # one worker, every queue (no --queue)
    record_calls(account, 40)
    wait_for(lambda: len(receiver.requests) >= 4, timeout=20)  # the drain is busy with a backlog

    delays = []
    for _ in range(3):
        response = account.client.post("/appointments", json=_appointment(), headers=account.headers)
        assert response.status_code == 201
        event = db.session.scalars(select(Event).where(Event.user_id == account.user_id)
                                   .order_by(Event.created_at.desc())).first()

        def dispatched(event_id=event.id):
            db.session.expire_all()
            return db.session.get(Event, event_id).dispatched_at

        at = wait_for(dispatched, timeout=10)
        delays.append((at - event.created_at).total_seconds())
    # The drain hands over within a second when other queues wait, and one attempt lasts 0.6 s.
    assert max(delays) < 2.5, delays
    assert get_queue(WEBHOOKS).count <= 1  # the drain re-queued itself once, not per ring


def _appointment():
    from tests.factories import appointment_body

    return appointment_body()


# -- nothing pending forever -------------------------------------------------------------------------

def test_a_delivery_whose_subscription_vanished_in_a_race_ends_cancelled(hooks_app, account, receiver):
    """Revoke racing a dispatch: the dispatch inserts a delivery while the revoke's cancel has
    already run; the revoke's delete then waits on the insert's lock and nulls its subscription."""
    account.subscribe(receiver.url(), "call.received")
    record_calls(account, 1)
    [event] = db.session.scalars(select(Event)).all()
    subscription_id = db.session.scalar(select(ZapierSubscription.id))
    db.session.commit()

    dispatch = db.engine.raw_connection()
    cursor = dispatch.cursor()
    cursor.execute("INSERT INTO webhook_deliveries (id, user_id, event_id, subscription_id, hook_url) "
                   "VALUES (%s, %s, %s, %s, %s)", (str(uuid.uuid4()), str(account.user_id), str(event.id),
                                                  str(subscription_id), receiver.url()))
    revoke = threading.Thread(target=lambda: account.client.delete("/integrations/zapier/revoke-key",
                                                                   headers=account.headers))
    revoke.start()

    def revoke_waits_on_the_insert():  # it has cancelled what it could see; now it waits on the lock
        with db.engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                     "AND wait_event_type = 'Lock'")).scalar()

    wait_for(revoke_waits_on_the_insert, timeout=10)
    dispatch.commit()
    revoke.join(10)
    dispatch.close()
    [delivery] = deliveries_of(account)
    assert delivery.status == "pending" and delivery.subscription_id is None  # the race happened

    sweep_and_run(hooks_app)
    [delivery] = deliveries_of(account)
    assert delivery.status == "cancelled" and delivery.last_error == "API key revoked"
    assert receiver.requests == []


def test_a_delivery_whose_subscription_was_deleted_ends_cancelled(hooks_app, account, receiver):
    from tests.test_webhook_delivery import run_worker_dispatch_only

    account.subscribe(receiver.url(), "call.received")
    record_calls(account, 1)
    run_worker_dispatch_only(hooks_app)  # the delivery exists, not sent yet
    db.session.execute(text("DELETE FROM zapier_subscriptions"))  # as a racing unsubscribe leaves it
    db.session.commit()
    sweep_and_run(hooks_app)
    [delivery] = deliveries_of(account)
    assert delivery.status == "cancelled" and delivery.last_error == "subscription deleted"
    assert receiver.requests == []


def test_the_sweeper_rings_once_however_often_it_runs(hooks_app, account, receiver):
    account.subscribe(receiver.url(), "call.received")
    record_calls(account, 3)
    from tests.test_webhook_delivery import run_worker_dispatch_only

    run_worker_dispatch_only(hooks_app)
    get_queue(WEBHOOKS).empty()
    redis_connection().delete("callnfy:webhooks:drain-scheduled")
    for _ in range(50):
        assert sweep_webhooks() is True
    assert get_queue(WEBHOOKS).count == 1  # one drain job waits, not fifty
    run_worker(hooks_app)
    assert len(receiver.requests) == 3


# -- limits ---------------------------------------------------------------------------------------------

def test_the_subscription_cap(account, receiver, database_url, servers, ca_bundle):
    capped = create_app(hooks_config(database_url, servers, ca_bundle, ZAPIER_MAX_SUBSCRIPTIONS="3"))
    client = capped.test_client()

    def subscribe(path, event="call.received"):
        return client.post(f"/webhooks/zapier/{account.user_id}/subscriptions", headers={
            "X-Callnfy-Key": account.api_key}, json={"hookUrl": receiver.url(path), "event": event})

    assert [subscribe(f"/{n}").status_code for n in range(3)] == [201, 201, 201]
    refused = subscribe("/3")
    assert refused.status_code == 400
    assert refused.json["error"]["code"] == "VALIDATION_ERROR"
    assert refused.json["error"]["message"] == "Subscription limit reached"
    assert "at most 3" in refused.json["error"]["details"]["hookUrl"][0]
    assert subscribe("/0").status_code == 200  # the same one again is not a new one
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(ZapierSubscription)) == 3


def test_a_subscription_failing_for_days_is_disabled_visibly_and_resubscribing_enables_it(
        account, receiver, database_url, servers, ca_bundle):
    app = create_app(hooks_config(database_url, servers, ca_bundle, WEBHOOK_RETRY_SCHEDULE="3600,3600"))
    subscription = account.subscribe(receiver.url(), "call.received")
    receiver.answer(500, 500)
    record_calls(account, 2)
    run_worker(app)
    db.session.expire_all()
    assert db.session.scalar(select(ZapierSubscription.failing_since)) is not None
    listed = account.hook("get", "/subscriptions").json["data"]
    assert listed[0]["status"] == "active" and listed[0]["disabledAt"] is None

    # Five days and more of failures (the clock moved; here, the first failure did).
    db.session.execute(update(ZapierSubscription).values(failing_since=func.now() - timedelta(days=5, hours=1)))
    db.session.execute(update(WebhookDelivery).values(next_attempt_at=func.now()))
    db.session.commit()
    receiver.answer(500, 500)
    sweep_and_run(app)
    [row] = account.hook("get", "/subscriptions").json["data"]
    assert row["id"] == subscription["id"] and row["status"] == "disabled"
    assert row["disabledReason"] == "every delivery failed for 5 days" and row["disabledAt"]
    statuses = sorted((d.status, d.last_error) for d in deliveries_of(account))
    assert statuses[0][0] == "cancelled" and statuses[0][1].startswith("subscription disabled")
    assert [s for s, _ in statuses] == ["cancelled", "cancelled"]

    sent = len(receiver.requests)
    record_calls(account, 1)  # a disabled subscription gets no new deliveries
    run_worker(app)
    assert len(receiver.requests) == sent and len(deliveries_of(account)) == 2

    again = account.hook("post", "/subscriptions", json={"hookUrl": receiver.url(), "event": "call.received"})
    assert again.status_code == 200 and again.json["data"]["status"] == "active"
    record_calls(account, 1)
    run_worker(app)
    assert len(receiver.requests) == sent + 1
    assert json.loads(receiver.requests[-1].body)["event"] == "call.received"


# -- retention -----------------------------------------------------------------------------------------

def test_retention_prunes_old_finished_records_in_bounded_batches(hooks_app, account, receiver, database_url,
                                                                  servers, ca_bundle):
    from sqlalchemy import event

    from jobs.maintenance import prune_retention

    account.subscribe(receiver.url(), "call.received")
    record_calls(account, 7)
    run_worker(hooks_app)
    first, second, third, *_ = deliveries_of(account)
    assert all(d.status == "delivered" for d in deliveries_of(account))
    # Every kind of finish (and one still pending), all 31 days old; then one fresh event.
    db.session.execute(update(WebhookDelivery).values(created_at=func.now() - timedelta(days=31)))
    db.session.execute(update(Event).values(created_at=func.now() - timedelta(days=31)))
    db.session.execute(update(WebhookDelivery).where(WebhookDelivery.id == first.id).values(status="dead"))
    db.session.execute(update(WebhookDelivery).where(WebhookDelivery.id == second.id).values(status="cancelled"))
    db.session.execute(update(WebhookDelivery).where(WebhookDelivery.id == third.id).values(
        status="pending", next_attempt_at=func.now() + timedelta(hours=1)))
    db.session.commit()
    pending_event_id = third.event_id
    record_calls(account, 1)
    run_worker(hooks_app)

    # Each DELETE the retention job sends, as PostgreSQL ran it: its LIMIT and the rows it deleted.
    deletes = []

    def observe(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().startswith("DELETE"):
            deletes.append((statement.split()[2], parameters["batch"], cursor.rowcount))

    retention = create_app(hooks_config(database_url, servers, ca_bundle, RETENTION_BATCH_SIZE="2"))
    with retention.app_context():
        event.listen(db.engine, "after_cursor_execute", observe)
        try:
            pruned = prune_retention()
        finally:
            event.remove(db.engine, "after_cursor_execute", observe)
            db.session.remove()
    assert pruned == {"deliveries": 6, "events": 6}
    # RETENTION_BATCH_SIZE rows at most per statement, statement after statement until one deletes fewer.
    assert deletes == [("webhook_deliveries", 2, 2)] * 3 + [("webhook_deliveries", 2, 0)] + \
        [("events", 2, 2)] * 3 + [("events", 2, 0)], deletes
    db.session.expire_all()
    left = deliveries_of(account)
    assert sorted(d.status for d in left) == ["delivered", "pending"]
    assert db.session.scalar(select(func.count()).select_from(WebhookAttempt)) == sum(
        len(attempts_of(d.id)) for d in left)
    assert db.session.scalar(select(func.count()).select_from(Event)) == 2
    assert db.session.get(Event, pending_event_id) is not None  # its delivery is still pending


def test_a_receiver_that_never_completes_the_tls_handshake_is_cut_at_the_deadline(ca_bundle):
    """A TCP tarpit: accepts the connection, never says a word (the TLS handshake stalls)."""
    import socket

    from callnfy_integrations.zapier.sender import Request, Sender

    listener = socket.create_server(("127.0.0.1", 0))
    held, stop = [], threading.Event()

    def accept():
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    sender = Sender(concurrency=2, allow_private=True, ca_bundle=ca_bundle, timeout=TIMEOUT)
    try:
        started = time.monotonic()
        result = sender.send(Request(f"https://localhost:{listener.getsockname()[1]}/hook", b"{}",
                                     {"Content-Type": "application/json"}))
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        thread.join(2)
        sender.close()
        for conn in held:
            conn.close()
        listener.close()
    assert held  # the connection was accepted
    assert result.status_code is None and result.error.startswith("deadline exceeded")
    assert TIMEOUT - 0.05 <= elapsed <= TIMEOUT + 0.4


@pytest.mark.slow
def test_senders_share_one_keep_alive_connection_per_address_and_cut_a_reused_one_at_the_deadline(ca, ca_bundle):
    """Twelve receivers (twelve pinned addresses), four sender threads: each receiver sees one
    connection however the attempts fall on the threads; then a reused connection that stalls is
    still cut at the attempt's deadline."""
    from callnfy_integrations.zapier.sender import Request, Sender

    receivers = [Receiver(ca) for _ in range(12)]
    sender = Sender(concurrency=4, allow_private=True, ca_bundle=ca_bundle, timeout=TIMEOUT)
    headers = {"Content-Type": "application/json"}
    try:
        for _ in range(5):
            futures = [sender.submit(Request(r.url(), b"{}", headers)) for r in receivers]
            assert all(future.result(timeout=10).delivered for future in futures)
        assert [r.connections for r in receivers] == [1] * 12  # 60 attempts, 12 handshakes
        receivers[0].mode = "stall"
        started = time.monotonic()
        result = sender.submit(Request(receivers[0].url(), b"{}", headers)).result(timeout=10)
        elapsed = time.monotonic() - started
        assert receivers[0].connections == 1  # the stalled attempt went out on the kept connection
        assert result.error.startswith("deadline exceeded") and elapsed < TIMEOUT + 0.4
    finally:
        sender.close()
        for receiver in receivers:
            receiver.close()


def test_an_attempt_past_its_deadline_leaves_alone_the_connection_the_next_attempt_took():
    """A keep-alive connection goes back to the shared pool as its answer is read, before its attempt
    has finished; if that attempt's deadline passes just then, the watchdog must not cut the
    connection from under the attempt that took it next."""
    import socket

    from callnfy_integrations.zapier.sender import _Attempt

    ours, theirs = socket.socketpair()
    try:
        first, second = _Attempt(time.monotonic()), _Attempt(time.monotonic() + 60)
        first.guard(ours)
        second.guard(ours)  # taken from the pool by the next attempt
        first.expire()
        ours.sendall(b"x")
        assert theirs.recv(1) == b"x"  # still open for the second attempt
        second.expire()
        assert theirs.recv(1) == b""  # the second attempt's own deadline does cut it
    finally:
        ours.close()
        theirs.close()


def test_a_cookie_one_receiver_sets_is_never_sent_with_a_later_delivery(receiver, ca_bundle):
    """Accounts share the hook host (hooks.zapier.com): a cookie set in answer to one account's
    delivery must not ride along with the next one, whoever's it is."""
    from callnfy_integrations.zapier.sender import Request, Sender

    receiver.answer((200, {"Set-Cookie": "zapier_session=account-a; Path=/"}))
    sender = Sender(concurrency=1, allow_private=True, ca_bundle=ca_bundle, timeout=TIMEOUT)
    try:
        for _ in range(3):
            assert sender.submit(Request(receiver.url(), b"{}", {"Content-Type": "application/json"})).result(
                timeout=10).delivered
    finally:
        sender.close()
    assert [r.headers.get("cookie") for r in receiver.requests] == [None, None, None]
    assert receiver.requests[0].headers["user-agent"] == "Callnfy-Webhooks/1.0"
