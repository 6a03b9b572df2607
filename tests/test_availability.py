"""Availability through the API: settings, busy time and slots from appointments and holds, booking
with `requireFree` and `holdId`, and the race of many callers for one slot (real HTTP, real threads,
real PostgreSQL). Calendar busy time is tests/test_availability_google.py's."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta

import pytest
import requests
from sqlalchemy import func, select, text, update
from werkzeug.serving import make_server

from callnfy_integrations.appointments.models import Appointment
from callnfy_integrations.availability import rules
from callnfy_integrations.availability.models import AvailabilitySettings, Hold
from callnfy_integrations.extensions import db
from tests.factories import appointment_body, auth_headers


def monday(weeks_ahead: int = 1) -> date:
    day = datetime.now(UTC).date() + timedelta(weeks=weeks_ahead)
    return day - timedelta(days=day.weekday())


def at(day: date, hour: int, minute: int = 0) -> str:
    """A UTC time on `day` (Europe/London: UTC in winter, UTC+1 in summer; the tests use whole weeks
    of winter or say when the offset matters)."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC).isoformat().replace("+00:00", "Z")


@pytest.fixture
def owner(client, app_ctx, user_id):
    """An owner in UTC (so wall times are UTC times), Mon–Fri 09:00–17:00."""
    headers = auth_headers(user_id)
    answer = client.put("/integrations/availability/settings", json={"timeZone": "UTC"}, headers=headers)
    assert answer.status_code == 200, answer.json
    return headers


def book(client, headers, start: str, minutes: int = 30, **extra):
    return client.post("/appointments", json=appointment_body(scheduledAt=start, duration=minutes, **extra),
                       headers=headers)


# -- settings ---------------------------------------------------------------------------------------

def test_settings_default_to_london_weekdays_nine_to_five_and_no_calendar(client, app_ctx, user_id):
    answer = client.get("/integrations/availability/settings", headers=auth_headers(user_id))
    assert answer.status_code == 200
    assert answer.json["data"] == {
        "timeZone": "Europe/London", "bufferBefore": 0, "bufferAfter": 0, "minNotice": 0, "busyCalendars": [],
        "workingHours": {"mon": [["09:00", "17:00"]], "tue": [["09:00", "17:00"]], "wed": [["09:00", "17:00"]],
                         "thu": [["09:00", "17:00"]], "fri": [["09:00", "17:00"]], "sat": [], "sun": []}}


def test_put_changes_only_the_fields_given(client, owner):
    hours = {day: [["08:00", "12:00"], ["13:00", "18:30"]] for day in ("mon", "tue", "wed", "thu", "fri")}
    answer = client.put("/integrations/availability/settings", headers=owner,
                        json={"workingHours": {**hours, "sat": [["10:00", "14:00"]], "sun": []}, "bufferAfter": 15})
    assert answer.status_code == 200
    data = client.get("/integrations/availability/settings", headers=owner).json["data"]
    assert data["timeZone"] == "UTC" and data["bufferAfter"] == 15 and data["bufferBefore"] == 0
    assert data["workingHours"]["sat"] == [["10:00", "14:00"]] and data["workingHours"]["mon"][1] == ["13:00", "18:30"]


@pytest.mark.parametrize("body, field, fragment", [
    ({"timeZone": "Mars/Olympus"}, "timeZone", "IANA"),
    ({"bufferBefore": -5}, "bufferBefore", "0"),
    ({"minNotice": 50000}, "minNotice", "43200"),
    ({"workingHours": {"mon": [["09:00", "17:00"]]}}, "workingHours", "missing: tue"),
    ({"workingHours": {**{d: [] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
                       "wed": [["17:00", "09:00"]]}}, "workingHours", "end after it starts"),
    ({"workingHours": {**{d: [] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
                       "wed": [["09:00", "13:00"], ["12:00", "17:00"]]}}, "workingHours", "overlap"),
    ({"workingHours": {**{d: [] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
                       "wed": [["9am", "5pm"]]}}, "workingHours", "HH:MM"),
    ({"busyCalendars": [{"provider": "google", "calendarId": "a"}, {"provider": "google", "calendarId": "a"}]},
     "busyCalendars", "twice"),
    ({"busyCalendars": [{"provider": "exchange", "calendarId": "a"}]}, "busyCalendars", "one of"),
    ({}, "_schema", "at least one"),
])
def test_a_bad_setting_is_a_400_naming_it_and_changes_nothing(client, owner, body, field, fragment):
    before = client.get("/integrations/availability/settings", headers=owner).json["data"]
    answer = client.put("/integrations/availability/settings", json=body, headers=owner)
    assert answer.status_code == 400 and answer.json["error"]["code"] == "VALIDATION_ERROR"
    assert field in answer.json["error"]["details"] and fragment in str(answer.json["error"]["details"][field])
    assert client.get("/integrations/availability/settings", headers=owner).json["data"] == before


# -- busy time and slots ----------------------------------------------------------------------------

@pytest.mark.shows_status(("GET", "/availability", "200"))
def test_busy_time_and_slots_leave_out_appointments_with_their_buffers_and_holds(client, owner):
    day = monday()
    client.put("/integrations/availability/settings", json={"bufferAfter": 15}, headers=owner)
    assert book(client, owner, at(day, 10)).status_code == 201
    book(client, owner, at(day, 12), 60)
    cancelled = book(client, owner, at(day, 14)).json["data"]["id"]
    client.post(f"/appointments/{cancelled}/cancel", headers=owner)
    hold = client.post("/availability/holds", json={"scheduledAt": at(day, 15), "duration": 30}, headers=owner)
    assert hold.status_code == 201

    answer = client.get(f"/availability?from={at(day, 0)}&to={at(day + timedelta(days=1), 0)}&duration=30&step=30",
                        headers=owner)
    assert answer.status_code == 200, answer.json
    data = answer.json["data"]
    assert data["timeZone"] == "UTC" and data["busyAsOf"] is not None  # no calendar counts: as of now
    assert [(b["start"][11:16], b["end"][11:16], b["source"]) for b in data["busy"]] == [
        ("10:00", "10:45", "appointment"), ("12:00", "13:15", "appointment"), ("15:00", "15:45", "hold")]
    # Every 30 minutes from 09:00; a slot needs its own 15 minutes after it free, and must not meet the
    # grown appointments or the hold: 09:30 would end 10:15 inside the first, 14:30 meets the hold.
    free = [s["start"][11:16] for s in data["slots"]]
    assert free == ["09:00", "11:00", "13:30", "14:00", "16:00", "16:30"]
    assert all(s["end"] == (datetime.fromisoformat(s["start"].replace("Z", "+00:00")) + timedelta(minutes=30))
               .isoformat(timespec="milliseconds").replace("+00:00", "Z") for s in data["slots"])


def test_without_duration_there_are_no_slots_only_busy_time(client, owner):
    day = monday()
    data = client.get(f"/availability?from={at(day, 0)}&to={at(day, 23)}", headers=owner).json["data"]
    assert "slots" not in data and data["busy"] == []


@pytest.mark.parametrize("query, fragment", [
    ("from={a}&to={a}", "after from"),
    ("from={b}&to={a}", "after from"),
    ("from={a}&to={far}", "31 days"),
])
def test_a_window_that_ends_before_it_starts_or_spans_more_than_31_days_is_a_400(client, owner, query, fragment):
    day = monday()
    url = "/availability?" + query.format(a=at(day, 9), b=at(day, 10), far=at(day + timedelta(days=32), 9))
    answer = client.get(url, headers=owner)
    assert answer.status_code == 400 and fragment in str(answer.json["error"]["details"]["to"])


# -- booking that cannot double-book -------------------------------------------------------------------

@pytest.mark.shows_status(("POST", "/appointments", "409"))
def test_require_free_refuses_busy_time_with_its_conflicts(client, owner):
    day = monday()
    assert book(client, owner, at(day, 10)).status_code == 201
    refused = book(client, owner, at(day, 10, 15), requireFree=True)
    assert refused.status_code == 409 and refused.json["error"]["code"] == "SLOT_UNAVAILABLE"
    assert refused.json["error"]["details"]["conflicts"] == [
        {"start": at(day, 10).replace("Z", ".000Z"), "end": at(day, 10, 30).replace("Z", ".000Z"),
         "source": "appointment"}]
    assert db.session.scalar(select(func.count()).select_from(Appointment)) == 1  # nothing written
    assert book(client, owner, at(day, 10, 15)).status_code == 201  # without requireFree: as before
    assert book(client, owner, at(day, 11), requireFree=True).status_code == 201


@pytest.mark.parametrize("settings, start, source", [
    ({}, lambda d: at(d, 18), "outside_working_hours"),
    ({}, lambda d: at(d + timedelta(days=5), 10), "outside_working_hours"),  # Saturday
    ({"minNotice": 60 * 24 * 30}, lambda d: at(d, 10), "min_notice"),
])
def test_require_free_refuses_outside_working_hours_and_inside_the_notice(client, owner, settings, start, source):
    if settings:
        client.put("/integrations/availability/settings", json=settings, headers=owner)
    refused = book(client, owner, start(monday()), requireFree=True)
    assert refused.status_code == 409
    assert [c["source"] for c in refused.json["error"]["details"]["conflicts"]] == [source]


def test_moving_with_require_free_checks_the_new_time_but_not_against_itself(client, owner):
    day = monday()
    first = book(client, owner, at(day, 10)).json["data"]["id"]
    book(client, owner, at(day, 11))
    onto_other = client.patch(f"/appointments/{first}", json={"scheduledAt": at(day, 11), "requireFree": True},
                              headers=owner)
    assert onto_other.status_code == 409 and onto_other.json["error"]["code"] == "SLOT_UNAVAILABLE"
    overlapping_itself = client.patch(f"/appointments/{first}", json={"duration": 45, "requireFree": True},
                                      headers=owner)
    assert overlapping_itself.status_code == 200 and overlapping_itself.json["data"]["duration"] == 45
    only_require_free = client.patch(f"/appointments/{first}", json={"requireFree": True}, headers=owner)
    assert only_require_free.status_code == 400  # it changes nothing


# -- holds ----------------------------------------------------------------------------------------------

@pytest.mark.shows_status(("POST", "/availability/holds", "201"))
def test_a_hold_blocks_others_and_its_own_booking_always_succeeds_once(client, owner):
    day = monday()
    hold = client.post("/availability/holds", json={"scheduledAt": at(day, 10), "duration": 30, "ttl": 600},
                       headers=owner)
    assert hold.status_code == 201
    data = hold.json["data"]
    assert data["id"].startswith("hold_") and data["duration"] == 30
    expires = datetime.fromisoformat(data["expiresAt"].replace("Z", "+00:00"))
    assert timedelta(seconds=590) < expires - datetime.now(UTC) <= timedelta(seconds=600)

    taken = book(client, owner, at(day, 10, 15), requireFree=True)
    assert [c["source"] for c in taken.json["error"]["details"]["conflicts"]] == ["hold"]
    assert client.post("/availability/holds", json={"scheduledAt": at(day, 10), "duration": 30},
                       headers=owner).status_code == 409
    # Meanwhile someone books over it without requireFree: the hold's own booking still succeeds.
    book(client, owner, at(day, 10))
    assert book(client, owner, at(day, 10), holdId=data["id"]).status_code == 201
    again = book(client, owner, at(day, 10), holdId=data["id"])  # used: checked like requireFree
    assert again.status_code == 409 and again.json["error"]["code"] == "SLOT_UNAVAILABLE"


def test_a_hold_stops_blocking_at_its_expiry_exactly(client, owner):
    day = monday()
    hold_id = client.post("/availability/holds", json={"scheduledAt": at(day, 10), "duration": 30},
                          headers=owner).json["data"]["id"]
    window = f"/availability?from={at(day, 0)}&to={at(day, 23)}"

    def expire_in(seconds: float) -> None:
        db.session.execute(update(Hold).values(expires_at=func.clock_timestamp() + text(
            f"interval '{seconds} seconds'")))
        db.session.commit()

    expire_in(5)
    assert [b["source"] for b in client.get(window, headers=owner).json["data"]["busy"]] == ["hold"]
    expire_in(-0.001)  # a millisecond ago
    assert client.get(window, headers=owner).json["data"]["busy"] == []
    assert book(client, owner, at(day, 10), requireFree=True).status_code == 201
    assert book(client, owner, at(day, 11), holdId=hold_id).status_code == 201  # expired: checked, free


def test_holds_are_released_and_unknown_or_anothers_are_404(client, owner, app_ctx):
    import uuid

    day = monday()
    hold_id = client.post("/availability/holds", json={"scheduledAt": at(day, 10), "duration": 30},
                          headers=owner).json["data"]["id"]
    stranger = auth_headers(uuid.uuid4())
    assert client.delete(f"/availability/holds/{hold_id}", headers=stranger).status_code == 404
    assert book(client, stranger, at(day, 10), holdId=hold_id).status_code == 404
    assert client.delete("/availability/holds/hold_123", headers=owner).status_code == 404
    released = client.delete(f"/availability/holds/{hold_id}", headers=owner)
    assert released.status_code == 200 and released.json["message"] == "Hold released"
    assert book(client, owner, at(day, 10), requireFree=True).status_code == 201
    assert client.delete(f"/availability/holds/{hold_id}", headers=owner).status_code == 404


@pytest.mark.parametrize("body, field", [
    ({"scheduledAt": "2026-12-14T10:00:00Z", "duration": 30, "ttl": 901}, "ttl"),
    ({"scheduledAt": "2026-12-14T10:00:00Z"}, "duration"),
    ({"duration": 30}, "scheduledAt"),
])
def test_a_bad_hold_is_a_400_naming_the_field(client, owner, body, field):
    answer = client.post("/availability/holds", json=body, headers=owner)
    assert answer.status_code == 400 and field in answer.json["error"]["details"]
    assert db.session.scalar(select(func.count()).select_from(Hold)) == 0


# -- the race -------------------------------------------------------------------------------------------

def test_fifty_concurrent_require_free_bookings_of_one_slot_make_exactly_one_appointment(app, owner, user_id):
    """Real HTTP, one thread per request, each request its own database connection: PostgreSQL's lock on
    the account decides, not a check that two requests could both pass before either writes."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/appointments"
    day = monday()
    gate = threading.Barrier(50)

    def attempt(n: int) -> int:
        body = appointment_body(scheduledAt=at(day, 10, 15 if n % 2 else 0), duration=30, requireFree=True,
                                customerPhone=f"+4477009{n:05d}")
        gate.wait()  # all at once
        return requests.post(url, json=body, headers=owner, timeout=60).status_code

    try:
        with ThreadPoolExecutor(50) as pool:
            statuses = list(pool.map(attempt, range(50)))
    finally:
        server.shutdown()
    assert sorted(statuses) == [201] + [409] * 49
    db.session.remove()
    assert db.session.scalar(select(func.count()).select_from(Appointment).where(
        Appointment.user_id == user_id)) == 1


def test_concurrent_require_free_moves_into_one_slot_leave_exactly_one_there(app, client, owner, user_id):
    """Twenty appointments at different times, all moved at once into overlapping slots: one moves."""
    day = monday()
    ids = [book(client, owner, at(day, 9 + n // 4, (n % 4) * 15), 10).json["data"]["id"] for n in range(20)]
    db.session.remove()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}/appointments"
    gate = threading.Barrier(len(ids))

    def move(n: int) -> int:
        gate.wait()
        return requests.patch(f"{base}/{ids[n]}", headers=owner, timeout=60, json={
            "scheduledAt": at(day, 16, 5 if n % 2 else 0), "duration": 30, "requireFree": True}).status_code

    try:
        with ThreadPoolExecutor(len(ids)) as pool:
            statuses = list(pool.map(move, range(len(ids))))
    finally:
        server.shutdown()
    assert sorted(statuses) == [200] + [409] * (len(ids) - 1)
    assert db.session.scalar(select(func.count()).select_from(Appointment).where(
        Appointment.user_id == user_id, Appointment.scheduled_at >= datetime(day.year, day.month, day.day, 16,
                                                                             tzinfo=UTC))) == 1


def test_settings_rows_are_only_written_by_put(client, app_ctx, user_id):
    client.get("/integrations/availability/settings", headers=auth_headers(user_id))
    client.get(f"/availability?from={at(monday(), 0)}&to={at(monday(), 23)}", headers=auth_headers(user_id))
    assert db.session.scalar(select(func.count()).select_from(AvailabilitySettings)) == 0


def merged(found):
    """The reference: overlapping or touching intervals of one source joined, by start (a plain loop)."""
    out, latest = [], {}
    for item in sorted(found):
        at = latest.get(item.source)
        if at is not None and out[at].end >= item.start:
            out[at] = rules.Busy(out[at].start, max(out[at].end, item.end), item.source)
        else:
            latest[item.source] = len(out)
            out.append(item)
    return sorted(out, key=lambda b: (b.start, b.source))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_merged_busy_time_is_the_union_of_each_sources_intervals(client, owner, user_id, seed):
    """PostgreSQL's range_agg against a plain loop, over random appointments, holds and calendar blocks
    with buffers: overlaps, touching ends, intervals inside others, and one source never joined to another."""
    import random

    from callnfy_integrations.availability import busy as busy_copy
    from callnfy_integrations.availability import service

    rng = random.Random(seed)
    day = monday()
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    client.put("/integrations/availability/settings", headers=owner, json={
        "bufferBefore": rng.choice([5, 10]), "bufferAfter": rng.choice([15, 20]),
        "busyCalendars": [{"provider": "google", "calendarId": "work"}]})
    for _ in range(40):
        minutes = 8 * 60 + 5 * rng.randrange(0, 120)
        answer = book(client, owner, at(day, minutes // 60, minutes % 60), rng.choice([10, 15, 30, 45]))
        assert answer.status_code == 201, answer.json
    for _ in range(5):
        db.session.add(Hold(id=uuid.uuid4(), user_id=user_id, duration=rng.choice([15, 30]),
                            scheduled_at=start + timedelta(hours=8, minutes=5 * rng.randrange(0, 120)),
                            expires_at=datetime.now(UTC) + timedelta(minutes=5)))
    blocks = [busy_copy.Block(f"e{n}", first, first + timedelta(minutes=rng.choice([5, 20, 60])))
              for n in range(30) for first in [start + timedelta(hours=8, minutes=5 * rng.randrange(0, 120))]]
    busy_copy.store(user_id, busy_copy.Source("google", "work"), (start, start + timedelta(days=2)), blocks,
                    datetime.now(UTC))
    busy_copy.store(user_id, busy_copy.Source("google", "unchosen"), (start, start + timedelta(days=2)), blocks,
                    datetime.now(UTC))
    db.session.commit()

    owner_rules, sources = service.resolved(user_id)
    now = datetime.now(UTC)
    window = (start, start + timedelta(days=1))
    expected = merged(service.busy_time(user_id, owner_rules, sources, *window, now))
    assert service.merged_busy_time(user_id, owner_rules, sources, *window, now) == expected
    assert len(expected) < 75  # something was merged


def test_the_gap_must_hold_both_buffers_when_the_earlier_appointment_ends_before_the_later_buffer(client, owner):
    """After-buffer 20 and before-buffer 10: a booking 25 minutes after an appointment ends is too close,
    though the appointment ended before the new one's reach (its own 20 minutes) began; 30 is enough."""
    day = monday()
    client.put("/integrations/availability/settings", headers=owner, json={"bufferBefore": 10, "bufferAfter": 20})
    assert book(client, owner, at(day, 10, 0), 30).status_code == 201
    refused = book(client, owner, at(day, 10, 55), 30, requireFree=True, customerPhone="+447700900002")
    assert refused.status_code == 409, refused.json
    assert refused.json["error"]["details"]["conflicts"] == [
        {"start": at(day, 9, 50).replace("Z", ".000Z"), "end": at(day, 10, 50).replace("Z", ".000Z"),
         "source": "appointment"}]
    assert book(client, owner, at(day, 11, 0), 30, requireFree=True, customerPhone="+447700900003").status_code == 201
