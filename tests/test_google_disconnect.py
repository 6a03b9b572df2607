"""Disconnect and sync settings."""

import requests
from rq import Queue
from sqlalchemy import select

from callnfy_integrations.extensions import db
from callnfy_integrations.google import sync_mode, tokens
from callnfy_integrations.integrations.models import Integration
from callnfy_integrations.queues import CALENDAR, enqueue, redis_connection
from callnfy_integrations.worker import build_worker
from jobs.maintenance import record_heartbeat
from tests.google_fixtures import gctx, google_app, guser, sandbox  # noqa: F401


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
    assert response.json["error"]["message"] == "Google Calendar not connected"


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
    from tests.conftest import make_config
    from tests.google_fixtures import google_settings

    connected(guser)
    guser.client.delete("/integrations/google/disconnect", headers=guser.headers)
    settings = google_settings(guser.sandbox)
    down = create_app(make_config(database_url, servers["redis"], **{
        **settings, "GOOGLE_REVOKE_URL": "http://127.0.0.1:9/revoke"}))
    build_worker(down).work(burst=True)
    [job_id] = Queue(CALENDAR, connection=redis_connection()).scheduled_job_registry.get_job_ids()
    from rq.job import Job

    job = Job.fetch(job_id, connection=redis_connection())
    assert job.retries_left == 5  # failed once, scheduled to try again


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
    assert response.status_code == 404 and response.json["error"]["message"] == "Google Calendar not connected"
