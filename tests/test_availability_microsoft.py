"""Busy time from a Microsoft 365 calendar, against the Microsoft sandbox over real HTTP: which events
count (busy, free, cancelled, declined), all-day and recurring events, paging, freshness, and a user
with both Google and Microsoft connected (the sources merge)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from callnfy_integrations import create_app
from callnfy_integrations.extensions import db
from tests.google_fixtures import GoogleUser, fresh_sandbox, google_settings
from tests.microsoft_fixtures import MicrosoftUser, microsoft_settings
from tests.support import make_config
from tests.test_availability_google import Owner as GoogleOwner
from tests.test_availability_google import next_monday, stamp, utc

OWNER = "owner@example.com"


@pytest.fixture(scope="module")
def both_app(database_url, servers, sandbox, ms_sandbox, app):
    return create_app(make_config(database_url, servers["redis"], **google_settings(sandbox),
                                  **microsoft_settings(ms_sandbox)))


@pytest.fixture
def bctx(both_app, sandbox, ms_sandbox):
    fresh_sandbox(sandbox)
    ms_sandbox.fresh()
    with both_app.app_context():
        yield both_app
        db.session.remove()
    ms_sandbox.fresh()


class Owner(MicrosoftUser):
    """A connected owner, editing their Outlook calendar as a person would (the sandbox's owner routes)."""

    def outlook(self, body: dict, *, path: str = "events") -> dict:
        response = self.sandbox.control("post", f"/user/{OWNER}/{path}", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    settings, availability, busy = GoogleOwner.settings, GoogleOwner.availability, GoogleOwner.busy


def timed(start: datetime, minutes: int = 60, **body) -> dict:
    end = start + timedelta(minutes=minutes)
    return {"subject": "Owner's own", "start": {"dateTime": f"{start:%Y-%m-%dT%H:%M:%S}", "timeZone": "UTC"},
            "end": {"dateTime": f"{end:%Y-%m-%dT%H:%M:%S}", "timeZone": "UTC"}, **body}


@pytest.fixture
def owner(both_app, bctx, ms_sandbox):
    user = Owner(both_app, ms_sandbox)
    assert user.connect() == {"success": "true"}
    user.settings(timeZone="UTC")
    return user


def test_busy_events_count_and_free_cancelled_and_declined_ones_do_not(owner):
    day = next_monday()
    owner.outlook(timed(utc(day, 9)))                                        # busy
    owner.outlook(timed(utc(day, 10), showAs="free"))                        # free: not busy
    cancelled = owner.outlook(timed(utc(day, 11)), path="invitations")
    owner.sandbox.control("post", f"/user/{OWNER}/events/{cancelled['id']}/cancel").raise_for_status()
    owner.outlook(timed(utc(day, 12), responseStatus="declined"), path="invitations")
    owner.outlook(timed(utc(day, 13)), path="invitations")                   # not answered yet: busy
    owner.outlook(timed(utc(day, 14), showAs="tentative", responseStatus="tentativelyAccepted"),
                  path="invitations")                                        # tentative: busy
    assert owner.busy(utc(day, 0), utc(day + timedelta(days=1), 0)) == [
        (stamp(utc(day, 9)), stamp(utc(day, 10)), "microsoft"),
        (stamp(utc(day, 13)), stamp(utc(day, 15)), "microsoft"),  # 13–14 and 14–15 touch: one interval
    ]


def test_times_in_another_zone_are_exact_moments(owner):
    day = next_monday()
    owner.settings(timeZone="Asia/Tokyo")  # Graph is asked for Tokyo times; the event was written in New York's
    owner.outlook({"subject": "Call", "start": {"dateTime": f"{day}T10:00:00", "timeZone": "Eastern Standard Time"},
                   "end": {"dateTime": f"{day}T10:30:00", "timeZone": "Eastern Standard Time"}})
    offset = 5 if day.month in (1, 2, 12) or (day.month == 11 and day.day > 7) or (day.month == 3 and day.day < 8) \
        else 4
    assert owner.busy(utc(day, 0), utc(day, 23)) == [
        (stamp(utc(day, 10 + offset)), stamp(utc(day, 10 + offset, 30)), "microsoft")]


def test_an_all_day_event_blocks_its_day_in_the_owners_time_zone(owner):
    day = next_monday() + timedelta(days=1)
    owner.settings(timeZone="America/New_York")
    owner.outlook({"subject": "Away", "isAllDay": True,
                   "start": {"dateTime": f"{day}T00:00:00", "timeZone": "America/New_York"},
                   "end": {"dateTime": f"{day + timedelta(days=1)}T00:00:00", "timeZone": "America/New_York"}})
    offset = 5 if day.month in (1, 2, 12) or (day.month == 11 and day.day > 7) or (day.month == 3 and day.day < 8) \
        else 4
    busy = owner.busy(utc(day, 0) - timedelta(days=1), utc(day, 0) + timedelta(days=2))
    assert busy == [(stamp(utc(day, offset)), stamp(utc(day, offset) + timedelta(days=1)), "microsoft")]


def test_a_recurring_series_blocks_each_occurrence_and_every_page_is_read(owner):
    day = next_monday()
    owner.outlook(timed(utc(day, 8), 30, recurrence={
        "pattern": {"type": "daily", "interval": 1},
        "range": {"type": "numbered", "startDate": f"{day}", "numberOfOccurrences": 60}}))
    busy = owner.busy(utc(day, 0), utc(day, 0) + timedelta(days=31))
    assert [start for start, _, _ in busy] == [stamp(utc(day, 8) + timedelta(days=n)) for n in range(31)]
    assert owner.sandbox.calls("calendarView.list") >= 2  # 60 occurrences in the horizon: more than a page


def test_a_one_way_copy_is_read_once_while_fresh_and_again_when_old(owner, both_app, monkeypatch):
    day = next_monday()
    owner.busy(utc(day, 0), utc(day, 23))
    calls = owner.sandbox.calls("calendarView.list")
    owner.busy(utc(day, 0), utc(day, 23))
    assert owner.sandbox.calls("calendarView.list") == calls  # the second answer came from the copy
    owner.outlook(timed(utc(day, 9)))
    monkeypatch.setitem(both_app.config, "AVAILABILITY_MAX_AGE_SECONDS", 0)
    assert owner.busy(utc(day, 0), utc(day, 23)) == [(stamp(utc(day, 9)), stamp(utc(day, 10)), "microsoft")]
    assert owner.sandbox.calls("calendarView.list") == calls + 1


def test_when_microsoft_is_down_the_last_copy_answers(owner, both_app, monkeypatch):
    day = next_monday()
    owner.outlook(timed(utc(day, 9)))
    assert owner.busy(utc(day, 0), utc(day, 23)) == [(stamp(utc(day, 9)), stamp(utc(day, 10)), "microsoft")]
    monkeypatch.setitem(both_app.config, "AVAILABILITY_MAX_AGE_SECONDS", 0)
    owner.sandbox.control("post", "/fail", json={"endpoint": "calendarView.list", "responses": [503] * 3})
    owner.outlook(timed(utc(day, 12)))
    assert owner.busy(utc(day, 0), utc(day, 23)) == [(stamp(utc(day, 9)), stamp(utc(day, 10)), "microsoft")]


def test_disconnecting_drops_the_microsoft_busy_time(owner):
    day = next_monday()
    owner.settings(busyCalendars=[{"provider": "microsoft", "calendarId": "default"}])  # chosen, not by default
    owner.outlook(timed(utc(day, 9)))
    assert owner.busy(utc(day, 0), utc(day, 23)) != []
    assert owner.client.delete("/integrations/microsoft/disconnect", headers=owner.headers).status_code == 200
    assert owner.busy(utc(day, 0), utc(day, 23)) == []


def test_with_google_and_microsoft_connected_busy_times_merge(owner, both_app, sandbox):
    google = GoogleUser(both_app, sandbox)
    google.client, google.user_id, google.headers = owner.client, owner.user_id, owner.headers  # the same user
    assert google.connect() == {"success": "true"}
    day = next_monday()
    owner.outlook(timed(utc(day, 9)))
    import requests

    requests.post(f"{sandbox.url}/sandbox/user/{OWNER}/events", timeout=5, json={
        "summary": "Google's", "start": {"dateTime": utc(day, 11).isoformat()},
        "end": {"dateTime": utc(day, 12).isoformat()}}).raise_for_status()
    settings = owner.client.get("/integrations/availability/settings", headers=owner.headers).json["data"]
    assert sorted(c["provider"] for c in settings["busyCalendars"]) == ["google", "microsoft"]
    assert owner.busy(utc(day, 0), utc(day, 23)) == [
        (stamp(utc(day, 9)), stamp(utc(day, 10)), "microsoft"),
        (stamp(utc(day, 11)), stamp(utc(day, 12)), "google")]
    answer = owner.client.post("/appointments", headers=owner.headers, json={
        "customerName": "Jane", "customerPhone": "+447700900123", "scheduledAt": stamp(utc(day, 9, 30)),
        "duration": 30, "requireFree": True})
    assert answer.status_code == 409
    assert answer.json["error"]["details"]["conflicts"] == [
        {"start": stamp(utc(day, 9)), "end": stamp(utc(day, 10)), "source": "microsoft"}]
