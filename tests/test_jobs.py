"""Background work: real RQ workers and the scheduler, as processes, on real Redis and PostgreSQL."""

import os
import signal
import time
import uuid
from datetime import UTC, timedelta

import pytest
from flask.views import MethodView
from rq.job import Job

from callnfy_integrations import create_app
from callnfy_integrations.api import Blueprint
from callnfy_integrations.queues import DEFAULT, enqueue, enqueue_in, redis_connection
from jobs.diagnostics import record_worker_probe
from jobs.maintenance import HEARTBEAT_KEY
from tests.support import run_flask, wait_for

probe = Blueprint("jobprobe", __name__, url_prefix="/job-probe")


@probe.route("/<probe_id>")
class ProbeJob(MethodView):
    @probe.response(202)
    def post(self, probe_id):
        """Enqueue a probe job from a request"""
        job = enqueue(record_worker_probe, probe_id, queue=DEFAULT)
        return {"jobId": job.id}


@pytest.fixture(scope="module")
def probe_app(config, app):
    application = create_app(config)
    application.extensions["flask-smorest"]["apis"][""]["ext_obj"].register_blueprint(probe)
    return application


def finish(process, timeout=30):
    out, _ = process.communicate(timeout=timeout)
    return process.returncode, out


@pytest.mark.processes
def test_job_enqueued_from_a_request_runs_on_a_real_worker(probe_app, process_env):
    probe_id = uuid.uuid4().hex
    response = probe_app.test_client().post(f"/job-probe/{probe_id}")
    assert response.status_code == 202
    job_id = response.json["data"]["jobId"]

    code, output = finish(run_flask(process_env, "worker", "--burst"))
    assert code == 0, output

    with probe_app.app_context():
        connection = redis_connection()
        job = Job.fetch(job_id, connection=connection)
        assert job.get_status() == "finished", output
        assert job.return_value()["probe"] == probe_id
        assert connection.get(f"callnfy:probe:{probe_id}:finished") is not None


@pytest.mark.processes
def test_worker_finishes_the_current_job_on_sigterm(app, process_env):
    probe_id = uuid.uuid4().hex
    with app.app_context():
        connection = redis_connection()
        job = enqueue(record_worker_probe, probe_id, 2.0, queue=DEFAULT)
    worker = run_flask(process_env, "worker")
    try:
        wait_for(lambda: connection.get(f"callnfy:probe:{probe_id}:started"), timeout=30)
        worker.send_signal(signal.SIGTERM)  # what Heroku sends on a restart
        code, output = finish(worker)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert code == 0, output
    assert connection.get(f"callnfy:probe:{probe_id}:finished") is not None
    assert Job.fetch(job.id, connection=connection).get_status() == "finished"
    assert probe_id not in output  # job arguments (ids, ciphertexts) stay out of the worker's log


@pytest.mark.processes
def test_scheduler_enqueues_periodic_jobs_that_a_worker_runs(app, process_env):
    env = {**process_env, "SCHEDULER_HEARTBEAT_SECONDS": "1"}
    with app.app_context():
        connection = redis_connection()
    scheduler = run_flask(env, "scheduler")
    worker = run_flask(env, "worker")
    try:
        first = wait_for(lambda: connection.get(HEARTBEAT_KEY), timeout=30)
        second = wait_for(lambda: (value := connection.get(HEARTBEAT_KEY)) != first and value, timeout=30)
        assert second > first  # the periodic job ran again a second later
        for process in (scheduler, worker):
            process.send_signal(signal.SIGTERM)
        results = [finish(p) for p in (scheduler, worker)]
    finally:
        for process in (scheduler, worker):
            if process.poll() is None:
                process.kill()
    for code, output in results:
        assert code == 0, output


def parent_pid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])


@pytest.mark.processes
def test_delayed_jobs_move_within_15_s_after_the_worker_holding_the_scheduler_lock_is_killed(app, process_env):
    """A crashed dyno: the worker whose RQ scheduler moves delayed jobs is SIGKILLed (with that
    scheduler process). Another worker's scheduler takes the queue over within seconds, not after
    RQ's 61 s lock."""
    from rq import Worker

    with app.app_context():
        connection = redis_connection()
    workers = [run_flask(process_env, "worker", "--queue", DEFAULT) for _ in range(2)]
    try:
        wait_for(lambda: len(Worker.all(connection=connection)) == 2, timeout=30)
        holder = wait_for(lambda: connection.get(f"rq:scheduler-lock:{DEFAULT}"), timeout=30).decode()
        scheduler_pid = int(wait_for(lambda: connection.hget(f"rq:scheduler:{holder}", "pid"), timeout=10))
        [killed] = [w for w in workers if w.pid == parent_pid(scheduler_pid)]
        [survivor] = [w for w in workers if w is not killed]

        os.killpg(killed.pid, signal.SIGKILL)  # the worker and its scheduler process, as a crashed dyno
        killed.wait(10)
        killed_at = time.monotonic()
        probe_id = uuid.uuid4().hex
        with app.app_context():
            enqueue_in(timedelta(seconds=1), record_worker_probe, probe_id, queue=DEFAULT)
        wait_for(lambda: connection.get(f"callnfy:probe:{probe_id}:finished"), timeout=15)
        moved_after = time.monotonic() - killed_at
        assert survivor.poll() is None
        assert connection.get(f"rq:scheduler-lock:{DEFAULT}").decode() != holder  # another scheduler holds it
    finally:
        for worker in workers:
            try:
                os.killpg(worker.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            worker.wait(10)
    print(f"delayed job ran {moved_after:.1f} s after the scheduler's worker was killed")


def test_delayed_jobs_are_never_scheduled_before_their_time():
    """RQ keeps scheduled times in whole seconds, rounding down; ours round up instead."""
    from datetime import datetime

    from callnfy_integrations.queues import not_before

    moment = datetime(2026, 11, 26, 10, 0, 0, 700000, tzinfo=UTC)
    assert not_before(moment) == datetime(2026, 11, 26, 10, 0, 1, tzinfo=UTC)
    exact = datetime(2026, 11, 26, 10, 0, 5, tzinfo=UTC)
    assert not_before(exact) == exact


@pytest.mark.parametrize("debounce", [0, 1])
def test_a_calendars_sync_goes_ahead_of_other_accounts_queued_pushes(app, app_ctx, debounce, monkeypatch):
    """Pushes queue behind one another; a notification's sync of another calendar does not wait for them."""
    from callnfy_integrations.google import two_way
    from callnfy_integrations.queues import CALENDAR, get_queue

    monkeypatch.setitem(app.config, "GOOGLE_SYNC_DEBOUNCE_SECONDS", debounce)
    for _ in range(50):
        enqueue("jobs.google.sync_appointments", [str(uuid.uuid4())], queue=CALENDAR, result_ttl=0)
    integration_id = uuid.uuid4()
    assert two_way.request_sync(integration_id)
    queue = get_queue(CALENDAR)
    if debounce:  # waits in the scheduled registry; moved to the queue's front when due
        [job_id] = queue.scheduled_job_registry.get_job_ids()
        assert Job.fetch(job_id, connection=redis_connection()).should_enqueue_at_front()
    else:
        assert queue.job_ids[0].startswith(f"google-sync-{integration_id}-")
