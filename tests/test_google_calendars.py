"""Choosing calendars: GET /integrations/google/calendars over the sandbox (real HTTP), which calendars
count as busy, the calendar-list scope of older connections and reconnecting to get it, and the
busy time of a secondary calendar in GET /availability."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
import requests
from sqlalchemy import select, text

from callnfy_integrations.extensions import db
from callnfy_integrations.integrations.models import Integration
from tests.google_fixtures import GoogleUser

OWNER = "owner@example.com"
LIST_SCOPE = "https://www.googleapis.com/auth/calendar.calendarlist.readonly"
OLD_SCOPES = "openid email https://www.googleapis.com/auth/calendar.events"


def new_calendar(sandbox, summary: str, zone: str, email: str = OWNER) -> str:
    created = requests.post(f"{sandbox.url}/sandbox/user/{email}/calendars", timeout=5,
                            json={"summary": summary, "timeZone": zone})
    assert created.status_code == 201, created.text
    return created.json()["id"]


def calendars(user: GoogleUser):
    db.session.expire_all()  # requests share the test's app context, and so its session
    return user.client.get("/integrations/google/calendars", headers=user.headers)


def put_settings(user: GoogleUser, **values):
    db.session.expire_all()
    return user.client.put("/integrations/availability/settings", json=values, headers=user.headers)


def integration(user: GoogleUser) -> Integration:
    db.session.expire_all()
    return db.session.scalars(select(Integration).where(Integration.user_id == user.user_id)).one()


def test_connect_asks_for_the_calendar_list_too_and_records_the_granted_scopes(guser):
    query = guser.auth_url().split("?", 1)[1]
    assert quote(LIST_SCOPE, safe="") in query and "include_granted_scopes=true" in query
    assert guser.connect() == {"success": "true"}
    assert LIST_SCOPE in integration(guser).scopes.split()


@pytest.mark.shows_status(("GET", "/integrations/google/calendars", "200"))
def test_the_list_names_each_calendar_and_the_connected_one_counts_as_busy_by_default(guser, sandbox):
    work = new_calendar(sandbox, "Work", "America/New_York")
    guser.connect()
    sandbox.reset_counts()
    answer = calendars(guser)
    assert answer.status_code == 200, answer.json
    assert answer.json["data"] == [
        {"id": OWNER, "name": OWNER, "primary": True, "timeZone": "Europe/London", "busy": True},
        {"id": work, "name": "Work", "primary": False, "timeZone": "America/New_York", "busy": False}]
    [request] = [r for r in sandbox.state.requests if r["endpoint"] == "calendarList.list"]
    assert request["query"]["fields"] == "nextPageToken,items(id,summary,summaryOverride,primary,timeZone,accessRole)"


def test_every_page_of_the_calendar_list_is_read(guser, sandbox):
    made = [new_calendar(sandbox, f"Room {n:03}", "Europe/London") for n in range(260)]  # > one page of 250
    guser.connect()
    sandbox.reset_counts()
    answer = calendars(guser)
    assert answer.status_code == 200
    assert [c["id"] for c in answer.json["data"]] == [OWNER, *made]
    assert sandbox.calls("calendarList.list") == 2


def test_choosing_a_secondary_calendar_makes_it_the_busy_one_and_unknown_ids_are_refused(guser, sandbox):
    work = new_calendar(sandbox, "Work", "America/New_York")
    guser.connect()
    assert put_settings(guser, busyCalendars=[{"provider": "google", "calendarId": work}]).status_code == 200
    assert [(c["id"], c["busy"]) for c in calendars(guser).json["data"]] == [(OWNER, False), (work, True)]

    # The primary calendar by its own id, and "primary", both name the calendar listed as primary.
    for chosen in (OWNER, "primary"):
        assert put_settings(guser, busyCalendars=[{"provider": "google", "calendarId": chosen}]).status_code == 200
        assert [(c["id"], c["busy"]) for c in calendars(guser).json["data"]] == [(OWNER, True), (work, False)]

    before = guser.client.get("/integrations/availability/settings", headers=guser.headers).json["data"]
    stranger = new_calendar(sandbox, "Not the owner's", "UTC", email="someone@example.com")
    refused = put_settings(guser, busyCalendars=[{"provider": "google", "calendarId": work},
                                                 {"provider": "google", "calendarId": stranger}])
    assert refused.status_code == 400 and refused.json["error"]["code"] == "VALIDATION_ERROR"
    assert refused.json["error"]["details"] == {"busyCalendars": {"1": {"calendarId": [
        "Not one of your google calendars."]}}}
    assert guser.client.get("/integrations/availability/settings", headers=guser.headers).json["data"] == before


def test_an_unknown_id_is_accepted_when_the_list_cannot_be_read(guser, sandbox):
    guser.connect()
    sandbox.state.script("calendarList.list", 503)
    chosen = [{"provider": "google", "calendarId": "later@group.calendar.google.com"}]
    answer = put_settings(guser, busyCalendars=chosen)
    assert answer.status_code == 200 and answer.json["data"]["busyCalendars"] == chosen


@pytest.mark.shows_status(("GET", "/integrations/google/calendars", "403"))
def test_an_old_connection_is_403_insufficient_scope_and_reconnecting_fixes_it_keeping_everything(guser, sandbox):
    assert guser.connect(scopes=OLD_SCOPES) == {"success": "true"}
    assert put_settings(guser, bufferAfter=15, timeZone="UTC").status_code == 200
    db.session.execute(text("UPDATE integrations SET sync_mode = 'two-way', channel_id = 'chan-keep', "
                            "channel_resource_id = 'res-keep', sync_token = 'tok-keep', "
                            "calendar_time_zone = 'Europe/Paris'"))
    db.session.commit()
    before = integration(guser)
    kept = (before.id, before.sync_mode, before.calendar_id, before.channel_id, before.channel_resource_id,
            before.sync_token, before.calendar_time_zone, before.email)
    sandbox.reset_counts()

    refused = calendars(guser)
    assert refused.status_code == 403
    assert refused.json["error"]["code"] == "INSUFFICIENT_SCOPE"
    assert "reconnect Google Calendar" in refused.json["error"]["message"]
    assert sandbox.calls("calendarList.list") == 0  # known from the scopes recorded at connect

    assert guser.connect() == {"success": "true"}  # connect is allowed again
    after = integration(guser)
    assert (after.id, after.sync_mode, after.calendar_id, after.channel_id, after.channel_resource_id,
            after.sync_token, after.calendar_time_zone, after.email) == kept
    assert LIST_SCOPE in after.scopes.split()
    settings = guser.client.get("/integrations/availability/settings", headers=guser.headers).json["data"]
    assert (settings["bufferAfter"], settings["timeZone"]) == (15, "UTC")
    assert guser.status()["connected"] is True and guser.status()["syncMode"] == "two-way"
    assert calendars(guser).status_code == 200
    again = guser.client.post("/integrations/google/connect", headers=guser.headers)
    assert again.status_code == 409 and again.json["error"]["code"] == "ALREADY_CONNECTED"


def test_google_s_own_403_says_insufficient_scope_when_the_scopes_were_not_recorded(guser, sandbox):
    guser.connect(scopes=OLD_SCOPES)
    db.session.execute(text("UPDATE integrations SET scopes = NULL"))
    db.session.commit()
    sandbox.reset_counts()
    refused = calendars(guser)
    assert refused.status_code == 403 and refused.json["error"]["code"] == "INSUFFICIENT_SCOPE"
    assert sandbox.calls("calendarList.list") == 1


def test_not_connected_is_404(guser):
    answer = calendars(guser)
    assert answer.status_code == 404
    assert answer.json["error"] == {"code": "INTEGRATION_NOT_FOUND", "message": "Google Calendar not connected",
                                    "details": "Please connect Google Calendar first"}
    guser.connect()
    db.session.execute(text("UPDATE integrations SET status = 'reauthorization_required'"))
    db.session.commit()
    assert calendars(guser).status_code == 404


@pytest.mark.shows_status(*[("GET", "/integrations/google/calendars", status) for status in ("502", "503")])
def test_google_down_is_a_503_and_a_refusal_a_502_in_the_envelope(guser, sandbox):
    guser.connect()
    sandbox.state.script("calendarList.list", 503, {"status": 429, "retryAfter": 7}, {"status": 400})
    down = calendars(guser)
    assert down.status_code == 503 and down.json["success"] is False
    assert down.json["error"]["code"] == "GOOGLE_UNAVAILABLE"
    limited = calendars(guser)
    assert limited.status_code == 503 and limited.headers["Retry-After"] == "8"
    refused = calendars(guser)
    assert refused.status_code == 502 and refused.json["error"]["code"] == "GOOGLE_ERROR"
    assert calendars(guser).status_code == 200  # Google answers again


def test_each_owner_lists_only_their_own_calendars(google_app, guser, sandbox):
    mine = new_calendar(sandbox, "Mine", "UTC")
    theirs = new_calendar(sandbox, "Theirs", "UTC", email="other@example.com")
    guser.connect()
    other = GoogleUser(google_app, sandbox)
    other.connect(email="other@example.com")
    assert [c["id"] for c in calendars(guser).json["data"]] == [OWNER, mine]
    assert [c["id"] for c in calendars(other).json["data"]] == ["other@example.com", theirs]
    refused = put_settings(other, busyCalendars=[{"provider": "google", "calendarId": mine}])
    assert refused.status_code == 400 and "busyCalendars" in refused.json["error"]["details"]
    assert calendars(GoogleUser(google_app, sandbox)).status_code == 404  # a third user, not connected


def test_an_event_on_a_chosen_secondary_calendar_makes_the_owner_busy(guser, sandbox):
    work = new_calendar(sandbox, "Work", "UTC")
    guser.connect()
    assert put_settings(guser, timeZone="UTC",
                        busyCalendars=[{"provider": "google", "calendarId": work}]).status_code == 200
    day = (datetime.now(UTC) + timedelta(days=7)).replace(hour=0, minute=0, second=0, microsecond=0)

    def event(path: str, hour: int):
        start, end = day + timedelta(hours=hour), day + timedelta(hours=hour + 1)
        response = requests.post(f"{sandbox.url}/sandbox/user/{OWNER}/{path}", timeout=5, json={
            "summary": "Busy", "start": {"dateTime": start.isoformat()}, "end": {"dateTime": end.isoformat()}})
        assert response.status_code == 201

    event(f"calendars/{work}/events", 11)
    event("events", 14)  # on the primary calendar, which no longer counts
    window = f"from={day.isoformat().replace('+00:00', 'Z')}&to={(day + timedelta(days=1)).isoformat()[:19]}Z"
    db.session.expire_all()
    answer = guser.client.get(f"/availability?{window}", headers=guser.headers)
    assert answer.status_code == 200, answer.json
    assert [(b["start"][11:16], b["end"][11:16], b["source"]) for b in answer.json["data"]["busy"]] == [
        ("11:00", "12:00", "google")]
    assert answer.json["data"]["busyAsOf"] is not None


def test_no_transaction_is_open_while_google_lists_the_calendars(google_app, guser, sandbox):
    import threading

    from callnfy_integrations.extensions import AUTOCOMMIT_BIND

    guser.connect()
    db.session.commit()
    sandbox.state.hold("calendarList.list")
    answers = []

    def ask():
        with google_app.app_context():
            answers.append(google_app.test_client().get("/integrations/google/calendars", headers=guser.headers))

    asker = threading.Thread(target=ask)
    asker.start()
    try:
        for _ in range(200):
            with sandbox.state.lock:
                if sandbox.state.held.get("calendarList.list"):
                    break
            threading.Event().wait(0.02)
        with db.engines[AUTOCOMMIT_BIND].connect() as connection:
            waiting = connection.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()")).scalar()
        assert sandbox.state.held.get("calendarList.list") == 1
    finally:
        sandbox.state.release()
        asker.join(10)
    assert waiting == 0
    assert answers[0].status_code == 200
