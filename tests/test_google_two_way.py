"""Two-way sync against the Google sandbox: its notifications POSTed over HTTP to the running app,
real RQ workers, Zapier deliveries to a real HTTPS receiver.

The app is served over HTTP on loopback (PUBLIC_API_URL points at it), so the channel address the
sandbox posts to is this app's `/webhooks/google/calendar`. Google-side edits go through the
sandbox's owner endpoints (`/sandbox/user/<email>/events`), as a person editing in Google Calendar.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
from sqlalchemy import func, update

from callnfy_integrations import create_app
from callnfy_integrations.extensions import db
from callnfy_integrations.google.two_way import pending_key
from callnfy_integrations.integrations.models import GOOGLE_CALENDAR, Integration
from callnfy_integrations.public_ids import APPOINTMENT, decode
from callnfy_integrations.queues import CALENDAR, enqueue, get_queue, redis_connection
from tests.google_fixtures import google_settings, run_jobs
from tests.support import make_config, wait_for
from tests.two_way_fixtures import OWNER

pytestmark = pytest.mark.slow  # live-server two-way tests: about ten seconds together


def subscribe(user, receiver, event):
    """The user's Zapier key, and a REST-hook subscription to `event` on the receiver."""
    key = user.client.post("/integrations/zapier/generate-key", headers=user.headers).json["data"]["apiKey"]
    answer = user.client.post(f"/webhooks/zapier/{user.user_id}/subscriptions", headers={"X-Callnfy-Key": key},
                              json={"hookUrl": receiver.url(), "event": event})
    assert answer.status_code == 201, answer.json


def notify(app, channel_id, token, state="exists", resource_id=None):
    headers = {"X-Goog-Channel-ID": channel_id, "X-Goog-Resource-State": state, "X-Goog-Message-Number": "2"}
    if token is not None:
        headers["X-Goog-Channel-Token"] = token
    if resource_id:
        headers["X-Goog-Resource-ID"] = resource_id
    return requests.post(f"{app.config['LIVE_URL']}/webhooks/google/calendar", headers=headers, timeout=5)


def channel_secret(sandbox, channel_id):
    with sandbox.state.lock:
        return sandbox.state.channels[channel_id]["token"]


def list_calls(sandbox) -> int:
    return sandbox.calls("events.list")


# -- switching on ------------------------------------------------------------------------------------

def test_enabling_two_way_takes_a_baseline_without_importing_and_opens_a_channel(tuser, sandbox):
    assert tuser.connect() == {"success": "true"}
    run_jobs(tuser.app)
    old = tuser.google_create(summary="Before the baseline")  # must not be imported
    sandbox.reset_counts()
    tuser.set_mode("two-way")
    run_jobs(tuser.app)

    integration = wait_for(lambda: tuser.integration().channel_id and tuser.integration())
    assert integration.sync_token and integration.two_way_since and integration.last_sync_at
    assert len(integration.channel_id) <= 64 and integration.channel_expires_at > datetime.now(UTC)
    [watch] = [r for r in sandbox.state.requests if r["endpoint"] == "events.watch"]
    assert watch["body"]["address"] == f"{tuser.app.config['LIVE_URL']}/webhooks/google/calendar"
    assert watch["body"]["id"] == integration.channel_id and watch["body"]["params"]["ttl"] == str(7 * 86400)
    secret = channel_secret(sandbox, integration.channel_id)
    assert len(secret) >= 32 and integration.channel_token_hash != secret  # only its hash is kept
    [baseline, window] = [r for r in sandbox.state.requests if r["endpoint"] == "events.list"]
    assert "items" not in baseline["query"]["fields"]  # the baseline reads tokens, not events
    assert window["query"]["singleEvents"] == "true"  # then the busy copy, which notifications keep fresh
    assert tuser.appointments() == []  # nothing from before the baseline
    assert old["id"]


# -- Google → Callnfy -------------------------------------------------------------------------------

def test_a_google_side_create_becomes_an_appointment_delivered_to_zapier(tuser, sandbox, receiver):
    tuser.enable_two_way()
    subscribe(tuser, receiver, "appointment.created")
    writes_before = len(sandbox.writes())

    event = tuser.google_create()
    tuser.settle()

    [appointment] = tuser.appointments()
    assert appointment.source == "google" and appointment.link(GOOGLE_CALENDAR).event_id == event["id"]
    assert appointment.scheduled_at == datetime(2026, 12, 10, 15, 0, tzinfo=UTC)
    assert appointment.duration == 45 and appointment.status == "scheduled"
    assert (appointment.customer.name, appointment.customer.email, appointment.customer.phone) == (
        "Jane Smith", "jane@example.com", None)
    assert appointment.notes == "Consultation"
    wait_for(lambda: receiver.requests, timeout=10)
    [delivered] = receiver.requests
    body = json.loads(delivered.body)
    assert body["event"] == "appointment.created"
    assert decode(APPOINTMENT, body["data"]["id"]) == appointment.id
    assert body["data"]["source"] == "google" and body["data"]["customerPhone"] is None
    assert len(sandbox.writes()) == writes_before  # never pushed back to Google
    assert tuser.appointment(body["data"]["id"])["googleSync"]["state"] == "synced"


def test_all_day_free_recurring_and_tentative_events_are_not_imported(tuser, sandbox):
    tuser.enable_two_way()
    requests.post(f"{sandbox.url}/sandbox/user/{OWNER}/events", timeout=5, json={
        "summary": "Holiday", "start": {"date": "2026-12-24"}, "end": {"date": "2026-12-25"}})
    tuser.google_create(summary="Focus time", transparency="transparent")
    tuser.google_create(summary="Weekly", recurrence=["RRULE:FREQ=WEEKLY"])
    tuser.google_create(summary="Maybe", status="tentative")
    tuser.google_create(summary="Three days", minutes=3 * 24 * 60)  # bad data: recorded, skipped
    tuser.google_create(summary="Real one")
    tuser.settle()
    assert [a.notes for a in tuser.appointments()] == ["Real one"]
    assert "outside 1-1440" in tuser.integration().sync_error
    assert "outside 1-1440" in tuser.status()["syncError"]  # visible to the SPA


@pytest.mark.slow
def test_a_google_side_move_reschedules_and_a_delete_cancels_and_zapier_hears_it(tuser, sandbox, receiver):
    tuser.enable_two_way()
    created = tuser.create(scheduledAt="2026-12-03T10:00:00Z", duration=30)
    run_jobs(tuser.app)  # pushed to Google (one-way rules still apply in two-way)
    wait_for(lambda: tuser.appointment(created["id"])["googleSync"]["state"] == "synced")
    event_id = tuser.appointment(created["id"])["googleSync"]["eventId"]
    tuser.settle()  # the echo of our own push
    subscribe(tuser, receiver, "appointment.cancelled")
    subscribe(tuser, receiver, "appointment.rescheduled")
    writes_before = len(sandbox.writes())

    tuser.google_patch(event_id, start={"dateTime": "2026-12-03T11:30:00+00:00"},
                       end={"dateTime": "2026-12-03T12:30:00+00:00"})
    tuser.settle()
    moved = tuser.appointment(created["id"])
    assert moved["scheduledAt"] == "2026-12-03T11:30:00.000Z" and moved["duration"] == 60
    assert moved["status"] == "scheduled" and moved["googleSync"]["state"] == "synced"

    tuser.google_delete(event_id)
    tuser.settle()
    cancelled = tuser.appointment(created["id"])
    assert cancelled["status"] == "cancelled" and cancelled["cancelReason"] == "Cancelled in Google Calendar"
    wait_for(lambda: len(receiver.requests) == 2, timeout=10)
    bodies = {b["event"]: b for b in (json.loads(r.body) for r in receiver.requests)}
    rescheduled = bodies["appointment.rescheduled"]["data"]
    assert rescheduled["id"] == created["id"]
    assert (rescheduled["scheduledAt"], rescheduled["duration"]) == ("2026-12-03T11:30:00.000Z", 60)
    assert (rescheduled["previousScheduledAt"], rescheduled["previousDuration"]) == ("2026-12-03T10:00:00.000Z", 30)
    body = bodies["appointment.cancelled"]
    assert body["event"] == "appointment.cancelled" and body["data"]["id"] == created["id"]
    assert body["data"]["reason"] == "Cancelled in Google Calendar"
    assert len(sandbox.writes()) == writes_before  # neither change was pushed back


def test_a_callnfy_change_is_pushed_once_and_its_echo_ignored(tuser, sandbox):
    tuser.enable_two_way()
    sandbox.reset_counts()
    created = tuser.create(scheduledAt="2026-12-04T09:00:00Z")
    run_jobs(tuser.app)  # push → Google notifies → our sync sees our own write
    tuser.settle()
    before = tuser.appointment(created["id"])
    assert sandbox.calls("events.insert") == 1 and sandbox.calls("events.update") == 0
    assert list_calls(sandbox) == 1  # the echo's incremental sync

    tuser.client.patch(f"/appointments/{created['id']}", json={"scheduledAt": "2026-12-04T13:00:00Z"},
                       headers=tuser.headers)
    run_jobs(tuser.app)
    tuser.settle()
    run_jobs(tuser.app)
    after = tuser.appointment(created["id"])
    assert sandbox.calls("events.insert") == 1 and sandbox.calls("events.update") == 1  # no ping-pong
    assert after["scheduledAt"] == "2026-12-04T13:00:00.000Z" and after["googleSync"]["state"] == "synced"
    assert after["updatedAt"] >= before["updatedAt"]
    assert len(tuser.appointments()) == 1


# -- notifications ---------------------------------------------------------------------------------

@pytest.mark.shows_status(("POST", "/webhooks/google/calendar", "200"))
def test_a_burst_of_50_notifications_makes_at_most_two_list_calls(tuser, sandbox):
    tuser.enable_two_way()
    integration = tuser.integration()
    secret = channel_secret(sandbox, integration.channel_id)
    tuser.google_create()
    wait_for(sandbox.notified)  # the sandbox's own notification for it has been taken in
    sandbox.reset_counts()
    answers = [notify(tuser.app, integration.channel_id, secret, resource_id=integration.channel_resource_id)
               for _ in range(50)]
    assert {a.status_code for a in answers} == {200}
    assert get_queue(CALENDAR).count <= 1
    run_jobs(tuser.app)
    assert list_calls(sandbox) <= 2
    assert len(tuser.appointments()) == 1


def test_with_the_default_debounce_a_burst_waits_as_one_scheduled_sync(tuser, sandbox, database_url, servers):
    from rq.registry import ScheduledJobRegistry

    tuser.enable_two_way()
    tuser.settle()
    integration = tuser.integration()
    secret = channel_secret(sandbox, integration.channel_id)
    debounced = create_app(make_config(database_url, servers["redis"], **google_settings(sandbox)))
    assert debounced.config["GOOGLE_SYNC_DEBOUNCE_SECONDS"] == 1
    client = debounced.test_client()
    for _ in range(30):
        answer = client.post("/webhooks/google/calendar", headers={
            "X-Goog-Channel-ID": integration.channel_id, "X-Goog-Channel-Token": secret,
            "X-Goog-Resource-State": "exists"})
        assert answer.status_code == 200
    assert get_queue(CALENDAR).count == 0  # nothing runs at once …
    scheduled = ScheduledJobRegistry(queue=get_queue(CALENDAR))
    assert scheduled.count == 1  # … one sync waits its second, for the whole burst


def test_wrong_token_or_unknown_channel_is_404_and_enqueues_nothing(tuser, sandbox):
    tuser.enable_two_way()
    integration = tuser.integration()
    run_jobs(tuser.app)
    redis_connection().delete(pending_key(integration.id))
    for channel_id, token in ((integration.channel_id, "wrong"), (integration.channel_id, None),
                              ("callnfy-unknown", channel_secret(sandbox, integration.channel_id))):
        answer = notify(tuser.app, channel_id, token)
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "NOT_FOUND"
    assert get_queue(CALENDAR).count == 0 and not redis_connection().exists(pending_key(integration.id))
    sync_state = notify(tuser.app, integration.channel_id, channel_secret(sandbox, integration.channel_id), "sync")
    assert sync_state.status_code == 200 and get_queue(CALENDAR).count == 0  # `sync` asks for nothing


@pytest.mark.slow
def test_a_410_rebaselines_with_nothing_lost_or_duplicated(tuser, sandbox):
    tuser.enable_two_way()
    linked = tuser.create(scheduledAt="2026-12-05T09:00:00Z")
    run_jobs(tuser.app)
    wait_for(lambda: tuser.appointment(linked["id"])["googleSync"]["state"] == "synced")
    event_id = tuser.appointment(linked["id"])["googleSync"]["eventId"]
    imported = tuser.google_create(summary="Imported once")
    tuser.settle()
    assert len(tuser.appointments()) == 2

    # While Google drops our sync token: a new event, and the linked one deleted.
    sandbox.state.script("events.list", {"status": 410, "reason": "fullSyncRequired"})
    tuser.google_delete(event_id)
    fresh = tuser.google_create(summary="Made during the gap")
    tuser.settle()
    by_note = {a.notes: a for a in tuser.appointments()}
    assert set(by_note) == {linked["notes"], "Imported once", "Made during the gap"}
    assert len(tuser.appointments()) == 3
    assert tuser.appointment(linked["id"])["status"] == "cancelled"
    token_after = tuser.integration().sync_token

    tuser.google_patch(imported["id"], summary="touched")  # another change: a normal incremental sync
    tuser.settle()
    assert len(tuser.appointments()) == 3 and tuser.integration().sync_token != token_after
    assert fresh["id"] in {a.link(GOOGLE_CALENDAR).event_id for a in tuser.appointments()}


# -- the channel's life ------------------------------------------------------------------------------

def test_renewal_opens_the_new_channel_before_stopping_the_old_and_accepts_both_meanwhile(tuser, sandbox):
    from jobs.google import stop_channels, sweep_two_way

    tuser.enable_two_way()
    current = tuser.integration()
    old = type("Old", (), {"id": current.id, "channel_id": current.channel_id,
                           "channel_resource_id": current.channel_resource_id})
    old_secret = channel_secret(sandbox, old.channel_id)
    db.session.execute(update(Integration).where(Integration.id == old.id).values(
        channel_expires_at=func.now() + timedelta(hours=2)))
    db.session.commit()
    # The old one cannot be stopped yet: neither inline nor by the job's first try (its retry is later).
    sandbox.state.script("channels.stop", {"status": 503}, {"status": 503})
    enqueue(sweep_two_way, queue=CALENDAR)
    from callnfy_integrations.worker import build_worker

    build_worker(tuser.app, (CALENDAR,)).work(burst=True)  # the sweep and the renewal (its stop fails)

    renewed = tuser.integration()
    assert renewed.channel_id != old.channel_id and renewed.previous_channel_id == old.channel_id
    new_secret = channel_secret(sandbox, renewed.channel_id)
    assert notify(tuser.app, old.channel_id, old_secret).status_code == 200  # both accepted meanwhile
    assert notify(tuser.app, renewed.channel_id, new_secret).status_code == 200
    watch_then_stop = [r["endpoint"] for r in sandbox.state.requests if r["endpoint"] in ("events.watch",
                                                                                           "channels.stop")]
    assert watch_then_stop[-3:] == ["events.watch", "channels.stop", "channels.stop"]  # opened, then the old stopped

    stop_channels(str(renewed.id), [[old.channel_id, old.channel_resource_id]])  # the retried stop job
    assert tuser.integration().previous_channel_id is None
    assert notify(tuser.app, old.channel_id, old_secret).status_code == 404
    with sandbox.state.lock:
        assert list(sandbox.state.channels) == [renewed.channel_id]


def test_switching_back_to_one_way_stops_the_channel(tuser, sandbox):
    tuser.enable_two_way()
    integration = tuser.integration()
    secret = channel_secret(sandbox, integration.channel_id)
    tuser.set_mode("one-way")
    assert notify(tuser.app, integration.channel_id, secret).status_code == 404  # refused from the commit on
    run_jobs(tuser.app)
    after = tuser.integration()
    assert after.channel_id is None and after.sync_token is None
    assert sandbox.calls("channels.stop") == 1
    with sandbox.state.lock:
        assert sandbox.state.channels == {}


def test_disconnecting_stops_the_channel_too(tuser, sandbox):
    tuser.enable_two_way()
    integration = tuser.integration()
    secret = channel_secret(sandbox, integration.channel_id)
    assert tuser.client.delete("/integrations/google/disconnect", headers=tuser.headers).status_code == 200
    assert notify(tuser.app, integration.channel_id, secret).status_code == 404
    run_jobs(tuser.app)
    with sandbox.state.lock:
        assert sandbox.state.channels == {}


def test_reconnecting_in_two_way_mode_takes_a_fresh_baseline(tuser, sandbox):
    tuser.enable_two_way()
    first = tuser.integration()
    first_channel, first_token = first.channel_id, first.sync_token
    db.session.execute(update(Integration).where(Integration.id == first.id).values(status="reauthorization_required"))
    db.session.commit()
    assert tuser.connect() == {"success": "true"}
    run_jobs(tuser.app)
    again = wait_for(lambda: tuser.integration().channel_id != first_channel and tuser.integration())
    assert again.sync_mode == "two-way" and again.sync_token and again.sync_token != first_token
    with sandbox.state.lock:
        assert list(sandbox.state.channels) == [again.channel_id]  # the old channel was stopped


@pytest.mark.shows_status(("POST", "/webhooks/google/calendar", "429"))
def test_notifications_are_rate_limited_per_client_address(database_url, servers, sandbox, app):
    limited = create_app(make_config(database_url, servers["redis"], GOOGLE_PUSH_RATE_LIMIT="3 per minute",
                                     **google_settings(sandbox)))
    client = limited.test_client()
    answers = [client.post("/webhooks/google/calendar", headers={"X-Goog-Channel-ID": "callnfy-x",
                                                                 "X-Goog-Channel-Token": "t",
                                                                 "X-Goog-Resource-State": "exists"})
               for _ in range(4)]
    assert [a.status_code for a in answers] == [404, 404, 404, 429]
    assert answers[-1].json["error"]["code"] == "TOO_MANY_REQUESTS" and int(answers[-1].headers["Retry-After"]) >= 1


def test_the_safety_sync_runs_for_every_two_way_calendar_without_notifications(tuser, sandbox):
    from jobs.google import safety_sync

    tuser.enable_two_way()
    tuser.settle()
    sandbox.settings(notify=False)  # Google's notification is lost
    tuser.google_create(summary="Only the safety sync sees this")
    wait_for(sandbox.notified)
    assert not redis_connection().exists(pending_key(tuser.integration().id))
    before = tuser.integration().last_sync_at
    assert safety_sync() == 1
    run_jobs(tuser.app)
    assert [a.notes for a in tuser.appointments()] == ["Only the safety sync sees this"]
    assert tuser.integration().last_sync_at > before


def test_google_trouble_during_a_sync_is_retried_with_backoff_and_keeps_the_token(tuser, sandbox):
    from rq.registry import ScheduledJobRegistry

    tuser.enable_two_way()
    tuser.settle()
    token = tuser.integration().sync_token
    sandbox.state.script("events.list", {"status": 503})
    tuser.google_create()
    tuser.settle()
    integration = tuser.integration()
    assert integration.sync_token == token and integration.sync_attempts == 1
    assert integration.sync_error == ("GOOGLE_UNAVAILABLE: Google Calendar is having trouble (HTTP 503 backendError); "
                                      "will retry")
    assert ScheduledJobRegistry(queue=get_queue(CALENDAR)).count == 1  # the retry waits for its backoff
    assert tuser.appointments() == []


@pytest.mark.processes
def test_with_real_worker_processes_a_google_side_create_arrives_through_the_debounced_sync(
        tuser, sandbox, config):
    """Production's path: a `flask worker` process with RQ's scheduler and the default 1 s debounce."""
    from tests.google_fixtures import worker_env
    from tests.support import run_flask

    tuser.enable_two_way()
    tuser.settle()
    env = worker_env(config, sandbox, PUBLIC_API_URL=tuser.app.config["LIVE_URL"], LOG_LEVEL="WARNING")
    worker = run_flask(env, "worker", "--queue", "default", "--queue", "calendar")
    tuser.app.config["GOOGLE_SYNC_DEBOUNCE_SECONDS"] = 1.0  # the served app, as in production
    try:
        started = time.monotonic()
        tuser.google_create(summary="Booked in Google")
        [appointment] = wait_for(tuser.appointments, timeout=20)
        elapsed = time.monotonic() - started
    finally:
        tuser.app.config["GOOGLE_SYNC_DEBOUNCE_SECONDS"] = 0.0
        worker.terminate()
        worker.wait(20)
    assert appointment.notes == "Booked in Google" and appointment.source == "google"
    assert 1.0 <= elapsed < 10  # the debounce's second, then RQ's scheduler and the sync
