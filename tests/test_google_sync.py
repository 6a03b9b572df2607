"""One-way sync against the Google sandbox over real HTTP, with real RQ workers on real Redis."""

import os
import subprocess
import sys
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select, text, update

from callnfy_integrations.calendar_sync.models import CalendarLink
from callnfy_integrations.extensions import db
from callnfy_integrations.google import tokens
from callnfy_integrations.google.event_body import event_id_for
from callnfy_integrations.integrations.models import GOOGLE_CALENDAR, Integration
from callnfy_integrations.public_ids import APPOINTMENT, decode
from callnfy_integrations.queues import CALENDAR, enqueue
from callnfy_integrations.timestamps import utcnow
from jobs.google import sweep_google_sync
from tests.google_fixtures import run_jobs
from tests.support import REPO_ROOT

OWNER = "owner@example.com"


@pytest.fixture
def connected(guser, google_app, sandbox):
    """A user connected to Google, the connect's backfill job done (it learns the calendar's zone)."""
    assert guser.connect() == {"success": "true"}
    run_jobs(google_app)
    sandbox.reset_counts()
    return guser


def uuid_of(appointment: dict):
    return decode(APPOINTMENT, appointment["id"])


def test_create_pushes_one_insert_with_the_spec_body(connected, google_app, sandbox):
    appointment = connected.create(scheduledAt="2026-12-01T10:00:00.000Z", duration=45)
    run_jobs(google_app)
    [write] = sandbox.writes()
    assert write["endpoint"] == "events.insert" and write["query"]["sendUpdates"] == "none"
    assert write["body"] == {
        "id": event_id_for(uuid_of(appointment)),
        "summary": "Appointment with Ann Example",
        "description": "Callnfy appointment\nCustomer: Ann Example\nPhone: +447700900123\nNotes: First visit",
        "start": {"dateTime": "2026-12-01T10:00:00+00:00", "timeZone": "Europe/London"},
        "end": {"dateTime": "2026-12-01T10:45:00+00:00", "timeZone": "Europe/London"},
        "attendees": [{"email": "ann@example.com"}],
        "reminders": {"useDefault": True},
        "extendedProperties": {"private": {"callnfyAppointmentId": appointment["id"], "callnfyVersion": "1"}},
    }
    assert sandbox.calendar_calls() == 1  # fresh token: one write, nothing read first
    [event] = sandbox.events()
    shown = connected.appointment(appointment["id"])["googleSync"]
    assert shown["state"] == "synced" and shown["eventId"] == event["id"] and shown["error"] is None
    assert shown["syncedAt"].endswith("Z")
    assert connected.status()["lastSyncAt"] is not None


@pytest.mark.processes
def test_event_ids_are_base32hex_and_deterministic(connected, google_app, sandbox):
    appointment = connected.create()
    run_jobs(google_app)
    event_id = event_id_for(uuid_of(appointment))
    # Another process (its own hash seed and random state) derives the same id: a push retried on
    # another worker collides with the first insert instead of making a second event.
    derive = ("import sys, uuid\nfrom callnfy_integrations.google.event_body import event_id_for\n"
              "print(event_id_for(uuid.UUID(sys.argv[1])))\n")
    other = subprocess.run([sys.executable, "-c", derive, str(uuid_of(appointment))], cwd=REPO_ROOT,
                           env={**os.environ, "PYTHONHASHSEED": "random"}, capture_output=True, text=True, timeout=60)
    assert other.returncode == 0, other.stderr
    assert other.stdout.strip() == event_id
    assert [event["id"] for event in sandbox.events(OWNER)] == [event_id]  # the id Google was given
    assert 5 <= len(event_id) <= 1024 and set(event_id) <= set("0123456789abcdefghijklmnopqrstuv")


def test_reschedule_moves_the_same_event(connected, google_app, sandbox):
    appointment = connected.create(scheduledAt="2026-12-01T10:00:00.000Z")
    run_jobs(google_app)
    sandbox.reset_counts()
    connected.client.patch(f"/appointments/{appointment['id']}", json={"scheduledAt": "2026-12-02T15:30:00Z"},
                           headers=connected.headers)
    run_jobs(google_app)
    [write] = sandbox.writes()
    assert write["endpoint"] == "events.update" and write["path"].endswith(event_id_for(uuid_of(appointment)))
    [event] = sandbox.events()
    assert event["start"]["dateTime"] == "2026-12-02T15:30:00+00:00"
    assert event["end"]["dateTime"] == "2026-12-02T16:00:00+00:00"
    assert event["extendedProperties"]["private"]["callnfyVersion"] == "2"
    assert sandbox.calendar_calls() == 1


def test_details_change_updates_the_event(connected, google_app, sandbox):
    appointment = connected.create()
    run_jobs(google_app)
    connected.client.patch(f"/appointments/{appointment['id']}", json={"notes": "Bring X-rays",
                                                                      "customerName": "Ann Smith"},
                           headers=connected.headers)
    run_jobs(google_app)
    [event] = sandbox.events()
    assert event["summary"] == "Appointment with Ann Smith"
    assert event["description"].endswith("Notes: Bring X-rays")


def test_cancel_deletes_the_event_and_complete_keeps_it(connected, google_app, sandbox):
    kept, dropped = connected.create(), connected.create(scheduledAt="2026-12-03T09:00:00Z")
    run_jobs(google_app)
    sandbox.reset_counts()
    connected.client.post(f"/appointments/{dropped['id']}/cancel", json={"reason": "ill"}, headers=connected.headers)
    connected.client.post(f"/appointments/{kept['id']}/complete", json={"duration": 50}, headers=connected.headers)
    run_jobs(google_app)
    assert sorted(w["endpoint"] for w in sandbox.writes()) == ["events.delete", "events.update"]
    [event] = sandbox.events()
    assert event["id"] == event_id_for(uuid_of(kept))
    assert event["end"]["dateTime"] == "2026-12-01T10:50:00+00:00"  # the completed duration
    assert connected.appointment(dropped["id"])["googleSync"]["state"] == "synced"


def test_duplicate_and_out_of_order_pushes_make_one_current_event(connected, google_app, sandbox):
    appointment = connected.create()
    for minute in ("10", "20"):
        connected.client.patch(f"/appointments/{appointment['id']}", json={
            "scheduledAt": f"2026-12-01T11:{minute}:00Z"}, headers=connected.headers)
    for _ in range(3):  # the same push requested again and again, before and after the handlers' own
        enqueue("jobs.google.sync_appointments", [str(uuid_of(appointment))], queue=CALENDAR)
    run_jobs(google_app)
    [event] = sandbox.events()
    assert event["start"]["dateTime"] == "2026-12-01T11:20:00+00:00"
    assert event["extendedProperties"]["private"]["callnfyVersion"] == "3"
    assert sandbox.calls("events.insert") == 1
    assert connected.appointment(appointment["id"])["googleSync"]["state"] == "synced"


def test_insert_answered_409_updates_instead(connected, google_app, sandbox):
    appointment = connected.create()
    row = db.session.scalars(select(Integration).where(Integration.user_id == connected.user_id)).one()
    requests.post(f"{sandbox.url}/calendar/v3/calendars/primary/events", timeout=5, json={
        "id": event_id_for(uuid_of(appointment)), "summary": "stale"},
        headers={"Authorization": f"Bearer {tokens.decrypt(row, tokens.ACCESS_FIELD)}"}).raise_for_status()
    sandbox.reset_counts()
    run_jobs(google_app)
    assert [w["endpoint"] for w in sandbox.writes()] == ["events.insert", "events.update"]
    [event] = sandbox.events()
    assert event["summary"] == "Appointment with Ann Example"


def test_delete_answered_404_or_410_is_done(connected, google_app, sandbox):
    first, second = connected.create(), connected.create(scheduledAt="2026-12-04T09:00:00Z")
    run_jobs(google_app)
    sandbox.state.script("events.delete", {"status": 404}, {"status": 410})
    for appointment in (first, second):
        connected.client.post(f"/appointments/{appointment['id']}/cancel", json={}, headers=connected.headers)
    run_jobs(google_app)
    assert sandbox.calls("events.delete") == 2
    for appointment in (first, second):
        assert connected.appointment(appointment["id"])["googleSync"] == {
            **connected.appointment(appointment["id"])["googleSync"], "state": "synced", "error": None}


def test_401_refreshes_once_and_succeeds(connected, google_app, sandbox):
    sandbox.state.script("events.insert", 401)
    appointment = connected.create()
    run_jobs(google_app)
    assert sandbox.calls("token:refresh_token") == 1 and sandbox.calls("events.insert") == 2
    assert connected.appointment(appointment["id"])["googleSync"]["state"] == "synced"


def test_other_4xx_is_recorded_and_not_retried(connected, google_app, sandbox):
    sandbox.state.script("events.insert", {"status": 400, "reason": "invalid", "message": "Bad attendee"})
    appointment = connected.create()
    run_jobs(google_app)
    sync = connected.appointment(appointment["id"])["googleSync"]
    assert sync["state"] == "failed" and "400 invalid" in sync["error"] and "Bad attendee" in sync["error"]
    link = db.session.get(CalendarLink, (uuid_of(appointment), GOOGLE_CALENDAR), populate_existing=True)
    assert link.next_sync_at is None  # the sweeper leaves it alone
    assert sweep_google_sync() == 0
    # A later change to the appointment is pushed again.
    connected.client.patch(f"/appointments/{appointment['id']}", json={"notes": "fixed"}, headers=connected.headers)
    run_jobs(google_app)
    assert connected.appointment(appointment["id"])["googleSync"]["state"] == "synced"


def test_retryable_failure_is_recorded_with_a_backoff(connected, google_app, sandbox):
    sandbox.state.script("events.insert", {"status": 403, "reason": "userRateLimitExceeded"})
    appointment = connected.create()
    before = utcnow()
    run_jobs(google_app)  # a burst worker runs no scheduler: the retry stays scheduled
    sync = connected.appointment(appointment["id"])["googleSync"]
    assert sync["state"] == "failed" and "userRateLimitExceeded" in sync["error"]
    link = db.session.get(CalendarLink, (uuid_of(appointment), GOOGLE_CALENDAR), populate_existing=True)
    assert link.attempts == 1 and link.next_sync_at > before
    from rq import Queue

    from callnfy_integrations.queues import redis_connection

    assert len(Queue(CALENDAR, connection=redis_connection()).scheduled_job_registry.get_job_ids()) == 1


def test_invalid_grant_stops_calls_until_reconnect_then_converges(connected, google_app, sandbox):
    row = db.session.scalars(select(Integration).where(Integration.user_id == connected.user_id)).one()
    requests.post(f"{sandbox.url}/revoke", data={"token": tokens.decrypt(row, tokens.REFRESH_FIELD)}, timeout=5)
    db.session.execute(update(Integration).where(Integration.id == row.id)
                       .values(token_expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    first = connected.create()
    run_jobs(google_app)
    assert sandbox.calls("token:refresh_token") == 1 and sandbox.calendar_calls() == 0
    assert connected.status()["reauthorizationRequired"] is True
    shown = connected.appointment(first["id"])["googleSync"]
    assert shown["state"] == "pending" and shown["error"] == "Google Calendar needs to be reconnected"

    second = connected.create(scheduledAt="2026-12-05T09:00:00Z")
    connected.client.post(f"/appointments/{first['id']}/cancel", json={}, headers=connected.headers)
    run_jobs(google_app)
    assert sandbox.calendar_calls() == 0 and sandbox.calls("token:refresh_token") == 1  # nothing more

    assert connected.connect() == {"success": "true"}  # reconnect: pending work converges
    run_jobs(google_app)
    [event] = sandbox.events()
    assert event["id"] == event_id_for(uuid_of(second))
    assert connected.appointment(first["id"])["googleSync"]["state"] == "synced"


def test_dst_boundary_in_europe_london(connected, google_app, sandbox):
    # Clocks go forward at 01:00 UTC on 28 March 2027: a 60-minute meeting from 00:30 UTC ends 02:30 BST.
    connected.create(scheduledAt="2027-03-28T00:30:00Z", duration=60)
    run_jobs(google_app)
    [event] = sandbox.events()
    assert event["start"] == {"dateTime": "2027-03-28T00:30:00+00:00", "timeZone": "Europe/London"}
    assert event["end"] == {"dateTime": "2027-03-28T02:30:00+01:00", "timeZone": "Europe/London"}


def test_the_calendars_own_time_zone_is_learnt_on_connect(guser, google_app, sandbox):
    sandbox.settings(time_zones={OWNER: "America/New_York"})
    assert guser.connect() == {"success": "true"}
    run_jobs(google_app)
    assert sandbox.calls("events.list") == 1
    row = db.session.scalars(select(Integration).where(Integration.user_id == guser.user_id)).one()
    assert row.calendar_time_zone == "America/New_York"
    sandbox.reset_counts()
    guser.create(scheduledAt="2026-12-01T15:00:00Z")
    run_jobs(google_app)
    [event] = sandbox.events()
    assert event["start"] == {"dateTime": "2026-12-01T10:00:00-05:00", "timeZone": "America/New_York"}
    assert sandbox.calendar_calls() == 1


def test_attendee_only_with_an_email(connected, google_app, sandbox):
    connected.create(customerEmail=None, customerPhone="+447700900999", customerName="No Mail")
    run_jobs(google_app)
    [event] = sandbox.events()
    assert "attendees" not in event


def test_backfill_pushes_upcoming_scheduled_appointments_only(guser, google_app, sandbox):
    now = utcnow()

    def at(days):
        return (now + timedelta(days=days)).isoformat()

    past, soon, far = guser.create(scheduledAt=at(-1)), guser.create(scheduledAt=at(10)), guser.create(
        scheduledAt=at(100))
    cancelled = guser.create(scheduledAt=at(5))
    guser.client.post(f"/appointments/{cancelled['id']}/cancel", json={}, headers=guser.headers)
    run_jobs(google_app)  # their events dispatch with no Google connection: nothing to push
    assert sandbox.calendar_calls() == 0
    assert guser.connect() == {"success": "true"}
    run_jobs(google_app)
    assert [e["id"] for e in sandbox.events()] == [event_id_for(uuid_of(soon))]
    assert sandbox.calls("events.insert") == 1
    for other in (past, far, cancelled):
        assert guser.appointment(other["id"])["googleSync"]["state"] == "off"


@pytest.mark.slow
def test_backfill_respects_the_per_user_quota(guser, google_app, sandbox, database_url, servers):
    from callnfy_integrations import create_app
    from tests.google_fixtures import google_settings
    from tests.support import make_config

    slow = create_app(make_config(database_url, servers["redis"], GOOGLE_USER_RATE_LIMIT="3 per second",
                                  **google_settings(sandbox)))
    for day in range(1, 8):
        guser.create(scheduledAt=(utcnow() + timedelta(days=day)).isoformat())
    assert guser.connect() == {"success": "true"}
    started = utcnow()
    with slow.app_context():
        run_jobs(slow)
    elapsed = (utcnow() - started).total_seconds()
    assert len(sandbox.events()) == 7
    assert sandbox.calls("events.insert") + sandbox.calls("events.list") == 8
    assert elapsed >= 2.0  # 8 calls at 3 per second need at least two more windows


def test_sweeper_pushes_what_was_lost(connected, google_app, sandbox):
    from callnfy_integrations.queues import redis_connection
    from jobs.events import drain_outbox

    appointment = connected.create()
    drain_outbox()  # dispatch: marks it pending and enqueues its push ...
    redis_connection().flushdb()  # ... which Redis then loses
    assert sweep_google_sync() == 0  # not due yet: its own job has a grace period
    db.session.execute(text("UPDATE calendar_links SET next_sync_at = now() - interval '1 second' "
                            "WHERE state = 'pending'"))
    db.session.commit()
    assert sweep_google_sync() == 1
    assert sweep_google_sync() == 0  # claimed: not enqueued twice
    run_jobs(google_app)
    assert [e["id"] for e in sandbox.events()] == [event_id_for(uuid_of(appointment))]
    assert connected.appointment(appointment["id"])["googleSync"]["state"] == "synced"


def test_appointments_without_google_show_sync_off(guser):
    appointment = guser.create()
    assert guser.appointment(appointment["id"])["googleSync"] == {"state": "off", "eventId": None, "error": None,
                                                                   "syncedAt": None, "leftInGoogle": False}


def test_the_handler_finds_the_appointment_under_either_payload_key():
    import uuid

    from callnfy_integrations.appointments.payloads import appointment_id_of

    appointment_id = uuid.uuid4()
    public = "appt_" + appointment_id.hex
    assert appointment_id_of({"appointmentId": public}) == appointment_id
    assert appointment_id_of({"id": public, "customerId": "cust_" + uuid.uuid4().hex}) == appointment_id
    assert appointment_id_of({"id": "call_" + appointment_id.hex}) is None and appointment_id_of({}) is None
