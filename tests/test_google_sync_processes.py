"""One-way sync with real `flask worker` / `flask scheduler` processes: concurrency, delayed backoff,
and recovery when Redis loses everything in the middle of a push."""

import time

import pytest
import requests
from sqlalchemy import select

from callnfy_integrations import create_app
from callnfy_integrations.calendar_sync.models import CalendarLink
from callnfy_integrations.extensions import db
from callnfy_integrations.google.event_body import event_id_for
from callnfy_integrations.public_ids import APPOINTMENT, decode
from callnfy_integrations.queues import CALENDAR, enqueue, get_queue, redis_connection
from tests.google_fixtures import GoogleUser, google_settings, worker_env
from tests.support import make_config, run_flask, wait_for

pytestmark = pytest.mark.processes


def state_of(appointment: dict) -> str | None:
    db.session.expire_all()
    return db.session.scalar(select(CalendarLink.state).where(
        CalendarLink.appointment_id == decode(APPOINTMENT, appointment["id"])))


def stop(process) -> str:
    if process.poll() is None:
        process.terminate()
    output, _ = process.communicate(timeout=30)
    return output


@pytest.fixture
def guser(google_app, gctx, sandbox):
    user = GoogleUser(google_app, sandbox)
    assert user.connect() == {"success": "true"}
    return user


def test_concurrent_pushes_from_two_workers_make_one_event(guser, google_app, sandbox, config):
    from jobs.events import drain_outbox

    sandbox.settings(write_delay=0.5)  # both workers are inside a push at the same time
    appointment = guser.create()
    drain_outbox()  # dispatch: pending, one push enqueued (and the connect's backfill)
    for _ in range(3):
        enqueue("jobs.google.sync_appointments", [str(decode(APPOINTMENT, appointment["id"]))], queue=CALENDAR)
    env = worker_env(config, sandbox)
    workers = [run_flask(env, "worker", "--burst") for _ in range(2)]
    outputs = [p.communicate(timeout=60)[0] for p in workers]
    assert all(p.returncode == 0 for p in workers), outputs
    [event] = sandbox.events()
    assert event["id"] == event_id_for(decode(APPOINTMENT, appointment["id"]))
    assert sandbox.calls("events.insert") == 1 and len(sandbox.writes()) == 1
    assert state_of(appointment) == "synced"


def idle_for(seconds):
    """No job waiting or running on the default and calendar queues for `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for name in ("default", CALENDAR):
            queue = get_queue(name)
            if queue.count or queue.started_job_registry.count:
                return False
        time.sleep(0.05)
    return True


def test_429_then_success_after_backoff(guser, sandbox, config):
    sandbox.state.script("events.insert", {"status": 429, "reason": "rateLimitExceeded"})
    worker = run_flask(worker_env(config, sandbox, GOOGLE_RETRY_BASE_SECONDS=1), "worker")
    try:
        # The connect's backfill runs first, so the appointment's own push job is the one that
        # meets the 429 (a backfill meeting it would hand the appointment to that push job).
        wait_for(lambda: idle_for(0.5), timeout=15)
        started = time.monotonic()
        appointment = guser.create()
        seen = set()

        def synced():
            seen.add(state_of(appointment))
            return "synced" in seen

        wait_for(synced, timeout=30)
        elapsed = time.monotonic() - started
    finally:
        output = stop(worker)
    assert "failed" in seen, output  # the 429 was recorded before the retry
    assert sandbox.calls("events.insert") == 2
    assert elapsed >= 0.8  # waited its backoff (1 s ± 20 %) in RQ's scheduled registry
    assert len(sandbox.events()) == 1


def test_recovery_after_redis_is_flushed_mid_push(database_url, servers, sandbox, config, app):
    quick = create_app(make_config(database_url, servers["redis"], OUTBOX_GRACE_SECONDS="2",
                                   **google_settings(sandbox)))
    sandbox.settings(time_zones={}, write_delay=0)
    requests.post(f"{sandbox.url}/sandbox/reset", timeout=5).raise_for_status()
    with quick.app_context():
        user = GoogleUser(quick, sandbox)
        assert user.connect() == {"success": "true"}
        sandbox.settings(write_delay=1.5)
        env = worker_env(config, sandbox, OUTBOX_GRACE_SECONDS=2, OUTBOX_SWEEP_SECONDS=1,
                         GOOGLE_SYNC_GRACE_SECONDS=2, GOOGLE_SYNC_SWEEP_SECONDS=1)
        worker, scheduler = run_flask(env, "worker"), run_flask(env, "scheduler")
        try:
            first = user.create()
            wait_for(lambda: sandbox.calls("events.insert") >= 1, timeout=30)  # first push in flight
            second = user.create(scheduledAt="2026-12-07T09:00:00Z")  # its dispatch waits in Redis ...
            redis_connection().flushdb()  # ... and is lost, with the locks and RQ's own records
            wait_for(lambda: state_of(first) == "synced" and state_of(second) == "synced", timeout=60)
        finally:
            outputs = stop(worker) + stop(scheduler)
        ids = sorted(e["id"] for e in sandbox.events())
        assert ids == sorted(event_id_for(decode(APPOINTMENT, a["id"])) for a in (first, second)), outputs
        assert sandbox.calls("events.insert") == 2
        db.session.remove()
