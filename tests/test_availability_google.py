"""Busy time from Google Calendar, against the Google sandbox over real HTTP: which events count, how
all-day and recurring events block, how fresh the copy is and how often Google is read.

A one-way connection's copy is read when it is older than AVAILABILITY_MAX_AGE_SECONDS (one read per
calendar for concurrent callers); a two-way connection's copy is kept by its notifications, and
answering availability then makes no call to Google.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta

import pytest
import requests

from tests.google_fixtures import GoogleUser, run_jobs
from tests.support import wait_for

OWNER = "owner@example.com"


def next_monday() -> date:
    day = datetime.now(UTC).date() + timedelta(weeks=1)
    return day - timedelta(days=day.weekday())


def utc(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def timed(start: datetime, minutes: int = 60, **body) -> dict:
    return {"summary": "Owner's own", "start": {"dateTime": start.isoformat()},
            "end": {"dateTime": (start + timedelta(minutes=minutes)).isoformat()}, **body}


class Owner(GoogleUser):
    """A connected owner, editing their Google calendar as a person would (the sandbox's owner routes)."""

    def google(self, body: dict, *, path: str = "events") -> dict:
        response = requests.post(f"{self.sandbox.url}/sandbox/user/{OWNER}/{path}", json=body, timeout=5)
        assert response.status_code == 201, response.text
        return response.json()

    def respond(self, event_id: str, answer: str) -> None:
        assert requests.post(f"{self.sandbox.url}/sandbox/user/{OWNER}/events/{event_id}/respond",
                             json={"responseStatus": answer}, timeout=5).status_code == 200

    def delete(self, event_id: str) -> None:
        url = f"{self.sandbox.url}/sandbox/user/{OWNER}/events/{event_id}"
        assert requests.delete(url, timeout=5).status_code == 204

    def settings(self, **values) -> None:
        answer = self.client.put("/integrations/availability/settings", json=values, headers=self.headers)
        assert answer.status_code == 200, answer.json

    def availability(self, start: datetime, end: datetime, **query) -> dict:
        answer = self.client.get("/availability", headers=self.headers,
                                 query_string={"from": stamp(start), "to": stamp(end), **query})
        assert answer.status_code == 200, answer.json
        return answer.json["data"]

    def busy(self, start: datetime, end: datetime) -> list[tuple[str, str, str]]:
        return [(b["start"], b["end"], b["source"]) for b in self.availability(start, end)["busy"]]


@pytest.fixture
def owner(google_app, gctx, sandbox):
    user = Owner(google_app, sandbox)
    assert user.connect() == {"success": "true"}
    run_jobs(google_app)  # the backfill (nothing yet)
    user.settings(timeZone="UTC")
    return user


def test_busy_events_count_and_free_declined_cancelled_and_mirrored_ones_do_not(owner, google_app):
    day = next_monday()
    owner.google(timed(utc(day, 9)))                                          # busy
    owner.google(timed(utc(day, 10), transparency="transparent"))             # "free": not busy
    owner.delete(owner.google(timed(utc(day, 11)))["id"])                     # cancelled
    owner.respond(owner.google(timed(utc(day, 12)), path="invitations")["id"], "declined")
    owner.google(timed(utc(day, 13)), path="invitations")                     # not answered yet: busy
    owner.respond(owner.google(timed(utc(day, 14)), path="invitations")["id"], "tentative")  # busy
    appointment = owner.create(scheduledAt=stamp(utc(day, 15)), duration=30)  # mirrored into Google
    run_jobs(google_app)
    assert [e for e in owner.sandbox.events() if e.get("extendedProperties")], "the appointment was mirrored"

    assert owner.busy(utc(day, 0), utc(day + timedelta(days=1), 0)) == [
        (stamp(utc(day, 9)), stamp(utc(day, 10)), "google"),
        (stamp(utc(day, 13)), stamp(utc(day, 15)), "google"),  # 13–14 and 14–15 touch: one interval
        (appointment["scheduledAt"], stamp(utc(day, 15, 30)), "appointment"),  # once, as the appointment
    ]


def test_an_all_day_event_blocks_its_day_in_the_owners_time_zone(owner):
    day = next_monday() + timedelta(days=1)
    owner.settings(timeZone="America/New_York")  # UTC-5 in winter, UTC-4 in summer
    owner.google({"summary": "Away", "start": {"date": day.isoformat()},
                  "end": {"date": (day + timedelta(days=1)).isoformat()}})
    offset = 5 if day.month in (1, 2, 12) or (day.month == 11 and day.day > 7) else 4
    busy = owner.busy(utc(day, 0) - timedelta(days=1), utc(day, 0) + timedelta(days=2))
    assert busy == [(stamp(utc(day, offset)), stamp(utc(day, offset) + timedelta(days=1)), "google")]
    slots = owner.availability(utc(day, 0), utc(day, 0) + timedelta(days=1), duration=30)["slots"]
    assert all(not (utc(day, offset) <= datetime.fromisoformat(s["start"].replace("Z", "+00:00"))
                    < utc(day, offset) + timedelta(days=1)) for s in slots)


def test_a_recurring_event_blocks_each_instance_on_its_wall_clock_across_a_dst_change(owner):
    # Europe/London moves to BST on 28 March 2027: 09:00 local is 09:00Z before and 08:00Z after.
    owner.settings(timeZone="Europe/London")
    owner.google({"summary": "Daily stand-up",
                  "start": {"dateTime": "2027-03-26T09:00:00+00:00", "timeZone": "Europe/London"},
                  "end": {"dateTime": "2027-03-26T09:30:00+00:00", "timeZone": "Europe/London"},
                  "recurrence": ["RRULE:FREQ=DAILY;COUNT=4"]})
    busy = owner.busy(datetime(2027, 3, 22, tzinfo=UTC), datetime(2027, 4, 5, tzinfo=UTC))
    assert [(start, source) for start, _, source in busy] == [
        ("2027-03-26T09:00:00.000Z", "google"), ("2027-03-27T09:00:00.000Z", "google"),
        ("2027-03-28T08:00:00.000Z", "google"), ("2027-03-29T08:00:00.000Z", "google")]
    assert all(datetime.fromisoformat(end[:-1]) - datetime.fromisoformat(start[:-1]) == timedelta(minutes=30)
               for start, end, _ in busy)


def test_a_weekly_series_with_an_excluded_date_blocks_the_other_weeks(owner):
    day = next_monday()
    first = utc(day, 16)
    owner.google(timed(first, 30, recurrence=[
        "RRULE:FREQ=WEEKLY;COUNT=3", f"EXDATE:{(first + timedelta(weeks=1)).strftime('%Y%m%dT%H%M%SZ')}"]))
    busy = owner.busy(utc(day, 0), utc(day, 0) + timedelta(days=28))
    assert [start for start, _, _ in busy] == [stamp(first), stamp(first + timedelta(weeks=2))]


def test_a_google_event_makes_a_require_free_booking_a_409_naming_it(owner):
    day = next_monday()
    owner.google(timed(utc(day, 10)))
    answer = owner.client.post("/appointments", headers=owner.headers, json={
        "customerName": "Jane", "customerPhone": "+447700900123", "scheduledAt": stamp(utc(day, 10, 30)),
        "duration": 30, "requireFree": True})
    assert answer.status_code == 409 and answer.json["error"]["code"] == "SLOT_UNAVAILABLE"
    assert answer.json["error"]["details"]["conflicts"] == [
        {"start": stamp(utc(day, 10)), "end": stamp(utc(day, 11)), "source": "google"}]


def test_a_one_way_copy_is_read_once_while_fresh_and_again_when_old(owner, google_app, monkeypatch):
    day = next_monday()
    owner.sandbox.reset_counts()
    owner.busy(utc(day, 0), utc(day, 23))
    owner.busy(utc(day, 0), utc(day, 23))
    assert owner.sandbox.calls("events.list") == 1  # the second answer came from the copy
    owner.google(timed(utc(day, 9)))
    monkeypatch.setitem(google_app.config, "AVAILABILITY_MAX_AGE_SECONDS", 0)
    assert owner.busy(utc(day, 0), utc(day, 23)) == [(stamp(utc(day, 9)), stamp(utc(day, 10)), "google")]
    assert owner.sandbox.calls("events.list") == 2


def test_concurrent_readers_of_a_stale_calendar_share_one_read(owner, google_app, sandbox):
    day = next_monday()
    owner.google(timed(utc(day, 9)))
    sandbox.reset_counts()
    requests.post(f"{sandbox.url}/sandbox/hold", json={"endpoint": "events.list"}, timeout=5).raise_for_status()

    def read(_):
        client = google_app.test_client()
        with google_app.app_context():
            answer = client.get("/availability", headers=owner.headers,
                                query_string={"from": stamp(utc(day, 0)), "to": stamp(utc(day, 23))})
        return answer.status_code, [b["source"] for b in answer.json["data"]["busy"]]

    try:
        with ThreadPoolExecutor(8) as pool:
            answers = pool.map(read, range(8))
            wait_for(lambda: requests.get(f"{sandbox.url}/sandbox/hold", timeout=5).json().get("events.list"))
            time.sleep(0.3)  # the others queue behind the one read (they wait on its lease, not on Google)
            requests.delete(f"{sandbox.url}/sandbox/hold", timeout=5).raise_for_status()
            answers = list(answers)
    finally:
        requests.delete(f"{sandbox.url}/sandbox/hold", timeout=5)
    assert answers == [(200, ["google"])] * 8
    assert sandbox.calls("events.list") == 1


def test_when_google_is_down_the_last_copy_answers_and_says_how_old_it_is(owner, google_app, sandbox, monkeypatch):
    day = next_monday()
    owner.google(timed(utc(day, 9)))
    before = datetime.now(UTC)
    first = owner.availability(utc(day, 0), utc(day, 23))
    read_at = datetime.fromisoformat(first["busyAsOf"].replace("Z", "+00:00"))
    assert before - timedelta(seconds=1) <= read_at <= datetime.now(UTC)

    monkeypatch.setitem(google_app.config, "AVAILABILITY_MAX_AGE_SECONDS", 0)
    requests.post(f"{sandbox.url}/sandbox/fail", json={"endpoint": "events.list", "responses": [503] * 5},
                  timeout=5).raise_for_status()
    calls = sandbox.calls("events.list")
    again = owner.availability(utc(day, 0), utc(day, 23))
    assert sandbox.calls("events.list") > calls  # it tried
    assert again["busyAsOf"] == first["busyAsOf"]  # and answered from the copy, saying how old it is
    assert [b["source"] for b in again["busy"]] == ["google"]


def test_a_calendar_never_read_has_no_busy_as_of(owner, sandbox):
    requests.post(f"{sandbox.url}/sandbox/fail", json={"endpoint": "events.list", "responses": [503] * 5},
                  timeout=5).raise_for_status()
    day = next_monday()
    data = owner.availability(utc(day, 0), utc(day, 23))
    assert data["busyAsOf"] is None and data["busy"] == []


def test_without_a_calendar_busy_as_of_is_now(client, app_ctx, user_id):
    from tests.factories import auth_headers

    day = next_monday()
    before = datetime.now(UTC)
    answer = client.get("/availability", headers=auth_headers(user_id),
                        query_string={"from": stamp(utc(day, 0)), "to": stamp(utc(day, 23))})
    as_of = datetime.fromisoformat(answer.json["data"]["busyAsOf"].replace("Z", "+00:00"))
    assert before - timedelta(seconds=1) <= as_of <= datetime.now(UTC)


# -- two-way: notifications keep the copy; reading it calls nobody --------------------------------

@pytest.mark.slow
def test_two_way_answers_without_calling_google_and_a_new_event_blocks_its_slot_within_seconds(
        tuser, sandbox, monkeypatch):
    monkeypatch.setitem(tuser.app.config, "AVAILABILITY_MAX_AGE_SECONDS", 0)  # a one-way copy would be read each time
    tuser.enable_two_way()
    day = next_monday()
    client, headers = tuser.client, tuser.headers
    assert client.put("/integrations/availability/settings", json={"timeZone": "UTC"},
                      headers=headers).status_code == 200
    query = {"from": stamp(utc(day, 9)), "to": stamp(utc(day, 12)), "duration": 60, "step": 60}

    def slots():
        answer = client.get("/availability", headers=headers, query_string=query)
        assert answer.status_code == 200, answer.json
        return [s["start"] for s in answer.json["data"]["slots"]]

    assert slots() == [stamp(utc(day, 9)), stamp(utc(day, 10)), stamp(utc(day, 11))]
    sandbox.reset_counts()
    for _ in range(5):
        slots()
    assert sandbox.calendar_calls() == 0  # answered from the copy its notifications keep

    created = time.monotonic()
    tuser.google_create(start_at=utc(day, 10), minutes=60, summary="Dentist")  # the sandbox notifies the app

    def blocked():
        run_jobs(tuser.app)  # the worker a deployment runs, picking up the sync the notification queued
        return stamp(utc(day, 10)) not in slots()

    wait_for(blocked, timeout=15, interval=0.1)
    assert time.monotonic() - created < 15
    assert slots() == [stamp(utc(day, 9)), stamp(utc(day, 11))]
    busy = client.get("/availability", headers=headers, query_string=query).json["data"]["busy"]
    assert (stamp(utc(day, 10)), "google") in [(b["start"], b["source"]) for b in busy]  # the copy has it
