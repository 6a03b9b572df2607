"""The operators' CLI, each command run as a real `flask` subprocess against the test servers."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
from sqlalchemy import select

from callnfy_integrations.events.models import Event
from callnfy_integrations.extensions import db
from callnfy_integrations.integrations.models import GOOGLE_CALENDAR, Integration
from callnfy_integrations.queues import get_queue, redis_connection
from callnfy_integrations.timestamps import format_timestamp, utcnow
from callnfy_integrations.zapier.models import WebhookDelivery
from jobs.maintenance import HEARTBEAT_KEY
from tests.google_fixtures import run_jobs, worker_env
from tests.support import REPO_ROOT
from tests.zapier_fixtures import Account, run_worker


def flask(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flask", *args], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=60)


def hooks_env(process_env, ca_bundle):
    return {**process_env, "WEBHOOK_ALLOWED_HOSTS": "localhost", "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
            "WEBHOOK_CA_BUNDLE": ca_bundle, "LOG_LEVEL": "WARNING"}


def statuses():
    db.session.expire_all()
    return sorted(d.status for d in db.session.scalars(select(WebhookDelivery)))


@pytest.mark.processes
def test_deliveries_replay_dead_sends_them_again_from_the_start(hooks_app, account, receiver, process_env,
                                                               ca_bundle):
    account.subscribe(receiver.url(), "call.received")
    other = Account(hooks_app)
    other.subscribe(receiver.url("/other"), "call.received")
    receiver.answer(*[500] * 8)
    from tests.factories import call_body

    account.client.post("/calls", json=call_body(), headers=account.headers)
    other.client.post("/calls", json=call_body(), headers=other.headers)
    run_worker(hooks_app)  # 4 attempts each on the 0,0,0 schedule: both dead
    assert statuses() == ["dead", "dead"]
    env = hooks_env(process_env, ca_bundle)

    refused = flask(env, "deliveries", "replay", "--dead", "--since", "yesterday")
    assert refused.returncode == 2 and "not an ISO-8601 time" in refused.stderr
    future = format_timestamp(utcnow() + timedelta(days=1))
    assert "replaying 0 dead deliveries" in flask(env, "deliveries", "replay", "--dead", "--since", future).stdout
    assert statuses() == ["dead", "dead"]

    result = flask(env, "deliveries", "replay", "--dead", "--user", str(account.user_id))
    assert result.returncode == 0 and "replaying 1 dead deliveries" in result.stdout, result.stderr
    run_worker(hooks_app)
    db.session.expire_all()
    mine = db.session.scalars(select(WebhookDelivery).where(WebhookDelivery.user_id == account.user_id)).one()
    assert (mine.status, mine.attempts) == ("delivered", 1)  # a fresh schedule, and the receiver is back
    assert statuses() == ["dead", "delivered"]  # the other account's was left alone


@pytest.mark.processes
def test_google_resync_pushes_every_upcoming_appointment_again(guser, sandbox, config):
    assert guser.connect() == {"success": "true"}
    far = guser.create(scheduledAt=format_timestamp(utcnow() + timedelta(days=200)))  # beyond the backfill
    run_jobs(guser.client.application)
    assert len(sandbox.events()) == 1
    requests_before = sandbox.calls("events.update") + sandbox.calls("events.insert")
    result = flask(worker_env(config, sandbox, LOG_LEVEL="WARNING"), "google", "resync", str(guser.user_id))
    assert result.returncode == 0 and "re-pushing 1 appointments" in result.stdout, result.stderr
    run_jobs(guser.client.application)
    assert sandbox.calls("events.update") + sandbox.calls("events.insert") == requests_before + 1
    assert guser.appointment(far["id"])["googleSync"]["state"] == "synced"
    missing = flask(worker_env(config, sandbox), "google", "resync", "00000000-0000-4000-8000-00000000dead")
    assert missing.returncode == 1 and "no healthy Google Calendar connection" in missing.stderr


@pytest.mark.processes
def test_google_renew_channels_opens_a_new_channel_and_stops_the_old(guser, sandbox, config):
    assert guser.connect() == {"success": "true"}
    guser.client.put("/integrations/google/settings", json={"syncMode": "two-way"}, headers=guser.headers)
    run_jobs(guser.client.application)
    db.session.expire_all()
    old = db.session.scalars(select(Integration.channel_id).where(Integration.user_id == guser.user_id,
                                                                  Integration.provider == GOOGLE_CALENDAR)).one()
    assert old
    result = flask(worker_env(config, sandbox, LOG_LEVEL="WARNING"), "google", "renew-channels", "--all")
    assert result.returncode == 0 and "renewed" in result.stdout and "1 channels" in result.stdout, result.stderr
    db.session.expire_all()
    new = db.session.scalars(select(Integration).where(Integration.user_id == guser.user_id)).one()
    assert new.channel_id != old and new.previous_channel_id is None
    with sandbox.state.lock:
        assert list(sandbox.state.channels) == [new.channel_id]


@pytest.mark.processes
def test_outbox_sweep_dispatches_what_redis_lost(app, app_ctx, process_env, user_id):
    from tests.factories import appointment_body, auth_headers

    client = app.test_client()
    assert client.post("/appointments", json=appointment_body(), headers=auth_headers(user_id)).status_code == 201
    redis_connection().flushdb()  # the doorbell and its job are gone
    db.session.execute(Event.__table__.update().values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    result = flask(process_env, "outbox", "sweep")
    assert result.returncode == 0 and "re-enqueued 1 events" in result.stdout, result.stderr
    assert get_queue("default").count == 1


@pytest.mark.processes
def test_worker_health_is_a_dyno_health_check(app, app_ctx, process_env):
    period = app.config["SCHEDULER_HEARTBEAT_SECONDS"]
    nothing = flask(process_env, "worker-health")
    assert nothing.returncode == 1 and "no heartbeat" in nothing.stderr
    redis_connection().set(HEARTBEAT_KEY, format_timestamp(utcnow() - timedelta(seconds=period)))
    fresh = flask(process_env, "worker-health")
    assert fresh.returncode == 0 and fresh.stdout.startswith("healthy"), fresh.stderr
    redis_connection().set(HEARTBEAT_KEY, format_timestamp(utcnow() - timedelta(seconds=4 * period)))
    stale = flask(process_env, "worker-health")
    assert stale.returncode == 1 and "unhealthy" in stale.stderr


# -- rotate-encryption-key --------------------------------------------------------------------------

@pytest.mark.processes
def test_rotation_covers_pending_google_revocations_so_they_run_once_the_old_key_is_dropped(
        app, database_url, servers, sandbox, process_env):
    """Revocations still to run (one retrying in Redis, one queued before jobs took an event id) need
    their tokens after the rotation; `--check` says when the old key may go."""
    import base64
    import os

    from callnfy_integrations import create_app
    from callnfy_integrations.google import tokens
    from callnfy_integrations.google.revocation import REVOKE_JOB
    from callnfy_integrations.queues import CALENDAR, enqueue
    from callnfy_integrations.worker import build_worker
    from tests.google_fixtures import GoogleUser, fresh_sandbox, google_settings
    from tests.support import make_config

    old_key, new_key = os.urandom(32), os.urandom(32)
    keys = lambda *ks: ",".join(base64.b64encode(k).decode() for k in ks)  # noqa: E731
    settings = google_settings(sandbox)
    old_app = create_app(make_config(database_url, servers["redis"], ENCRYPTION_KEYS=keys(old_key), **settings))
    google_down = create_app(make_config(database_url, servers["redis"], ENCRYPTION_KEYS=keys(old_key), **{
        **settings, "GOOGLE_REVOKE_URL": "http://127.0.0.1:9/revoke"}))
    fresh_sandbox(sandbox)
    refresh_tokens = []
    with old_app.app_context():
        retrying, legacy = GoogleUser(old_app, sandbox), GoogleUser(old_app, sandbox)
        for user, email in ((retrying, "one@example.com"), (legacy, "two@example.com")):
            assert user.connect(email=email) == {"success": "true"}
            row = db.session.scalars(select(Integration).where(Integration.user_id == user.user_id)).one()
            refresh_tokens.append(tokens.decrypt(row, tokens.REFRESH_FIELD))
        retrying.client.delete("/integrations/google/disconnect", headers=retrying.headers)
        build_worker(google_down).work(burst=True)  # its revocation fails once, and waits for its retry
        # As the release before this one did it: the job carries the ciphertexts, named after its event.
        legacy.client.delete("/integrations/google/disconnect", headers=legacy.headers)
        event = db.session.scalars(select(Event).where(Event.user_id == legacy.user_id)).one()
        event.dispatched_at = utcnow()
        db.session.commit()
        payload = event.payload
        enqueue(REVOKE_JOB, payload["userId"], payload["refreshToken"], payload["accessToken"], None, None, None,
                None, queue=CALENDAR, job_id=f"google-revoke-{event.id}")
        scheduled = get_queue(CALENDAR).scheduled_job_registry
        [retry_id] = scheduled.get_job_ids()
        db.session.remove()

    both = {**process_env, "ENCRYPTION_KEYS": keys(new_key, old_key), "LOG_LEVEL": "WARNING"}
    before = flask(both, "rotate-encryption-key", "--check")
    assert before.returncode == 1 and "4 stored secrets still use an old key" in before.stderr, before.stderr
    rotated = flask(both, "rotate-encryption-key")
    assert rotated.returncode == 0, rotated.stderr
    assert "re-encrypted 4 tokens of pending Google revocations" in rotated.stdout
    assert "the old keys can be dropped" in rotated.stdout
    assert flask(both, "rotate-encryption-key", "--check").returncode == 0

    new_only = create_app(make_config(database_url, servers["redis"], ENCRYPTION_KEYS=keys(new_key), **settings))
    with new_only.app_context():
        scheduled.requeue(retry_id)  # its delay is over
        build_worker(new_only).work(burst=True)
        db.session.remove()
    assert [sandbox.state.refresh_tokens[token]["revoked"] for token in refresh_tokens] == [True, True]
