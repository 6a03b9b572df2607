"""/zapier/v1: the Zapier app's actions and searches, authenticated by X-Callnfy-Key alone, through the
Flask test client (real HTTP with real threads for the races) against real PostgreSQL and Redis."""

from __future__ import annotations

import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta

import pytest
import requests
from sqlalchemy import func, select
from werkzeug.serving import make_server

from callnfy_integrations import create_app
from callnfy_integrations.appointments.models import Appointment
from callnfy_integrations.events.models import Event
from callnfy_integrations.extensions import db
from callnfy_integrations.users.models import User
from tests.factories import appointment_body, make_google_integration
from tests.zapier_fixtures import Account, hooks_config


def monday(weeks_ahead: int = 1) -> date:
    day = datetime.now(UTC).date() + timedelta(weeks=weeks_ahead)
    return day - timedelta(days=day.weekday())


def at(day: date, hour: int, minute: int = 0) -> str:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC).isoformat().replace("+00:00", "Z")


def ms(text: str) -> str:
    """The API's notation of a UTC time written `…Z`: with milliseconds."""
    return text.replace("Z", ".000Z")


def z(account, method, path, **kwargs):
    """A call as the Zapier app makes it: the key alone."""
    headers = {"X-Callnfy-Key": account.api_key, **kwargs.pop("headers", {})}
    return getattr(account.client, method)(f"/zapier/v1{path}", headers=headers, **kwargs)


def in_utc(account):
    """Owner in UTC (wall times are UTC times), Mon–Fri 09:00–17:00."""
    answer = account.client.put("/integrations/availability/settings", json={"timeZone": "UTC"},
                                headers=account.headers)
    assert answer.status_code == 200, answer.json
    return account


def count(model, user_id, *conditions) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model).where(model.user_id == user_id, *conditions))


# -- the key ----------------------------------------------------------------------------------------

def test_me_is_the_keys_account_with_its_calendar_email_when_connected(account):
    answer = z(account, "get", "/me")
    assert answer.status_code == 200
    assert answer.json == {"success": True, "data": {
        "userId": str(account.user_id),
        "webhookUrl": f"{account.app.config['PUBLIC_API_URL']}/webhooks/zapier/{account.user_id}",
        "events": ["appointment.created", "appointment.rescheduled", "appointment.cancelled",
                   "appointment.completed", "call.received"], "calendarEmail": None}}
    make_google_integration(db.session.get(User, account.user_id), email="owner@clinic.example")
    assert z(account, "get", "/me").json["data"]["calendarEmail"] == "owner@clinic.example"


def zapier_routes(account) -> list[tuple[str, str]]:
    spec = account.client.get("/openapi.json").json
    return [(method, path) for path, item in spec["paths"].items() if path.startswith("/zapier/v1/")
            for method in item if method in ("get", "post")]


@pytest.mark.parametrize("key", [None, "", "czp_" + "A" * 40, "not-a-key", "revoked"])
def test_every_route_refuses_a_missing_wrong_or_revoked_key_and_writes_nothing(account, key):
    booked = account.book()
    if key == "revoked":
        key = account.api_key
        assert account.client.delete("/integrations/zapier/revoke-key", headers=account.headers).status_code == 200
    before = count(Appointment, account.user_id), count(Event, account.user_id)
    routes = zapier_routes(account)
    assert len(routes) == 8, routes
    for method, path in routes:
        url = "/zapier/v1" + path[len("/zapier/v1"):].replace("{appointment_id}", booked["id"])
        headers = {} if key is None else {"X-Callnfy-Key": key}
        query = {"/zapier/v1/appointments": "?customerPhone=%2B447700900123", "/zapier/v1/customers": "?phone=123",
                 "/zapier/v1/availability/slots": "?duration=30"}.get(path, "") if method == "get" else ""
        answer = getattr(account.client, method)(
            url + query, headers=headers,
            **({"json": appointment_body(scheduledAt="2026-12-05T10:00:00Z")} if method == "post" else {}))
        assert answer.status_code == 401, (method, path, answer.json)
        assert answer.json == {"success": False, "error": {"code": "UNAUTHORIZED", "message": "Unauthorized"}}
    assert (count(Appointment, account.user_id), count(Event, account.user_id)) == before


@pytest.fixture(scope="module")
def strict_app(database_url, servers, ca_bundle, app):
    return create_app(hooks_config(database_url, servers, ca_bundle, ZAPIER_AUTH_FAILURE_LIMIT="3 per minute"))


@pytest.mark.shows_status(*[(method, path, "429") for method, path in (
    ("GET", "/zapier/v1/me"), ("GET", "/zapier/v1/appointments"), ("POST", "/zapier/v1/appointments"),
    ("POST", "/zapier/v1/appointments/{appointment_id}/reschedule"),
    ("POST", "/zapier/v1/appointments/{appointment_id}/cancel"),
    ("POST", "/zapier/v1/appointments/{appointment_id}/complete"),
    ("GET", "/zapier/v1/customers"), ("GET", "/zapier/v1/availability/slots"))])
def test_failed_key_checks_are_rate_limited_per_address_and_key(strict_app):
    with strict_app.app_context():
        bystander = Account(strict_app)
    client = strict_app.test_client()
    wrong = {"X-Callnfy-Key": "czp_" + secrets.token_hex(20)}  # its own count, whenever the test runs
    statuses = [client.get("/zapier/v1/me", headers=wrong).status_code for _ in range(5)]
    assert statuses == [401, 401, 401, 429, 429]
    limited = client.get("/zapier/v1/me", headers=wrong)
    assert limited.json["error"]["code"] == "TOO_MANY_REQUESTS" and "Retry-After" in limited.headers
    # Another account's key from the same address is not locked out by that broken Zap.
    assert z(bystander, "get", "/me").status_code == 200


# -- create, idempotently ---------------------------------------------------------------------------

def test_create_books_like_post_appointments(account):
    answer = z(account, "post", "/appointments", json=appointment_body(
        customerPhone="+44 7700 900123", scheduledAt="2026-12-05T10:00:00Z", duration=45, notes="From a form"))
    assert answer.status_code == 201, answer.json
    data = answer.json["data"]
    assert (data["customerPhone"], data["scheduledAt"], data["duration"], data["notes"], data["status"]) == (
        "+447700900123", "2026-12-05T10:00:00.000Z", 45, "From a form", "scheduled")
    assert account.client.get(f"/appointments/{data['id']}", headers=account.headers).json["data"] == data
    assert count(Event, account.user_id, Event.type == "appointment.created") == 1
    # The JWT API's validation: a 400 naming the field, nothing written.
    bad = z(account, "post", "/appointments", json=appointment_body(duration=0, holdId="hold_x", requireFree=1))
    assert bad.status_code == 400 and set(bad.json["error"]["details"]) == {"duration", "holdId", "requireFree"}
    assert count(Appointment, account.user_id) == 1


@pytest.mark.shows_status(("POST", "/zapier/v1/appointments", "200"))
def test_the_same_idempotency_key_answers_the_first_appointment_and_another_request_is_409(hooks_app, account):
    body = appointment_body(scheduledAt="2026-12-05T10:00:00Z", idempotencyKey="zap-run-1")
    first = z(account, "post", "/appointments", json=body)
    again = z(account, "post", "/appointments", json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json["data"] == first.json["data"]
    assert count(Appointment, account.user_id) == 1
    assert count(Event, account.user_id, Event.type == "appointment.created") == 1  # one webhook, not two
    # A retry still answers the appointment after it changed since.
    z(account, "post", f"/appointments/{first.json['data']['id']}/reschedule",
      json={"scheduledAt": "2026-12-06T10:00:00Z"})
    assert z(account, "post", "/appointments", json=body).json["data"]["scheduledAt"] == "2026-12-06T10:00:00.000Z"

    reused = z(account, "post", "/appointments", json={**body, "scheduledAt": "2026-12-07T10:00:00Z"})
    assert reused.status_code == 409
    assert reused.json["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert reused.json["error"]["details"]["appointmentId"] == first.json["data"]["id"]
    assert count(Appointment, account.user_id) == 1
    # Keys are per account: another account's same key is its own first booking.
    other = Account(hooks_app)
    assert z(other, "post", "/appointments", json=body).status_code == 201


@pytest.mark.parametrize("require_free", [False, True])
def test_concurrent_retries_with_one_idempotency_key_make_one_appointment(hooks_app, account, require_free):
    """Real HTTP, one thread and database connection per request, all at once: the unique constraint (or,
    with requireFree, the account's lock) decides, and every loser answers the winner's appointment."""
    in_utc(account)
    server = make_server("127.0.0.1", 0, hooks_app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/zapier/v1/appointments"
    body = appointment_body(scheduledAt=at(monday(), 10), idempotencyKey="zap-retry", requireFree=require_free)
    gate = threading.Barrier(12)

    def attempt(_):
        gate.wait()
        answer = requests.post(url, json=body, headers={"X-Callnfy-Key": account.api_key}, timeout=60)
        return answer.status_code, answer.json()["data"]["id"] if answer.ok else answer.json()

    try:
        with ThreadPoolExecutor(12) as pool:
            results = list(pool.map(attempt, range(12)))
    finally:
        server.shutdown()
    assert sorted(status for status, _ in results) == [200] * 11 + [201], results
    assert len({appointment_id for _, appointment_id in results}) == 1
    assert count(Appointment, account.user_id) == 1
    assert count(Event, account.user_id, Event.type == "appointment.created") == 1


@pytest.mark.shows_status(("POST", "/zapier/v1/appointments", "409"))
def test_require_free_refuses_a_taken_slot_with_a_message_a_zap_user_understands(account):
    in_utc(account)
    day = monday()
    account.book(scheduledAt=at(day, 10), duration=30)
    taken = z(account, "post", "/appointments", json=appointment_body(
        scheduledAt=at(day, 10, 15), duration=30, requireFree=True, customerPhone="+447700900999"))
    assert taken.status_code == 409
    error = taken.json["error"]
    assert error["code"] == "SLOT_UNAVAILABLE"
    assert error["message"].startswith(f"{ms(at(day, 10, 15))} for 30 minutes is not free (another appointment")
    assert "Find Available Times" in error["message"]
    assert error["details"]["conflicts"] == [{"start": ms(at(day, 10)), "end": ms(at(day, 10, 30)),
                                              "source": "appointment"}]
    evening = z(account, "post", "/appointments", json=appointment_body(
        scheduledAt=at(day, 18), duration=30, requireFree=True))
    assert evening.status_code == 409 and "outside your working hours" in evening.json["error"]["message"]
    assert count(Appointment, account.user_id) == 1
    # Without requireFree the same slot is booked: the owner's choice.
    assert z(account, "post", "/appointments", json=appointment_body(scheduledAt=at(day, 10, 15))).status_code == 201


# -- reschedule, cancel, complete -------------------------------------------------------------------

def test_reschedule_moves_and_resizes_with_require_free_checked_but_not_against_itself(account):
    in_utc(account)
    day = monday()
    other = account.book(scheduledAt=at(day, 11), duration=30)
    booked = account.book(scheduledAt=at(day, 10), duration=30)
    path = f"/appointments/{booked['id']}/reschedule"

    moved = z(account, "post", path, json={"scheduledAt": at(day, 10, 15), "duration": 40, "requireFree": True})
    assert moved.status_code == 200, moved.json
    assert (moved.json["data"]["scheduledAt"], moved.json["data"]["duration"]) == (ms(at(day, 10, 15)), 40)
    onto_other = z(account, "post", path, json={"scheduledAt": at(day, 11), "requireFree": True})
    assert onto_other.status_code == 409 and onto_other.json["error"]["code"] == "SLOT_UNAVAILABLE"
    assert "another appointment" in onto_other.json["error"]["message"]
    kept = account.client.get(f"/appointments/{booked['id']}", headers=account.headers).json["data"]
    assert (kept["scheduledAt"], kept["duration"]) == (ms(at(day, 10, 15)), 40)
    # Without requireFree the time changes, the duration stays.
    later = z(account, "post", path, json={"scheduledAt": at(day, 11)})
    assert (later.json["data"]["scheduledAt"], later.json["data"]["duration"]) == (ms(at(day, 11)), 40)
    db.session.expire_all()
    payloads = [e.payload for e in db.session.scalars(select(Event).where(
        Event.user_id == account.user_id, Event.type == "appointment.rescheduled").order_by(Event.created_at))]
    assert [(p["previousScheduledAt"], p["previousDuration"], p["scheduledAt"], p["duration"]) for p in payloads] == [
        (ms(at(day, 10)), 30, ms(at(day, 10, 15)), 40), (ms(at(day, 10, 15)), 40, ms(at(day, 11)), 40)]
    assert other["id"] not in {p["id"] for p in payloads}


@pytest.mark.shows_status(("POST", "/zapier/v1/appointments/{appointment_id}/reschedule", "409"))
def test_reschedule_cancel_and_complete_answer_404_and_409_as_the_jwt_api(hooks_app, account):
    to_cancel, to_complete = account.book(), account.book()
    cancelled = z(account, "post", f"/appointments/{to_cancel['id']}/cancel", json={"reason": "Payment missed"})
    assert cancelled.status_code == 200
    assert (cancelled.json["data"]["status"], cancelled.json["data"]["cancelReason"]) == ("cancelled", "Payment missed")
    completed = z(account, "post", f"/appointments/{to_complete['id']}/complete", json={"duration": 50})
    assert completed.status_code == 200
    assert (completed.json["data"]["status"], completed.json["data"]["duration"]) == ("completed", 50)
    for path, body in ((f"/appointments/{to_cancel['id']}/complete", {}),
                       (f"/appointments/{to_complete['id']}/cancel", {}),
                       (f"/appointments/{to_cancel['id']}/reschedule", {"scheduledAt": "2026-12-05T10:00:00Z"}),
                       (f"/appointments/{to_cancel['id']}/reschedule",
                        {"scheduledAt": "2026-12-05T10:00:00Z", "requireFree": True})):
        refused = z(account, "post", path, json=body)
        assert (refused.status_code, refused.json["error"]["code"]) == (409, "INVALID_TRANSITION"), path
    stranger = Account(hooks_app)
    fresh = account.book()
    for action, body in (("cancel", {}), ("complete", {}), ("reschedule", {"scheduledAt": "2026-12-05T10:00:00Z"})):
        for appointment_id in (fresh["id"], "appt_nothing", "not-an-id"):
            missing = z(stranger, "post", f"/appointments/{appointment_id}/{action}", json=body)
            assert missing.status_code == 404 and missing.json["error"]["code"] == "NOT_FOUND"
    assert account.client.get(f"/appointments/{fresh['id']}", headers=account.headers).json["data"] == fresh


# -- searches ---------------------------------------------------------------------------------------

def test_find_customer_by_phone_as_stored_or_email_in_any_case(hooks_app, account):
    ann = account.book(customerName="Ann", customerPhone="+447700900123", customerEmail="Ann@Example.com")
    account.book(customerName="Bob", customerPhone="+447700900456", customerEmail="bob@example.com")
    found = z(account, "get", "/customers", query_string={"phone": "07700 900123"})  # national, spaced: UK default
    assert found.status_code == 200
    assert found.json["data"] == [{"id": ann["customerId"], "name": "Ann", "phone": "+447700900123",
                                   "email": "Ann@Example.com"}]
    assert z(account, "get", "/customers", query_string={"email": "ann@EXAMPLE.com"}).json["data"] == found.json["data"]
    assert z(account, "get", "/customers", query_string={"phone": "+447700900123",
                                                         "email": "bob@example.com"}).json["data"] == []
    assert z(account, "get", "/customers", query_string={"phone": "+447700900000"}).json["data"] == []
    missing = z(account, "get", "/customers")
    assert missing.status_code == 400 and "phone" in missing.json["error"]["details"]
    # Another account's key finds nothing of this one's.
    assert z(Account(hooks_app), "get", "/customers", query_string={"phone": "+447700900123"}).json["data"] == []


def test_find_appointments_lists_upcoming_soonest_first_then_past_latest_first(hooks_app, account):
    now = datetime.now(UTC).replace(microsecond=0)

    def book(delta: timedelta, **overrides):
        when = (now + delta).isoformat().replace("+00:00", "Z")
        return account.book(scheduledAt=when, customerEmail="ann@example.com", **overrides)["id"]

    past_far, future_far, past_near = book(-timedelta(days=9)), book(timedelta(days=9)), book(-timedelta(days=1))
    future_near, cancelled = book(timedelta(days=1)), book(timedelta(days=3))
    account.book(customerPhone="+447700900456", customerEmail="bob@example.com")  # someone else's
    z(account, "post", f"/appointments/{cancelled}/cancel")
    answer = z(account, "get", "/appointments", query_string={"customerPhone": "+44 7700 900123"})
    assert answer.status_code == 200
    assert [a["id"] for a in answer.json["data"]] == [future_near, cancelled, future_far, past_near, past_far]
    by_email = z(account, "get", "/appointments", query_string={"customerEmail": "ANN@example.com",
                                                                "status": "scheduled"})
    assert [a["id"] for a in by_email.json["data"]] == [future_near, future_far, past_near, past_far]
    missing = z(account, "get", "/appointments", query_string={"status": "scheduled"})
    assert missing.status_code == 400 and "customerPhone" in missing.json["error"]["details"]
    stranger = Account(hooks_app)
    assert z(stranger, "get", "/appointments", query_string={"customerPhone": "+447700900123"}).json["data"] == []


def test_find_available_times_answers_the_next_free_slots_around_appointments(account):
    in_utc(account)
    day = monday()
    account.book(scheduledAt=at(day, 9), duration=30)
    answer = z(account, "get", "/availability/slots", query_string={"duration": 30, "from": at(day, 0)})
    assert answer.status_code == 200, answer.json
    assert answer.json["data"] == [{"start": ms(at(day, 9, 30)), "end": ms(at(day, 10))},
                                   {"start": ms(at(day, 9, 45)), "end": ms(at(day, 10, 15))},
                                   {"start": ms(at(day, 10)), "end": ms(at(day, 10, 30))}]
    # Friday afternoon: the search carries on past the weekend.
    friday = day + timedelta(days=4)
    late = z(account, "get", "/availability/slots", query_string={"duration": 60, "from": at(friday, 15, 30),
                                                                  "count": 3})
    assert [s["start"] for s in late.json["data"]] == [ms(at(friday, 15, 30)), ms(at(friday, 15, 45)),
                                                       ms(at(friday, 16))]
    assert z(account, "get", "/availability/slots", query_string={
        "duration": 60, "from": at(friday, 16, 5), "count": 2}).json["data"][1]["start"] == ms(
        at(friday + timedelta(days=3), 9, 15))
    for query in ({"count": 3}, {"duration": 30, "count": 21}, {"duration": 30, "count": 0}, {"duration": 0}):
        refused = z(account, "get", "/availability/slots", query_string=query)
        assert refused.status_code == 400, query


def test_find_available_times_searches_week_by_week_up_to_31_days(account):
    """Open on Sundays 09:00–09:30 only: one slot a week, so twenty asked for finds the four Sundays
    within 31 days, each from another week's window."""
    answer = account.client.put("/integrations/availability/settings", headers=account.headers, json={
        "timeZone": "America/New_York", "workingHours": {
            **{d: [] for d in ("mon", "tue", "wed", "thu", "fri", "sat")}, "sun": [["09:00", "09:30"]]}})
    assert answer.status_code == 200
    start = monday()
    found = z(account, "get", "/availability/slots", query_string={"duration": 30, "count": 20,
                                                                   "from": at(start, 12)}).json["data"]
    sundays = [start + timedelta(days=6 + 7 * week) for week in range(4)]
    assert [s["start"][:10] for s in found] == [d.isoformat() for d in sundays]
    assert all(s["start"][11:16] in ("13:00", "14:00") for s in found)  # 09:00 in New York, EDT or EST
