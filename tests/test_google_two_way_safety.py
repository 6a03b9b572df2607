"""Two-way sync does no harm: only the owner's own events become appointments, an event Callnfy did not
create is never rewritten or deleted, and a change on each side at once ends with both sides agreeing,
a Callnfy change not yet pushed never dropped.

Against the Google sandbox over real HTTP (its notifications POSTed to the served app), with the
sandbox's owner endpoints playing the owner in Google Calendar and a stranger inviting them.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest
import requests
from sqlalchemy import func, select

from callnfy_integrations.customers.models import Customer
from callnfy_integrations.extensions import db
from callnfy_integrations.google.push_runs import push_appointment
from callnfy_integrations.integrations.models import GOOGLE_CALENDAR
from callnfy_integrations.queues import DEFAULT
from callnfy_integrations.worker import build_worker
from jobs.google import sync_calendar
from tests.google_fixtures import run_jobs
from tests.support import wait_for
from tests.two_way_fixtures import OWNER, TwoWayUser

pytestmark = pytest.mark.slow  # live-server two-way tests

START = datetime(2026, 12, 14, 10, 0, tzinfo=UTC)


def invite(tuser: TwoWayUser, *, start: datetime = START, response: str = "needsAction", **body) -> dict:
    """A stranger's invitation lands on the owner's calendar, with a real customer of theirs as a guest."""
    event = {"summary": "Let's talk", "start": {"dateTime": start.isoformat()},
             "end": {"dateTime": (start + timedelta(minutes=30)).isoformat()}, "responseStatus": response,
             "attendees": [{"email": "jane@example.com", "displayName": "Jane Smith"}], **body}
    answer = requests.post(f"{tuser.sandbox.url}/sandbox/user/{OWNER}/invitations", json=event, timeout=5)
    assert answer.status_code == 201, answer.text
    return answer.json()


def respond(tuser: TwoWayUser, event_id: str, response: str) -> None:
    answer = requests.post(f"{tuser.sandbox.url}/sandbox/user/{OWNER}/events/{event_id}/respond",
                           json={"responseStatus": response}, timeout=5)
    assert answer.status_code == 200, answer.text


def customers_of(tuser: TwoWayUser) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(Customer).where(Customer.user_id == tuser.user_id))


def google_event(tuser: TwoWayUser, event_id: str) -> dict:
    [event] = [e for e in tuser.sandbox.events(OWNER, live_only=False) if e["id"] == event_id]
    return event


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# -- only the owner's own events become appointments ----------------------------------------------

@pytest.mark.slow
def test_an_invitation_becomes_an_appointment_only_once_the_owner_accepts_it(tuser, sandbox):
    tuser.enable_two_way()
    # Jane is a real customer, phone and all: a stranger's invitation naming her must not reach her.
    tuser.create(customerName="Jane Smith", customerEmail="jane@example.com", customerPhone="+447700900123",
                 scheduledAt="2026-12-20T09:00:00Z")
    run_jobs(tuser.app)
    tuser.settle()
    customers = customers_of(tuser)

    unanswered = invite(tuser)
    declined = invite(tuser, start=START + timedelta(hours=2))
    respond(tuser, declined["id"], "declined")
    tentative = invite(tuser, start=START + timedelta(hours=4))
    respond(tuser, tentative["id"], "tentative")
    tuser.settle()
    assert len(tuser.appointments()) == 1 and customers_of(tuser) == customers

    respond(tuser, unanswered["id"], "accepted")
    own = tuser.google_create(summary="Owner's own", start_at=START + timedelta(days=1))
    tuser.settle()
    tuser.google_patch(own["id"], summary="Owner's own, renamed")  # another change to each: still once
    respond(tuser, unanswered["id"], "accepted")
    tuser.settle()

    imported = {a.link(GOOGLE_CALENDAR).event_id: a for a in tuser.appointments() if a.source == "google"}
    assert set(imported) == {unanswered["id"], own["id"]}
    assert imported[unanswered["id"]].scheduled_at == START and imported[unanswered["id"]].status == "scheduled"
    assert imported[own["id"]].scheduled_at == START + timedelta(days=1)


def test_a_burst_of_500_foreign_invitations_creates_no_appointment_and_no_customer(tuser, sandbox, caplog):
    tuser.enable_two_way()
    sandbox.settings(notify=False)  # one sync for the whole burst, run below
    for n in range(500):
        invite(tuser, start=START + timedelta(minutes=30 * n),
               attendees=[{"email": f"guest{n}@example.org", "displayName": f"Guest {n}"}])
    sandbox.settings(notify=True)
    with caplog.at_level(logging.INFO, logger="callnfy_integrations.google.two_way_runs"):
        assert sync_calendar(str(tuser.integration().id)) == "applied 0"
    assert tuser.appointments() == [] and customers_of(tuser) == 0
    [summary] = [r for r in caplog.records if r.getMessage() == "two-way sync skipped Google events"]
    assert summary.skipped == {"invitation not answered": 500} and summary.imported == 0


def test_one_sync_imports_at_most_the_cap_and_says_what_it_left(tuser, sandbox, caplog):
    tuser.enable_two_way()
    tuser.app.config["GOOGLE_IMPORT_MAX_PER_SYNC"] = 5
    try:
        sandbox.settings(notify=False)
        for n in range(8):
            tuser.google_create(summary=f"Own {n}", start_at=START + timedelta(hours=n))
        sandbox.settings(notify=True)
        with caplog.at_level(logging.INFO, logger="callnfy_integrations.google.two_way_runs"):
            sync_calendar(str(tuser.integration().id))
    finally:
        tuser.app.config["GOOGLE_IMPORT_MAX_PER_SYNC"] = 100
    assert sorted(a.notes for a in tuser.appointments()) == [f"Own {n}" for n in range(5)]
    assert "3 new Google events were not imported: one sync imports at most 5" in tuser.integration().sync_error
    [summary] = [r for r in caplog.records if r.getMessage() == "two-way sync skipped Google events"]
    assert summary.skipped == {"import cap reached": 3} and summary.imported == 5


# -- never rewrite or delete what Callnfy did not create ------------------------------------------

MEETING = {
    "summary": "Quarterly review", "description": "Agenda: numbers, plans.\nDial-in below.",
    "location": "Room 4", "colorId": "5",
    "start": {"dateTime": "2026-12-15T09:00:00-05:00", "timeZone": "America/New_York"},
    "end": {"dateTime": "2026-12-15T10:00:00-05:00", "timeZone": "America/New_York"},
    "attendees": [{"email": OWNER, "self": True, "organizer": True, "responseStatus": "accepted"},
                  {"email": "jane@example.com", "displayName": "Jane Smith", "responseStatus": "accepted"},
                  {"email": "raj@example.com", "displayName": "Raj Patel", "responseStatus": "needsAction"}],
    "conferenceData": {"conferenceId": "abc-defg-hij", "entryPoints": [
        {"entryPointType": "video", "uri": "https://meet.google.com/abc-defg-hij"}]},
    "hangoutLink": "https://meet.google.com/abc-defg-hij",
    "reminders": {"useDefault": False, "overrides": [{"method": "popup", "minutes": 15}]},
}
GOOGLE_OWNED = ("etag", "updated")  # what Google itself changes on every write


@pytest.mark.slow
def test_an_imported_meeting_keeps_all_but_its_time_and_is_left_in_google_when_cancelled(tuser, sandbox):
    tuser.enable_two_way()
    answer = requests.post(f"{sandbox.url}/sandbox/user/{OWNER}/events", json=MEETING, timeout=5)
    event_id = answer.json()["id"]
    tuser.settle()
    [appointment] = tuser.appointments()
    assert appointment.source == "google" and appointment.scheduled_at == datetime(2026, 12, 15, 14, 0,
                                                                                   tzinfo=UTC)
    public_id = tuser.client.get("/appointments", headers=tuser.headers).json["data"][0]["id"]
    before = google_event(tuser, event_id)
    writes = len(sandbox.writes())

    moved = tuser.client.patch(f"/appointments/{public_id}", headers=tuser.headers, json={
        "scheduledAt": "2026-12-15T16:00:00Z", "duration": 90, "notes": "Bring the numbers"})
    assert moved.status_code == 200, moved.json
    run_jobs(tuser.app)
    after = google_event(tuser, event_id)
    assert instant(after["start"]["dateTime"]) == datetime(2026, 12, 15, 16, 0, tzinfo=UTC)
    assert instant(after["end"]["dateTime"]) == datetime(2026, 12, 15, 17, 30, tzinfo=UTC)
    unchanged = lambda e: {k: v for k, v in e.items() if k not in GOOGLE_OWNED + ("start", "end")}  # noqa: E731
    assert unchanged(after) == unchanged(before)  # summary, description, guests, conference, reminders …
    assert after["start"]["timeZone"] == after["end"]["timeZone"] == "America/New_York"
    [patch] = sandbox.writes()[writes:]
    assert patch["endpoint"] == "events.patch" and set(patch["body"]) == {"start", "end"}
    assert set(patch["body"]["start"]) == {"dateTime"}
    tuser.settle()  # the echo of our patch: nothing changes back
    assert tuser.appointment(public_id)["scheduledAt"] == "2026-12-15T16:00:00.000Z"

    completed_meeting = google_event(tuser, event_id)
    cancelled = tuser.client.post(f"/appointments/{public_id}/cancel", headers=tuser.headers, json={})
    assert cancelled.status_code == 200
    run_jobs(tuser.app)
    tuser.settle()
    assert google_event(tuser, event_id) == completed_meeting  # still there, untouched
    assert len(sandbox.writes()) == writes + 1  # the one patch; no delete
    shown = tuser.appointment(public_id)
    assert shown["status"] == "cancelled"
    assert shown["googleSync"]["state"] == "synced" and shown["googleSync"]["leftInGoogle"] is True
    assert len(tuser.appointments()) == 1  # and it is not imported again


@pytest.mark.slow
def test_completing_an_imported_appointment_does_not_touch_the_meeting(tuser, sandbox):
    tuser.enable_two_way()
    event_id = requests.post(f"{sandbox.url}/sandbox/user/{OWNER}/events", json=MEETING, timeout=5).json()["id"]
    tuser.settle()
    public_id = tuser.client.get("/appointments", headers=tuser.headers).json["data"][0]["id"]
    before = google_event(tuser, event_id)
    done = tuser.client.post(f"/appointments/{public_id}/complete", headers=tuser.headers, json={})
    assert done.status_code == 200
    run_jobs(tuser.app)
    tuser.settle()
    after = google_event(tuser, event_id)
    assert {k: v for k, v in after.items() if k not in GOOGLE_OWNED} == \
        {k: v for k, v in before.items() if k not in GOOGLE_OWNED}


# -- both sides at once: the newer change wins, nothing pending is dropped ------------------------

def synced_appointment(tuser: TwoWayUser, at: str) -> tuple[str, str]:
    created = tuser.create(scheduledAt=at, duration=30)
    run_jobs(tuser.app)
    wait_for(lambda: tuser.appointment(created["id"])["googleSync"]["state"] == "synced")
    tuser.settle()  # the echo of our insert
    return created["id"], tuser.appointment(created["id"])["googleSync"]["eventId"]


@pytest.mark.slow
def test_a_google_edit_while_a_callnfy_move_backs_off_keeps_the_move(tuser, sandbox):
    """The owner moves the appointment to B in Callnfy; its push meets a 503 and backs off. The owner then
    edits the event's description in Google (still at A). The sync must not move it back to A."""
    tuser.enable_two_way()
    public_id, event_id = synced_appointment(tuser, "2026-12-16T09:00:00Z")
    sandbox.state.script("events.update", {"status": 503})
    tuser.client.patch(f"/appointments/{public_id}", json={"scheduledAt": "2026-12-16T15:00:00Z"},
                       headers=tuser.headers)
    run_jobs(tuser.app)
    backing_off = tuser.appointment(public_id)
    assert backing_off["googleSync"]["state"] == "failed" and "503" in backing_off["googleSync"]["error"]

    tuser.google_patch(event_id, description="Owner's note: parking at the back")
    tuser.settle()
    kept = tuser.appointment(public_id)
    assert kept["scheduledAt"] == "2026-12-16T15:00:00.000Z" and kept["googleSync"]["state"] != "synced"

    [appointment] = tuser.appointments()
    push_appointment(appointment.id)  # the retry, when its backoff ends
    tuser.settle()
    final = tuser.appointment(public_id)
    event = google_event(tuser, event_id)
    assert final["scheduledAt"] == "2026-12-16T15:00:00.000Z" and final["googleSync"]["state"] == "synced"
    assert instant(event["start"]["dateTime"]) == datetime(2026, 12, 16, 15, 0, tzinfo=UTC)


@pytest.mark.slow
def test_a_google_move_during_a_callnfy_push_ends_with_both_sides_agreeing(tuser, sandbox):
    """A push of version 2 is held inside Google while the owner moves the event and a sync reads that
    move. The sync waits for the push (they share the appointment's lock), then sees that what it listed
    is older than the push's write (Google's `updated`), and the two sides end equal, nothing pending.
    Before: the sync marked version 3 synced, the push then recorded version 2's etag as synced, and
    Google kept the push's time while Callnfy showed the move, each taking the other for an echo."""
    tuser.enable_two_way()
    public_id, event_id = synced_appointment(tuser, "2026-12-17T09:00:00Z")
    [appointment] = tuser.appointments()
    integration_id = str(tuser.integration().id)
    app = tuser.app

    tuser.client.patch(f"/appointments/{public_id}", json={"scheduledAt": "2026-12-17T11:00:00Z"},
                       headers=tuser.headers)
    build_worker(app, (DEFAULT,)).work(burst=True)  # dispatch: the appointment is pending; its push is run below
    sandbox.settings(notify=False)  # the syncs below are run by the test, in a known order
    requests.post(f"{sandbox.url}/sandbox/hold", json={"endpoint": "events.update"}, timeout=5).raise_for_status()
    outcomes: dict[str, object] = {}

    def in_app(name, work):
        def run():
            with app.app_context():
                outcomes[name] = work()
                db.session.remove()
        thread = threading.Thread(target=run)
        thread.start()
        return thread

    pushing = in_app("push", lambda: push_appointment(appointment.id))
    wait_for(lambda: requests.get(f"{sandbox.url}/sandbox/hold", timeout=5).json().get("events.update") == 1)
    tuser.google_patch(event_id, start={"dateTime": "2026-12-17T14:00:00+00:00"},
                       end={"dateTime": "2026-12-17T14:30:00+00:00"})
    lists = sandbox.calls("events.list")
    syncing = in_app("sync", lambda: sync_calendar(integration_id))
    wait_for(lambda: sandbox.calls("events.list") > lists)  # the sync has read the owner's move
    # Unserialised, the sync would apply the move now and its event be dispatched before the push ends
    # (the order that left the sides apart for good); serialised, it waits for the push's lock here.
    syncing.join(3)
    build_worker(app, (DEFAULT,)).work(burst=True)
    requests.delete(f"{sandbox.url}/sandbox/hold", timeout=5).raise_for_status()
    pushing.join(30)
    syncing.join(30)
    sandbox.settings(notify=True)
    assert not pushing.is_alive() and not syncing.is_alive()

    run_jobs(app)
    sync_calendar(integration_id)  # what Google's notifications of these writes would start
    run_jobs(app)
    final = tuser.appointment(public_id)
    event = google_event(tuser, event_id)
    assert instant(event["start"]["dateTime"]) == instant(final["scheduledAt"])
    assert final["googleSync"]["state"] == "synced"
    assert sync_calendar(integration_id) == "applied 0"  # and nothing moves any more
    assert tuser.appointment(public_id)["scheduledAt"] == final["scheduledAt"]
