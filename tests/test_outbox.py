"""The transactional outbox: events commit with their change, dispatch after commit on a real worker,
each handler runs exactly once, and the sweeper recovers what Redis lost."""

import threading
import time
import uuid
from datetime import UTC, datetime

import pytest
from rq import Queue
from sqlalchemy import select

from callnfy_integrations import create_app
from callnfy_integrations.appointments import service as appointments
from callnfy_integrations.events import registry
from callnfy_integrations.events.dispatch import dispatch, drain_ready_events, sweep_due_events
from callnfy_integrations.events.models import Event, EventHandlerRun
from callnfy_integrations.events.outbox import OUTBOX
from callnfy_integrations.extensions import db
from callnfy_integrations.queues import DEFAULT, enqueue, redis_connection
from callnfy_integrations.worker import build_worker
from jobs.events import dispatch_event, drain_outbox, sweep_outbox
from tests.factories import appointment_body, auth_headers, call_body, row_counts
from tests.support import make_config, run_flask, wait_for

CALLS_KEY = "test:handler-calls"


@pytest.fixture(scope="module")
def outbox_app(database_url, servers, app):
    # No grace period: an undispatched event is due for the sweeper at once.
    return create_app(make_config(database_url, servers["redis"], OUTBOX_GRACE_SECONDS="0"))


@pytest.fixture
def ctx(outbox_app):
    with outbox_app.app_context():
        yield outbox_app
        db.session.remove()


def recording_handler(name, fail=None, delay=0.0):
    """A handler that records (handler, event id) in Redis each time it really runs."""

    def handle(event):
        time.sleep(delay)
        if fail and fail():
            raise RuntimeError(f"{name} is down")
        redis_connection().rpush(CALLS_KEY, f"{name}:{event.id}")

    return handle


@pytest.fixture
def handlers():
    names = []

    def add(name, *event_types, **options):
        registry.register_handler(name, event_types or registry.EVENT_TYPES, recording_handler(name, **options))
        names.append(name)

    yield add
    for name in names:
        registry.unregister_handler(name)


def handler_calls():
    return [item.decode() for item in redis_connection().lrange(CALLS_KEY, 0, -1)]


def queue_length():
    return Queue(DEFAULT, connection=redis_connection()).count


def ready_ids():
    return OUTBOX.waiting(redis_connection())


def run_worker(application):
    build_worker(application).work(burst=True)


def uncommitted_appointment(user_id):
    """What another service composing with this one sees: the change in the caller's open transaction."""
    body = appointment_body()
    return appointments.create_appointment(
        user_id, customer_name=body["customerName"], customer_phone=body["customerPhone"],
        scheduled_at=datetime(2026, 12, 1, 10, tzinfo=UTC), duration=30)


def new_appointment(user_id):
    """The test is the edge here: it commits, as a view or job would."""
    appointment = uncommitted_appointment(user_id)
    db.session.commit()
    return appointment


def test_event_commits_with_its_change_and_requests_dispatch(ctx, user_id):
    appointment = new_appointment(user_id)
    event = db.session.scalars(select(Event)).one()
    assert event.type == "appointment.created"
    assert event.payload["id"] == "appt_" + appointment.id.hex
    assert event.dispatched_at is None
    assert ready_ids() == [str(event.id)]
    assert queue_length() == 1  # one drain job


def test_many_commits_share_one_drain_job(outbox_app, ctx, handlers):
    handlers("audit")
    client = outbox_app.test_client()
    headers = auth_headers(uuid.uuid4())
    for _ in range(25):
        client.post("/calls", json=call_body(), headers=headers)
    assert len(ready_ids()) == 25 and queue_length() == 1
    run_worker(outbox_app)
    assert len(handler_calls()) == 25 and ready_ids() == []
    assert db.session.scalar(select(db.func.count()).select_from(Event).where(Event.dispatched_at.is_(None))) == 0


def test_a_drain_past_its_budget_hands_over_to_a_new_job(ctx, handlers):
    handlers("audit")
    client = ctx.test_client()
    headers = auth_headers(uuid.uuid4())
    for _ in range(5):
        client.post("/calls", json=call_body(), headers=headers)
    redis_connection().delete(*redis_connection().keys("rq:*"))  # forget the queued drain job
    assert drain_ready_events(redis_connection(), batch=2, budget_seconds=0) == 2
    assert len(ready_ids()) == 3 and queue_length() == 1  # the rest went to a fresh drain job


def test_rollback_leaves_no_row_no_event_and_no_job(ctx, user_id):
    uncommitted_appointment(user_id)
    assert db.session.scalars(select(Event)).all()  # visible inside the transaction…
    db.session.rollback()
    assert row_counts()["appointments"] == 0 and row_counts()["events"] == 0  # …and gone with it
    assert queue_length() == 0 and ready_ids() == []
    db.session.commit()  # a later, empty commit must not resurrect the forgotten dispatch
    assert queue_length() == 0 and ready_ids() == []


def test_failed_request_writes_no_event_and_enqueues_nothing(outbox_app, ctx):
    client = outbox_app.test_client()
    response = client.post("/appointments", json=appointment_body(duration=0), headers=auth_headers(uuid.uuid4()))
    assert response.status_code == 400
    assert row_counts()["events"] == 0 and queue_length() == 0 and ready_ids() == []


def test_real_worker_dispatches_to_every_handler_once(outbox_app, ctx, handlers):
    handlers("audit")
    handlers("calls-only", registry.CALL_RECEIVED)
    client = outbox_app.test_client()
    headers = auth_headers(uuid.uuid4())
    client.post("/appointments", json=appointment_body(), headers=headers)
    client.post("/calls", json=call_body(), headers=headers)
    assert len(ready_ids()) == 2

    run_worker(outbox_app)

    events = {e.type: e for e in db.session.scalars(select(Event))}
    assert sorted(handler_calls()) == sorted([
        f"audit:{events['appointment.created'].id}", f"audit:{events['call.received'].id}",
        f"calls-only:{events['call.received'].id}"])
    assert all(e.dispatched_at is not None and e.last_error is None for e in events.values())
    assert db.session.scalar(select(db.func.count()).select_from(EventHandlerRun).where(
        EventHandlerRun.handler.in_(["audit", "calls-only"]))) == 3


def test_failing_handler_is_retried_without_rerunning_the_others(outbox_app, ctx, handlers, user_id):
    down = {"value": True}
    handlers("steady")
    handlers("flaky", fail=lambda: down["value"])
    appointment = new_appointment(user_id)
    event = db.session.scalars(select(Event)).one()

    run_worker(outbox_app)
    db.session.expire_all()
    event = db.session.get(Event, event.id)
    assert event.dispatched_at is None and event.attempts == 1
    assert "flaky: RuntimeError: flaky is down" in event.last_error
    assert event.next_attempt_at > db.session.scalar(select(db.func.now()))  # backed off
    assert handler_calls() == [f"steady:{event.id}"]

    down["value"] = False
    assert dispatch(event.id) is True  # what the sweeper's job does once the event is due again
    db.session.expire_all()
    assert db.session.get(Event, event.id).dispatched_at is not None
    assert sorted(handler_calls()) == sorted([f"steady:{event.id}", f"flaky:{event.id}"])
    assert appointment.id is not None


def test_concurrent_dispatches_of_one_event_run_each_handler_once(outbox_app, ctx, handlers, user_id):
    handlers("slow", delay=0.3)
    new_appointment(user_id)
    event_id = db.session.scalars(select(Event.id)).one()
    db.session.remove()

    def dispatch_in_own_context():
        with outbox_app.app_context():
            dispatch(event_id)

    threads = [threading.Thread(target=dispatch_in_own_context) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert handler_calls() == [f"slow:{event_id}"]


def test_sweeper_redispatches_everything_after_redis_is_flushed(outbox_app, ctx, handlers):
    handlers("zapier-like")
    handlers("google-like", registry.APPOINTMENT_CREATED, registry.APPOINTMENT_CANCELLED)
    client = outbox_app.test_client()
    headers = auth_headers(uuid.uuid4())
    created = [client.post("/appointments", json=appointment_body(), headers=headers).json["data"]
               for _ in range(4)]
    client.post(f"/appointments/{created[0]['id']}/cancel", json={}, headers=headers)
    client.post("/calls", json=call_body(), headers=headers)
    assert len(ready_ids()) == 6

    redis_connection().flushdb()  # Redis lost the doorbell list and the queued drain job
    enqueue(sweep_outbox, queue=DEFAULT)  # as the scheduler does
    run_worker(outbox_app)  # runs the sweep, then the dispatches it enqueued

    events = db.session.scalars(select(Event)).all()
    assert len(events) == 6 and all(e.dispatched_at is not None for e in events)
    expected = [f"zapier-like:{e.id}" for e in events] + [
        f"google-like:{e.id}" for e in events if e.type in ("appointment.created", "appointment.cancelled")]
    assert sorted(handler_calls()) == sorted(expected)

    # Duplicate dispatch jobs, duplicate doorbell entries and later sweeps run nothing again.
    for event in events:
        enqueue(dispatch_event, str(event.id))
    OUTBOX.ring([e.id for e in events] * 2, redis_connection())
    assert sorted(ready_ids()) == sorted(str(e.id) for e in events)  # a second ring adds nothing
    enqueue(drain_outbox, queue=DEFAULT)
    enqueue(sweep_outbox, queue=DEFAULT)
    run_worker(outbox_app)
    assert sorted(handler_calls()) == sorted(expected)


def lose_the_doorbell():
    """The ring and its drain job are gone, but Redis kept everything else (a worker took the job and died)."""
    connection = redis_connection()
    connection.delete(OUTBOX.ready_key, OUTBOX.flag_key)
    Queue(DEFAULT, connection=connection).empty()


def test_sweeper_leaves_events_alone_during_their_grace_period(app, user_id):
    with app.app_context():  # the default 60 s grace
        assert sweep_due_events() == 0  # a first sweep: Redis is known to hold its doorbells from now on
        new_appointment(user_id)
        lose_the_doorbell()
        assert sweep_due_events() == 0
        assert queue_length() == 0 and ready_ids() == []
        db.session.remove()


def test_after_redis_comes_back_empty_every_undispatched_event_is_rung_at_once(app, user_id):
    with app.app_context():  # the default 60 s grace
        assert sweep_due_events() == 0
        failed = new_appointment(user_id)
        db.session.execute(db.update(Event).values(attempts=1, next_attempt_at=db.func.now() + db.text(
            "interval '5 minutes'")))  # a dispatch that failed: it keeps its backoff
        db.session.commit()
        for _ in range(3):
            new_appointment(user_id)
        redis_connection().flushdb()  # every doorbell lost; the events are 0 s into their 60 s grace

        assert sweep_due_events() == 3  # at once, not after the grace period
        waiting = set(ready_ids())
        assert len(waiting) == 3 and queue_length() == 1
        assert str(db.session.scalars(select(Event.id).where(Event.attempts == 1)).one()) not in waiting
        assert sweep_due_events() == 0  # the next sweep knows Redis holds them now
        assert failed.id is not None
        db.session.remove()


def overdue_appointments(user_id, count):
    """Appointments whose events are past their grace period, their doorbell lost."""
    before = set(db.session.scalars(select(Event.id)))
    for _ in range(count):
        uncommitted_appointment(user_id)
    db.session.flush()
    db.session.execute(db.update(Event).where(Event.id.notin_(before)).values(
        next_attempt_at=db.func.now() - db.text("interval '1 minute'")))
    db.session.commit()
    lose_the_doorbell()


def test_a_sweep_keeps_claiming_while_full_batches_come_back(app, user_id):
    with app.app_context():  # the default 60 s grace
        assert sweep_due_events() == 0
        overdue_appointments(user_id, 25)
        assert sweep_due_events(limit=10) == 25  # batches of 10, 10 and 5 in one sweep
        assert len(ready_ids()) == 25 and queue_length() == 1
        overdue_appointments(user_id, 25)
        assert sweep_due_events(limit=10, budget_seconds=0) == 10  # its time budget spent: the next sweep goes on
        assert sweep_due_events(limit=10) == 15
        db.session.remove()


def test_sweeper_does_not_reenqueue_what_it_just_enqueued(app, user_id):
    with app.app_context():  # the default 60 s grace
        assert sweep_due_events() == 0
        new_appointment(user_id)
        lose_the_doorbell()
        db.session.execute(db.update(Event).values(next_attempt_at=db.func.now() - db.text("interval '1 minute'")))
        db.session.commit()
        assert sweep_due_events() == 1  # due: claimed and enqueued, its due time pushed a grace ahead
        assert sweep_due_events() == 0  # the next sweep leaves it to the drain just requested
        assert len(ready_ids()) == 1 and queue_length() == 1
        db.session.remove()


@pytest.mark.processes
def test_scheduler_runs_the_sweeper(outbox_app, ctx, process_env, user_id):
    """A real `flask scheduler` enqueues the outbox sweep on its interval, and the sweep finds the event
    whose doorbell Redis lost: a worker then dispatches it, with nothing rung by hand."""
    from rq.cron import CronScheduler

    from jobs.schedule import register_periodic_jobs

    scheduler = CronScheduler(connection=redis_connection(outbox_app))
    register_periodic_jobs(scheduler, outbox_app.config)
    jobs = {job.func_name: job.interval for job in scheduler.get_jobs()}
    assert jobs["jobs.events.sweep_outbox"] == outbox_app.config["OUTBOX_SWEEP_SECONDS"]

    new_appointment(user_id)
    lose_the_doorbell()
    assert queue_length() == 0 and not ready_ids()
    run_flask({**process_env, "OUTBOX_GRACE_SECONDS": "0", "OUTBOX_SWEEP_SECONDS": "1", "LOG_LEVEL": "WARNING"},
              "scheduler")
    wait_for(lambda: "jobs.events.sweep_outbox" in {job.func_name for job in Queue(
        DEFAULT, connection=redis_connection()).get_jobs()}, timeout=30)
    run_worker(outbox_app)  # the sweep the scheduler enqueued, then the drain it rang
    db.session.expire_all()
    [event] = db.session.scalars(select(Event).where(Event.user_id == user_id)).all()
    assert event.dispatched_at is not None
