"""Disconnect and sync settings."""

import pytest
import requests
from rq import Queue
from sqlalchemy import select, update

from callnfy_integrations.extensions import db
from callnfy_integrations.google import sync_mode, tokens
from callnfy_integrations.integrations.models import Integration
from callnfy_integrations.queues import CALENDAR, enqueue, redis_connection
from callnfy_integrations.timestamps import utcnow
from callnfy_integrations.worker import build_worker
from jobs.maintenance import record_heartbeat


def connected(guser):
    assert guser.connect() == {"success": "true"}
    return db.session.scalars(select(Integration).where(Integration.user_id == guser.user_id)).one()


def open_channel(row, sandbox):
    """A watch channel at Google, recorded on the integration as the two-way sync will."""
    response = requests.post(f"{sandbox.url}/calendar/v3/calendars/primary/events/watch", timeout=5, json={
        "id": "chan-test-1", "type": "web_hook", "address": "http://127.0.0.1:9/ignored", "token": "t"},
        headers={"Authorization": f"Bearer {tokens.decrypt(row, tokens.ACCESS_FIELD)}"})
    assert response.status_code == 200, response.text
    row.channel_id, row.channel_resource_id = "chan-test-1", response.json()["resourceId"]
    db.session.commit()


@pytest.mark.shows_status(("DELETE", "/integrations/google/disconnect", "200"))
def test_disconnect_forgets_at_once_then_revokes_and_stops_the_channel(guser, sandbox, google_app):
    sandbox.settings(notify=False)
    row = connected(guser)
    refresh_token = tokens.decrypt(row, tokens.REFRESH_FIELD)
    open_channel(row, sandbox)

    response = guser.client.delete("/integrations/google/disconnect", headers=guser.headers)
    assert response.json == {"success": True, "message": "Google Calendar disconnected successfully"}
    assert guser.status() == {"connected": False}
    assert db.session.scalars(select(Integration)).all() == []
    assert sandbox.state.refresh_tokens[refresh_token]["revoked"] is False  # not yet: the job does it

    build_worker(google_app).work(burst=True)
    assert sandbox.state.refresh_tokens[refresh_token]["revoked"] is True
    assert "chan-test-1" not in sandbox.state.channels and sandbox.calls("channels.stop") == 1


def test_second_disconnect_is_404(guser):
    connected(guser)
    guser.client.delete("/integrations/google/disconnect", headers=guser.headers)
    response = guser.client.delete("/integrations/google/disconnect", headers=guser.headers)
    assert response.status_code == 404
    assert response.json == {"success": False, "error": {  # the spec's example error, this endpoint's message
        "code": "INTEGRATION_NOT_FOUND", "message": "Google Calendar not connected",
        "details": "Please connect Google Calendar first"}}


def test_disconnect_cancels_the_users_queued_google_jobs(guser):
    connected(guser)
    mine = enqueue(record_heartbeat, queue=CALENDAR, meta={"user_id": str(guser.user_id)})
    theirs = enqueue(record_heartbeat, queue=CALENDAR, meta={"user_id": "someone-else"})
    guser.client.delete("/integrations/google/disconnect", headers=guser.headers)
    assert mine.get_status(refresh=True) == "canceled"
    assert theirs.get_status(refresh=True) == "queued"
    assert theirs.id in Queue(CALENDAR, connection=redis_connection()).get_job_ids()


def test_revocation_is_retried_when_google_is_down(guser, google_app, database_url, servers):
    from callnfy_integrations import create_app
    from tests.google_fixtures import google_settings
    from tests.support import make_config

    connected(guser)
    guser.client.delete("/integrations/google/disconnect", headers=guser.headers)
    settings = google_settings(guser.sandbox)
    down = create_app(make_config(database_url, servers["redis"], **{
        **settings, "GOOGLE_REVOKE_URL": "http://127.0.0.1:9/revoke"}))
    build_worker(down).work(burst=True)
    [job_id] = Queue(CALENDAR, connection=redis_connection()).scheduled_job_registry.get_job_ids()
    from rq.job import Job

    job = Job.fetch(job_id, connection=redis_connection())
    intervals = google_app.config["GOOGLE_REVOKE_RETRY_SECONDS"]
    assert job.retries_left == len(intervals) - 1  # failed once, scheduled to try again


@pytest.mark.shows_status(("PUT", "/integrations/google/settings", "200"))
def test_settings_switch_sync_mode_and_call_hooks(guser):
    row = connected(guser)
    seen = []
    sync_mode.on_sync_mode_change(lambda integration_id, old, new: seen.append((integration_id, old, new)))
    try:
        response = guser.client.put("/integrations/google/settings", json={"syncMode": "two-way"},
                                    headers=guser.headers)
        assert response.json == {"success": True, "data": {"syncMode": "two-way"}}
        assert guser.status()["syncMode"] == "two-way"
        guser.client.put("/integrations/google/settings", json={"syncMode": "two-way"}, headers=guser.headers)
        assert seen == [(row.id, "one-way", "two-way")]  # unchanged mode: no hook
    finally:
        sync_mode._hooks.pop()


def test_settings_reject_bad_modes_with_the_contract_message(guser):
    connected(guser)
    for body in ({"syncMode": "both-ways"}, {"syncMode": 2}, {}, {"syncMode": None}):
        response = guser.client.put("/integrations/google/settings", json=body, headers=guser.headers)
        assert response.status_code == 400, body
        assert response.json["error"]["message"] == "Invalid sync mode. Must be 'one-way' or 'two-way'"
    assert guser.status()["syncMode"] == "one-way"


def test_settings_when_not_connected_is_404(guser):
    response = guser.client.put("/integrations/google/settings", json={"syncMode": "two-way"},
                                headers=guser.headers)
    assert response.status_code == 404 and response.json["error"] == {
        "code": "INTEGRATION_NOT_FOUND", "message": "Google Calendar not connected",
        "details": "Please connect Google Calendar first"}


def test_disconnect_while_redis_is_down_still_revokes_later(guser, google_app, sandbox, database_url, servers):
    """The revocation is an outbox event in the disconnect's own transaction: Redis being away when
    the user disconnects delays it, and loses nothing."""
    from callnfy_integrations import create_app
    from callnfy_integrations.events.models import Event
    from jobs.events import sweep_outbox
    from tests.google_fixtures import google_settings
    from tests.support import make_config

    row = connected(guser)
    refresh_token = tokens.decrypt(row, tokens.REFRESH_FIELD)
    no_redis = create_app(make_config(database_url, "redis://127.0.0.1:1/0", **google_settings(sandbox)))
    from tests.factories import auth_headers

    response = no_redis.test_client().delete("/integrations/google/disconnect", headers=auth_headers(guser.user_id))
    assert response.status_code == 200, response.json
    assert db.session.scalars(select(Integration)).all() == []
    [event] = db.session.scalars(select(Event).where(Event.type == "google.disconnected")).all()
    assert refresh_token not in str(event.payload)  # ciphertexts only

    db.session.execute(update(Event).values(next_attempt_at=utcnow()))  # the outbox grace has passed
    db.session.commit()
    assert sweep_outbox() == 1
    build_worker(google_app).work(burst=True)  # dispatch → the revocation job → Google
    assert sandbox.state.refresh_tokens[refresh_token]["revoked"] is True


def test_disconnect_turns_the_users_appointment_sync_off(guser, google_app):
    from callnfy_integrations.calendar_sync.models import CalendarLink

    connected(guser)
    appointment = guser.create()
    build_worker(google_app).work(burst=True)
    assert guser.appointment(appointment["id"])["googleSync"]["state"] == "synced"
    guser.client.delete("/integrations/google/disconnect", headers=guser.headers)
    assert guser.appointment(appointment["id"])["googleSync"]["state"] == "off"
    assert db.session.scalars(select(CalendarLink.next_sync_at)).all() == [None]


@pytest.mark.processes
def test_a_failed_revocation_runs_again_on_its_delay_with_real_processes(guser, google_app, sandbox, config):
    """Delayed retries need RQ's scheduler: every `flask worker` runs one. Revoke fails twice at
    Google, and the third try, a second later each time, succeeds."""
    from tests.google_fixtures import worker_env
    from tests.support import run_flask, wait_for

    row = connected(guser)
    refresh_token = tokens.decrypt(row, tokens.REFRESH_FIELD)
    sandbox.state.script("revoke", {"status": 503}, {"status": 503})
    guser.client.delete("/integrations/google/disconnect", headers=guser.headers)
    worker = run_flask(worker_env(config, sandbox, GOOGLE_REVOKE_RETRY_SECONDS="1,1,1"), "worker")
    try:
        wait_for(lambda: sandbox.state.refresh_tokens[refresh_token]["revoked"], timeout=30)
    finally:
        worker.terminate()
        output, _ = worker.communicate(timeout=30)
    assert sandbox.calls("revoke") == 3, output
    assert refresh_token not in output


# -- a late revocation must not end a newer connection ------------------------------------------------

def refresh_token_of(guser) -> str:
    db.session.expire_all()
    row = db.session.scalars(select(Integration).where(Integration.user_id == guser.user_id)).one()
    return tokens.decrypt(row, tokens.REFRESH_FIELD)


def assert_connection_works(guser, google_app):
    """Pushing an appointment needs a fresh access token from the refresh token: Google must accept both."""
    with google_app.app_context():
        row = db.session.scalars(select(Integration).where(Integration.user_id == guser.user_id)).one()
        row.token_expires_at = utcnow()  # the next call refreshes first
        db.session.commit()
        db.session.remove()
    appointment = guser.create()
    build_worker(google_app).work(burst=True)
    assert guser.appointment(appointment["id"])["googleSync"]["state"] == "synced"
    assert guser.status()["connected"] is True


def revocation_event():
    from callnfy_integrations.events.models import Event

    db.session.expire_all()
    [event] = db.session.scalars(select(Event).where(Event.type == "google.disconnected")).all()
    return event


def test_a_reconnect_before_the_revocation_runs_keeps_the_new_connection_working(guser, sandbox, google_app):
    """Google revokes per account and client: the old grant's revocation would end the new one too."""
    connected(guser)
    old = refresh_token_of(guser)
    guser.client.delete("/integrations/google/disconnect", headers=guser.headers)  # its job not run yet
    assert guser.connect() == {"success": "true"}  # the same Google account again
    new = refresh_token_of(guser)
    build_worker(google_app).work(burst=True)  # dispatch, then the revocation job
    assert sandbox.calls("revoke") == 0
    assert not sandbox.state.refresh_tokens[new]["revoked"] and not sandbox.state.refresh_tokens[old]["revoked"]
    assert_connection_works(guser, google_app)
    payload = revocation_event().payload
    assert payload["refreshToken"] is None and payload["accessToken"] is None  # ciphertexts of no more use


def test_a_reconnect_to_another_google_account_still_revokes_the_old_one(guser, sandbox, google_app):
    connected(guser)
    old = refresh_token_of(guser)
    guser.client.delete("/integrations/google/disconnect", headers=guser.headers)
    assert guser.connect(email="other@example.com") == {"success": "true"}
    new = refresh_token_of(guser)
    build_worker(google_app).work(burst=True)
    assert sandbox.state.refresh_tokens[old]["revoked"] and not sandbox.state.refresh_tokens[new]["revoked"]
    assert_connection_works(guser, google_app)


def test_another_users_connection_to_the_same_google_account_survives_a_disconnect(guser, sandbox, google_app):
    from tests.google_fixtures import GoogleUser

    colleague = GoogleUser(google_app, sandbox)  # another Callnfy account, the same Google calendar
    assert colleague.connect() == {"success": "true"}
    connected(guser)
    guser.client.delete("/integrations/google/disconnect", headers=guser.headers)
    build_worker(google_app).work(burst=True)
    assert sandbox.calls("revoke") == 0
    assert_connection_works(colleague, google_app)


def test_a_revocation_waits_while_the_user_is_part_way_through_a_reconnect(guser, sandbox, google_app):
    connected(guser)
    guser.client.delete("/integrations/google/disconnect", headers=guser.headers)
    auth_url = guser.auth_url()  # pressed Connect: at Google's consent page now
    build_worker(google_app).work(burst=True)
    assert sandbox.calls("revoke") == 0  # the account the user will pick is not known yet
    scheduled = Queue(CALENDAR, connection=redis_connection()).scheduled_job_registry
    [job_id] = scheduled.get_job_ids()  # tried again later
    assert guser.callback(guser.consent(auth_url)) == {"success": "true"}
    scheduled.requeue(job_id)  # its delay is over
    build_worker(google_app).work(burst=True)
    assert sandbox.calls("revoke") == 0
    assert not sandbox.state.refresh_tokens[refresh_token_of(guser)]["revoked"]
    assert_connection_works(guser, google_app)
    # Abandoned instead: once the consent's state has expired, the revocation goes ahead.
    from callnfy_integrations.google.revocation import connecting_key

    old = refresh_token_of(guser)
    guser.client.delete("/integrations/google/disconnect", headers=guser.headers)
    guser.auth_url()
    build_worker(google_app).work(burst=True)
    [job_id] = scheduled.get_job_ids()
    redis_connection().delete(connecting_key(guser.user_id))  # ten minutes later: expired with the state
    scheduled.requeue(job_id)
    build_worker(google_app).work(burst=True)
    assert sandbox.state.refresh_tokens[old]["revoked"] is True
