"""One-way sync over both providers: one suite, run against the Google and the Microsoft sandboxes over
real HTTP, with real RQ workers on real Redis. What differs between them is in `Google` / `Microsoft`
below (how each sandbox is read and scripted); every assertion is the engine's, for both."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import requests
from sqlalchemy import select

from callnfy_integrations.calendar_sync import push as engine
from callnfy_integrations.calendar_sync.adapter import adapter_for
from callnfy_integrations.calendar_sync.models import CalendarLink
from callnfy_integrations.extensions import db
from callnfy_integrations.integrations.models import GOOGLE_CALENDAR, MICROSOFT_CALENDAR
from callnfy_integrations.public_ids import APPOINTMENT, decode
from callnfy_integrations.queues import CALENDAR, get_queue
from tests.google_fixtures import GoogleUser, fresh_sandbox, google_settings, run_jobs
from tests.microsoft_fixtures import MicrosoftUser, microsoft_settings

OWNER = "owner@example.com"


class Google:
    name, provider, key, left_key = "google", GOOGLE_CALENDAR, "googleSync", "leftInGoogle"
    create_call, update_call = "events.insert", "events.update"

    def __init__(self, sandbox):
        self.sandbox = sandbox

    def user(self, app, user_id=None):
        user = GoogleUser(app, self.sandbox)
        if user_id is not None:
            user.user_id, user.headers = user_id, _headers(user_id)
        return user

    def events(self) -> list[dict]:
        return self.sandbox.events(OWNER)

    def start_of(self, event: dict) -> datetime:
        return datetime.fromisoformat(event["start"]["dateTime"]).astimezone(UTC)

    def calls(self, name: str) -> int:
        return self.sandbox.calls(name)

    def script(self, name: str, *responses: dict) -> None:
        self.sandbox.state.script(name, *responses)

    def revoke(self) -> None:
        """The owner revokes Callnfy's access: the next refresh is `invalid_grant`."""
        self.sandbox.state.script("token:refresh_token", {"status": 400, "reason": "invalid_grant"})

    def owner_delete(self, event_id: str) -> None:
        """The owner deletes the event in their calendar."""
        assert requests.delete(f"{self.sandbox.url}/sandbox/user/{OWNER}/events/{event_id}",
                               timeout=5).status_code == 204


class Microsoft:
    name, provider, key, left_key = "microsoft", MICROSOFT_CALENDAR, "microsoftSync", "leftInOutlook"
    create_call, update_call = "events.create", "events.update"

    def __init__(self, sandbox):
        self.sandbox = sandbox

    def user(self, app, user_id=None):
        user = MicrosoftUser(app, self.sandbox)
        if user_id is not None:
            user.user_id, user.headers = user_id, _headers(user_id)
        return user

    def events(self) -> list[dict]:
        return [e for e in self.sandbox.events(OWNER) if not e.get("isCancelled")]

    def start_of(self, event: dict) -> datetime:
        from callnfy_integrations.dev.microsoft_sandbox.times import moment

        return moment(event["start"])

    def calls(self, name: str) -> int:
        return self.sandbox.calls(name)

    def script(self, name: str, *responses: dict) -> None:
        self.sandbox.state.script(name, *responses)

    def revoke(self) -> None:
        self.sandbox.control("post", f"/revoke/{OWNER}").raise_for_status()

    owner_delete = Google.owner_delete


def _headers(user_id):
    from tests.factories import auth_headers

    return auth_headers(user_id)


@pytest.fixture(scope="module")
def calendars_app(database_url, servers, sandbox, ms_sandbox, app):
    from callnfy_integrations import create_app
    from tests.support import make_config

    return create_app(make_config(database_url, servers["redis"], **google_settings(sandbox),
                                  **microsoft_settings(ms_sandbox)))


@pytest.fixture
def cctx(calendars_app, sandbox, ms_sandbox):
    fresh_sandbox(sandbox)
    ms_sandbox.fresh()
    with calendars_app.app_context():
        yield calendars_app
        db.session.remove()
    ms_sandbox.fresh()


# Google's half is in the full suite only: tests/test_google_sync.py covers it in the fast loop.
@pytest.fixture(params=[pytest.param("google", marks=pytest.mark.slow), "microsoft"])
def side(request, sandbox, ms_sandbox):
    return Google(sandbox) if request.param == "google" else Microsoft(ms_sandbox)


@pytest.fixture
def owner(side, calendars_app, cctx):
    """A user connected to this provider, the connect's backfill done."""
    user = side.user(calendars_app)
    assert user.connect() == {"success": "true"}
    run_jobs(calendars_app)
    return user


def uuid_of(appointment: dict):
    return decode(APPOINTMENT, appointment["id"])


def link(appointment: dict, provider: str) -> CalendarLink | None:
    db.session.expire_all()
    return db.session.get(CalendarLink, (uuid_of(appointment), provider))


# -- the shared behaviour ----------------------------------------------------------------------------

def test_create_makes_one_event_and_shows_synced(side, owner, calendars_app):
    before = side.calls(side.create_call)
    appointment = owner.create(scheduledAt="2026-12-01T10:00:00.000Z", duration=45)
    run_jobs(calendars_app)
    assert side.calls(side.create_call) == before + 1
    assert side.calls(side.update_call) == 0  # one call: nothing written twice
    [event] = side.events()
    assert side.start_of(event) == datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    shown = owner.appointment(appointment["id"])[side.key]
    assert shown["state"] == "synced" and shown["eventId"] == event["id"] and shown["error"] is None
    assert shown[side.left_key] is False


def test_reschedule_changes_the_same_event_and_cancel_removes_it(side, owner, calendars_app):
    appointment = owner.create(scheduledAt="2026-12-01T10:00:00.000Z")
    run_jobs(calendars_app)
    [first] = side.events()
    response = owner.client.patch(f"/appointments/{appointment['id']}", headers=owner.headers,
                                  json={"scheduledAt": "2026-12-02T11:30:00.000Z"})
    assert response.status_code == 200, response.json
    run_jobs(calendars_app)
    [moved] = side.events()
    assert moved["id"] == first["id"] and side.start_of(moved) == datetime(2026, 12, 2, 11, 30, tzinfo=UTC)
    assert owner.appointment(appointment["id"])[side.key]["state"] == "synced"
    response = owner.client.post(f"/appointments/{appointment['id']}/cancel", headers=owner.headers, json={})
    assert response.status_code == 200, response.json
    run_jobs(calendars_app)
    assert side.events() == []
    assert owner.appointment(appointment["id"])[side.key]["state"] == "synced"


def test_a_retried_create_never_makes_a_second_event(side, owner, calendars_app):
    """The answer to a create was lost (a timeout, a killed worker): the push is sent again from the
    same plan, with no event id recorded. Google's deterministic id and Graph's transactionId make
    the second create find the first event."""
    from jobs.events import drain_outbox

    appointment = owner.create()
    drain_outbox()  # dispatch marks it pending; its push job is left queued
    plan = engine.plan_push(side.provider, uuid_of(appointment))
    db.session.commit()
    adapter = adapter_for(side.provider)
    first, second = adapter.send(plan), adapter.send(plan)
    assert first.event_id == second.event_id
    assert len(side.events()) == 1


def test_a_deleted_event_of_ours_is_written_anew_on_the_next_change(side, owner, calendars_app):
    appointment = owner.create()
    run_jobs(calendars_app)
    [event] = side.events()
    side.owner_delete(event["id"])
    owner.client.patch(f"/appointments/{appointment['id']}", headers=owner.headers, json={"notes": "again"})
    run_jobs(calendars_app)
    [again] = side.events()
    shown = owner.appointment(appointment["id"])[side.key]
    assert shown["state"] == "synced" and shown["eventId"] == again["id"]


def test_rate_limit_is_retried_after_the_providers_retry_after(side, owner, calendars_app):
    side.script(side.create_call, {"status": 429, "reason": "rateLimitExceeded" if side.name == "google"
                                   else "ApplicationThrottled", "retryAfter": 120})
    appointment = owner.create()
    run_jobs(calendars_app)  # a burst worker runs no scheduler: the retry stays scheduled
    shown = owner.appointment(appointment["id"])[side.key]
    assert shown["state"] == "failed" and "will retry" in shown["error"]
    row = link(appointment, side.provider)
    assert row.attempts == 1
    waits = (row.next_sync_at - db.session.scalar(select(db.func.now()))).total_seconds()
    assert waits >= 120  # Retry-After wins over the shorter backoff
    scheduled = get_queue(CALENDAR).scheduled_job_registry.get_job_ids()
    assert len(scheduled) == 1


def test_a_refused_request_fails_for_good_until_the_appointment_changes(side, owner, calendars_app):
    side.script(side.create_call, {"status": 400, "reason": "invalid" if side.name == "google" else "BadRequest"})
    appointment = owner.create()
    run_jobs(calendars_app)
    shown = owner.appointment(appointment["id"])[side.key]
    assert shown["state"] == "failed" and "400" in shown["error"] and "will retry" not in shown["error"]
    assert link(appointment, side.provider).next_sync_at is None
    listed = owner.client.get(f"/integrations/{side.name}/sync-errors", headers=owner.headers)
    assert listed.status_code == 200 and [e["appointmentId"] for e in listed.json["data"]] == [appointment["id"]]
    assert listed.json["data"][0]["state"] == "failed" and listed.json["data"][0]["nextAttemptAt"] is None
    owner.client.patch(f"/appointments/{appointment['id']}", headers=owner.headers, json={"notes": "fixed"})
    run_jobs(calendars_app)
    assert owner.appointment(appointment["id"])[side.key]["state"] == "synced"
    assert owner.client.get(f"/integrations/{side.name}/sync-errors", headers=owner.headers).json["data"] == []


def test_an_expired_access_token_is_refreshed_once(side, owner, calendars_app):
    side.script(side.create_call, {"status": 401, "reason": "authError" if side.name == "google"
                                   else "InvalidAuthenticationToken"})
    appointment = owner.create()
    run_jobs(calendars_app)
    assert owner.appointment(appointment["id"])[side.key]["state"] == "synced"
    assert len(side.events()) == 1


def test_a_revoked_grant_waits_for_a_reconnect(side, owner, calendars_app):
    db.session.execute(db.text("UPDATE integrations SET token_expires_at = now() - interval '1 minute' "
                               "WHERE user_id = :user_id"), {"user_id": owner.user_id})
    db.session.commit()
    side.revoke()
    appointment = owner.create()
    run_jobs(calendars_app)
    shown = owner.appointment(appointment["id"])[side.key]
    assert shown["state"] == "pending" and "reconnected" in shown["error"]
    assert owner.status()["reauthorizationRequired"] is True
    assert side.events() == []
    assert owner.connect() == {"success": "true"}  # reconnecting re-drives it
    run_jobs(calendars_app)
    assert owner.appointment(appointment["id"])[side.key]["state"] == "synced"
    assert len(side.events()) == 1


def test_disconnect_stops_pushing(side, owner, calendars_app):
    appointment = owner.create()
    run_jobs(calendars_app)
    response = owner.client.delete(f"/integrations/{side.name}/disconnect", headers=owner.headers)
    assert response.status_code == 200, response.json
    run_jobs(calendars_app)
    writes = side.calls(side.update_call)
    owner.client.patch(f"/appointments/{appointment['id']}", headers=owner.headers, json={"notes": "later"})
    run_jobs(calendars_app)
    assert side.calls(side.update_call) == writes
    assert owner.appointment(appointment["id"])[side.key]["state"] == "off"


# -- both at once ------------------------------------------------------------------------------------

@pytest.mark.slow
def test_with_both_connected_each_calendar_mirrors_the_appointment(calendars_app, cctx, sandbox, ms_sandbox):
    google = Google(sandbox).user(calendars_app)
    microsoft = Microsoft(ms_sandbox).user(calendars_app, google.user_id)
    assert google.connect() == {"success": "true"} and microsoft.connect() == {"success": "true"}
    appointment = google.create(scheduledAt="2026-12-01T10:00:00.000Z", duration=30)
    run_jobs(calendars_app)
    shown = google.appointment(appointment["id"])
    assert shown["googleSync"]["state"] == "synced" and shown["microsoftSync"]["state"] == "synced"
    [g] = Google(sandbox).events()
    [m] = Microsoft(ms_sandbox).events()
    assert Google(sandbox).start_of(g) == Microsoft(ms_sandbox).start_of(m) == datetime(2026, 12, 1, 10, tzinfo=UTC)
    # Outlook's copy carries Callnfy's tag: the busy copy counts it as the appointment, not twice.
    from callnfy_integrations.microsoft.event_body import tagged_appointment_id

    found = ms_sandbox.api(ms_sandbox.tokens()["access_token"], "GET", f"/me/events/{m['id']}",
                           params={"$expand": "singleValueExtendedProperties($filter=id eq "
                                              "'String {00020329-0000-0000-C000-000000000046} Name "
                                              "callnfyAppointmentId')"}).json()
    assert tagged_appointment_id(found) == uuid_of(appointment)
    # One calendar failing leaves the other alone.
    ms_sandbox.state.script("events.update", {"status": 503, "reason": "ServiceUnavailable", "retryAfter": 5})
    google.client.patch(f"/appointments/{appointment['id']}", headers=google.headers, json={"duration": 45})
    run_jobs(calendars_app)
    shown = google.appointment(appointment["id"])
    assert shown["googleSync"]["state"] == "synced" and shown["microsoftSync"]["state"] == "failed"
    assert "MICROSOFT_UNAVAILABLE" in shown["microsoftSync"]["error"]


def test_a_create_whose_answer_was_lost_is_brought_up_to_date_by_the_retry(calendars_app, cctx, ms_sandbox):
    """Outlook: a create made the event but its answer was lost, and the appointment moved before the
    retry. Graph answers the retry's transactionId with the event the first create made, at the old
    time; the push then PATCHes it, so Outlook does not keep the old time while Callnfy shows synced."""
    from jobs.events import drain_outbox

    side = Microsoft(ms_sandbox)
    owner = side.user(calendars_app)
    assert owner.connect() == {"success": "true"}
    run_jobs(calendars_app)
    appointment = owner.create(scheduledAt="2026-12-01T10:00:00.000Z", duration=30)
    drain_outbox()
    lost = adapter_for(MICROSOFT_CALENDAR).send(engine.plan_push(MICROSOFT_CALENDAR, uuid_of(appointment)))
    db.session.commit()  # the event exists in Outlook; Callnfy never recorded it
    moved = owner.client.patch(f"/appointments/{appointment['id']}", headers=owner.headers,
                               json={"scheduledAt": "2026-12-02T15:00:00.000Z", "duration": 45})
    assert moved.status_code == 200
    run_jobs(calendars_app)
    [event] = side.events()
    assert event["id"] == lost.event_id  # the same event, not a second one
    assert side.start_of(event) == datetime(2026, 12, 2, 15, tzinfo=UTC)
    from callnfy_integrations.dev.microsoft_sandbox.times import moment

    assert moment(event["end"]) == datetime(2026, 12, 2, 15, 45, tzinfo=UTC)
    shown = owner.appointment(appointment["id"])["microsoftSync"]
    assert shown["state"] == "synced" and shown["eventId"] == event["id"]


def test_a_cancel_after_a_create_whose_answer_was_lost_still_removes_the_event(calendars_app, cctx, ms_sandbox):
    """Outlook names an event when it is created: if that answer was lost, Callnfy has no event id when
    the appointment is cancelled. Callnfy's tag finds the event (a filter on the extended property)."""
    from jobs.events import drain_outbox

    side = Microsoft(ms_sandbox)
    owner = side.user(calendars_app)
    assert owner.connect() == {"success": "true"}
    run_jobs(calendars_app)
    appointment = owner.create()
    drain_outbox()
    adapter_for(MICROSOFT_CALENDAR).send(engine.plan_push(MICROSOFT_CALENDAR, uuid_of(appointment)))
    db.session.commit()  # made in Outlook, never recorded
    other = owner.create(customerName="Someone Else")
    response = owner.client.post(f"/appointments/{appointment['id']}/cancel", headers=owner.headers, json={})
    assert response.status_code == 200
    assert owner.appointment(appointment["id"])["microsoftSync"]["eventId"] is None
    run_jobs(calendars_app)  # the create's own push, then the cancel's: both find it cancelled
    [left] = side.events()
    assert left["id"] == owner.appointment(other["id"])["microsoftSync"]["eventId"]  # only the cancelled one went
    assert owner.appointment(appointment["id"])["microsoftSync"]["state"] == "synced"
