"""/appointments: every success path, every validation and transition error, tenant isolation."""

import json
import re
import uuid

import pytest
from sqlalchemy import select

from callnfy_integrations.events.models import Event
from callnfy_integrations.extensions import db
from tests.factories import appointment_body, auth_headers, row_counts

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def headers(user_id):
    return auth_headers(user_id)


def create(client, headers, **overrides):
    response = client.post("/appointments", json=appointment_body(**overrides), headers=headers)
    assert response.status_code == 201, response.json
    return response.json["data"]


def events_of(event_type):
    return db.session.scalars(select(Event).where(Event.type == event_type).order_by(Event.created_at)).all()


def test_create_appointment(client, app_ctx, headers, user_id):
    response = client.post("/appointments", headers=headers, json=appointment_body(
        customerPhone="07700 900123", scheduledAt="2026-12-01T11:00:00+01:00"))
    assert response.status_code == 201
    data = response.json["data"]
    assert data["id"].startswith("appt_") and data["customerId"].startswith("cust_")
    assert data["customerPhone"] == "+447700900123"  # normalised to E.164
    assert data["scheduledAt"] == "2026-12-01T10:00:00.000Z"  # stored and shown in UTC
    assert (data["status"], data["source"], data["duration"]) == ("scheduled", "callnfy", 30)
    assert ISO_MS.match(data["createdAt"]) and ISO_MS.match(data["updatedAt"])
    [event] = events_of("appointment.created")
    assert event.user_id == user_id
    assert event.payload == {
        "id": data["id"], "customerId": data["customerId"], "customerName": "Ann Example",
        "customerPhone": "+447700900123", "customerEmail": "ann@example.com",
        "scheduledAt": "2026-12-01T10:00:00.000Z", "duration": 30, "status": "scheduled", "notes": "First visit",
        "source": "callnfy"}


def test_duration_defaults_to_thirty_minutes(client, headers):
    body = appointment_body()
    del body["duration"]
    assert client.post("/appointments", json=body, headers=headers).json["data"]["duration"] == 30


def test_unparseable_phone_is_kept_as_given(client, headers):
    assert create(client, headers, customerPhone="ext. 42 front desk")["customerPhone"] == "ext. 42 front desk"


def test_same_phone_finds_the_same_customer_and_updates_its_name(client, headers):
    first = create(client, headers, customerPhone="+447700900123", customerName="Ann")
    second = create(client, headers, customerPhone="+44 7700 900123", customerName="Ann Smith")
    assert first["customerId"] == second["customerId"]
    assert client.get(f"/appointments/{first['id']}", headers=headers).json["data"]["customerName"] == "Ann Smith"


def test_customers_are_per_user(client):
    a = create(client, auth_headers(uuid.uuid4()))
    b = create(client, auth_headers(uuid.uuid4()))
    assert a["customerId"] != b["customerId"]


@pytest.mark.parametrize("overrides, field", [
    ({"scheduledAt": "2026-12-01T10:00:00"}, "scheduledAt"),        # naive: no timezone
    ({"scheduledAt": "next tuesday"}, "scheduledAt"),
    ({"scheduledAt": None}, "scheduledAt"),
    ({"duration": 0}, "duration"),
    ({"duration": 1441}, "duration"),
    ({"duration": "30"}, "duration"),
    ({"duration": 12.5}, "duration"),
    ({"customerName": ""}, "customerName"),
    ({"customerName": "x" * 201}, "customerName"),
    ({"customerPhone": "1" * 33}, "customerPhone"),
    ({"customerEmail": "not-an-email"}, "customerEmail"),
    ({"notes": "n" * 5001}, "notes"),
    ({"status": "completed"}, "status"),                             # not a client field
])
def test_create_rejects_invalid_field_and_writes_nothing(client, app_ctx, headers, overrides, field):
    before = row_counts()
    response = client.post("/appointments", json=appointment_body(**overrides), headers=headers)
    assert response.status_code == 400
    assert response.json["error"]["code"] == "VALIDATION_ERROR"
    assert field in response.json["error"]["details"]
    assert row_counts() == before


@pytest.mark.parametrize("missing", ["customerName", "customerPhone", "scheduledAt"])
def test_create_requires_fields(client, app_ctx, headers, missing):
    body = appointment_body()
    del body[missing]
    response = client.post("/appointments", json=body, headers=headers)
    assert response.status_code == 400 and missing in response.json["error"]["details"]
    assert row_counts()["appointments"] == 0


def test_get_appointment(client, headers):
    created = create(client, headers)
    assert client.get(f"/appointments/{created['id']}", headers=headers).json["data"] == created


@pytest.mark.parametrize("make_id", [
    lambda own: own.replace("appt_", "call_"),
    lambda own: "appt_" + uuid.uuid4().hex,
    lambda own: "appt_not-hex",
    lambda own: "12",
])
def test_unknown_or_malformed_id_is_404(client, headers, make_id):
    own = create(client, headers)["id"]
    response = client.get(f"/appointments/{make_id(own)}", headers=headers)
    assert response.status_code == 404 and response.json["error"]["code"] == "NOT_FOUND"


def test_other_users_appointment_is_invisible_and_untouchable(client, app_ctx):
    owner, stranger = auth_headers(uuid.uuid4()), auth_headers(uuid.uuid4())
    appointment = create(client, owner)
    path = f"/appointments/{appointment['id']}"
    assert client.get(path, headers=stranger).status_code == 404
    assert client.patch(path, json={"duration": 60}, headers=stranger).status_code == 404
    assert client.post(f"{path}/cancel", json={}, headers=stranger).status_code == 404
    assert client.post(f"{path}/complete", json={}, headers=stranger).status_code == 404
    assert client.get("/appointments", headers=stranger).json["data"] == []
    assert client.get(path, headers=owner).json["data"] == appointment  # unchanged
    assert len(events_of("appointment.created")) == 1 and row_counts()["events"] == 1


def test_list_is_newest_first_and_paginated(client, headers):
    ids = [create(client, headers, scheduledAt=f"2026-12-0{i}T10:00:00Z")["id"] for i in range(1, 6)]
    first = client.get("/appointments?page=1&page_size=2", headers=headers)
    assert [a["id"] for a in first.json["data"]] == ids[::-1][:2]
    meta = json.loads(first.headers["X-Pagination"])
    assert (meta["total"], meta["total_pages"], meta["page"], meta["next_page"]) == (5, 3, 1, 2)
    last = client.get("/appointments?page=3&page_size=2", headers=headers)
    assert [a["id"] for a in last.json["data"]] == [ids[0]]
    # However far past the end (an OFFSET PostgreSQL's bigint cannot hold was once a 500): empty.
    for page in (4, 807515902247111753728):
        past = client.get(f"/appointments?page={page}&page_size=2", headers=headers)
        assert past.status_code == 200 and past.json["data"] == []
        assert json.loads(past.headers["X-Pagination"])["total"] == 5


def test_list_filters_by_status_and_time_window(client, headers):
    early = create(client, headers, scheduledAt="2026-12-01T09:00:00Z")
    middle = create(client, headers, scheduledAt="2026-12-02T09:00:00Z")
    late = create(client, headers, scheduledAt="2026-12-03T09:00:00Z")
    client.post(f"/appointments/{middle['id']}/cancel", json={}, headers=headers)

    def ids(query):
        response = client.get(f"/appointments?{query}", headers=headers)
        assert response.status_code == 200, response.json
        return {a["id"] for a in response.json["data"]}

    assert ids("status=cancelled") == {middle["id"]}
    assert ids("status=scheduled") == {early["id"], late["id"]}
    assert ids("from=2026-12-02T00:00:00Z") == {middle["id"], late["id"]}
    assert ids("to=2026-12-02T00:00:00Z") == {early["id"]}
    assert ids("from=2026-12-01T12:00:00Z&to=2026-12-03T00:00:00Z&status=cancelled") == {middle["id"]}
    # A window that ends where (or before) it starts holds nothing: an empty list, not an error.
    assert ids("from=2026-12-02T00:00:00Z&to=2026-12-02T00:00:00Z") == set()
    assert ids("from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z") == set()


@pytest.mark.parametrize("query, field", [
    ("status=pending", "status"), ("from=yesterday", "from"), ("from=2026-12-01T00:00:00", "from"),
    ("page=0", "page"), ("page_size=1000", "page_size"), ("stauts=cancelled", "stauts"),
])
def test_list_rejects_bad_filters(client, headers, query, field):
    response = client.get(f"/appointments?{query}", headers=headers)
    assert response.status_code == 400 and field in response.json["error"]["details"]


def test_patch_reschedules_and_emits_updated(client, app_ctx, headers):
    created = create(client, headers)
    response = client.patch(f"/appointments/{created['id']}", headers=headers, json={
        "scheduledAt": "2026-12-05T15:30:00Z", "duration": 60, "notes": "Moved", "customerName": "Ann B."})
    assert response.status_code == 200
    data = response.json["data"]
    assert (data["scheduledAt"], data["duration"], data["notes"], data["customerName"]) == (
        "2026-12-05T15:30:00.000Z", 60, "Moved", "Ann B.")
    [event] = events_of("appointment.updated")
    assert event.payload["scheduledAt"] == "2026-12-05T15:30:00.000Z" and event.payload["duration"] == 60
    from callnfy_integrations.appointments.models import Appointment
    from callnfy_integrations.public_ids import APPOINTMENT, decode
    assert db.session.get(Appointment, decode(APPOINTMENT, created["id"])).version == 2


def test_patch_phone_relinks_to_that_customer(client, headers):
    other = create(client, headers, customerPhone="+447700900999", customerName="Cara")
    created = create(client, headers)
    data = client.patch(f"/appointments/{created['id']}", json={"customerPhone": "+447700900999"},
                        headers=headers).json["data"]
    assert data["customerId"] == other["customerId"] and data["customerName"] == "Cara"


@pytest.mark.parametrize("body, field", [
    ({}, "_schema"), ({"duration": 0}, "duration"), ({"scheduledAt": "2026-12-01T10:00"}, "scheduledAt"),
    ({"status": "cancelled"}, "status"), ({"customerEmail": "@"}, "customerEmail"),
])
def test_patch_rejects_invalid_bodies_and_changes_nothing(client, app_ctx, headers, body, field):
    created = create(client, headers)
    before = row_counts()
    response = client.patch(f"/appointments/{created['id']}", json=body, headers=headers)
    assert response.status_code == 400 and field in response.json["error"]["details"]
    assert client.get(f"/appointments/{created['id']}", headers=headers).json["data"] == created
    assert row_counts() == before


def test_cancel_records_reason_and_emits_cancelled(client, app_ctx, headers):
    created = create(client, headers)
    response = client.post(f"/appointments/{created['id']}/cancel", json={"reason": "Feeling better"},
                           headers=headers)
    data = response.json["data"]
    assert response.status_code == 200 and data["status"] == "cancelled"
    assert data["cancelReason"] == "Feeling better" and ISO_MS.match(data["cancelledAt"])
    [event] = events_of("appointment.cancelled")
    assert event.payload == {
        "id": created["id"], "customerId": created["customerId"], "customerName": "Ann Example",
        "customerPhone": "+447700900123", "customerEmail": "ann@example.com",
        "scheduledAt": created["scheduledAt"], "duration": 30, "status": "cancelled", "notes": "First visit",
        "source": "callnfy", "cancelledAt": data["cancelledAt"], "reason": "Feeling better"}


def test_cancel_without_body_is_allowed(client, headers):
    created = create(client, headers)
    response = client.post(f"/appointments/{created['id']}/cancel", headers=headers)
    assert response.status_code == 200 and response.json["data"]["cancelReason"] is None


def test_complete_with_duration_emits_completed(client, app_ctx, headers):
    created = create(client, headers)
    response = client.post(f"/appointments/{created['id']}/complete", json={"duration": 50}, headers=headers)
    data = response.json["data"]
    assert response.status_code == 200 and (data["status"], data["duration"]) == ("completed", 50)
    [event] = events_of("appointment.completed")
    assert event.payload["completedAt"] == data["completedAt"] and event.payload["duration"] == 50
    assert set(event.payload) == {"id", "customerId", "customerName", "customerPhone", "customerEmail",
                                  "scheduledAt", "duration", "status", "notes", "source", "completedAt"}


@pytest.mark.parametrize("first, then", [
    ("cancel", "complete"), ("cancel", "cancel"), ("complete", "cancel"), ("complete", "complete"),
    ("cancel", "patch"), ("complete", "patch"),
])
def test_only_scheduled_appointments_transition(client, app_ctx, headers, first, then):
    created = create(client, headers)
    client.post(f"/appointments/{created['id']}/{first}", json={}, headers=headers)
    before = client.get(f"/appointments/{created['id']}", headers=headers).json["data"]
    events_before = row_counts()["events"]
    if then == "patch":
        response = client.patch(f"/appointments/{created['id']}", json={"duration": 90}, headers=headers)
    else:
        response = client.post(f"/appointments/{created['id']}/{then}", json={}, headers=headers)
    assert response.status_code == 409 and response.json["error"]["code"] == "INVALID_TRANSITION"
    assert client.get(f"/appointments/{created['id']}", headers=headers).json["data"] == before
    assert row_counts()["events"] == events_before


@pytest.mark.parametrize("action, body, field", [
    ("cancel", {"reason": "r" * 501}, "reason"), ("complete", {"duration": 0}, "duration"),
    ("complete", {"duration": 99999}, "duration"), ("cancel", {"why": "x"}, "why"),
])
def test_transition_bodies_are_validated(client, headers, action, body, field):
    created = create(client, headers)
    response = client.post(f"/appointments/{created['id']}/{action}", json=body, headers=headers)
    assert response.status_code == 400 and field in response.json["error"]["details"]
    assert client.get(f"/appointments/{created['id']}", headers=headers).json["data"]["status"] == "scheduled"


@pytest.mark.parametrize("method, path", [
    ("get", "/appointments"), ("post", "/appointments"), ("get", "/appointments/appt_x"),
    ("patch", "/appointments/appt_x"), ("post", "/appointments/appt_x/cancel"),
    ("post", "/appointments/appt_x/complete"), ("get", "/calls"), ("post", "/calls"), ("get", "/calls/call_x"),
])
def test_every_domain_endpoint_requires_a_token(client, method, path):
    response = getattr(client, method)(path, json={} if method != "get" else None)
    assert response.status_code == 401 and response.json["error"]["code"] == "UNAUTHORIZED"
