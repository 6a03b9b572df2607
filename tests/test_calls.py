"""/calls: record, list, get; validation; isolation; the call.received event."""

import json
import uuid

import pytest
from sqlalchemy import select

from callnfy_integrations.events.models import Event
from callnfy_integrations.extensions import db
from tests.factories import auth_headers, call_body, row_counts


@pytest.fixture
def headers(user_id):
    return auth_headers(user_id)


def test_record_call_and_emit_call_received(client, app_ctx, headers, user_id):
    response = client.post("/calls", json=call_body(), headers=headers)
    assert response.status_code == 201
    data = response.json["data"]
    assert data["id"].startswith("call_") and data["customerId"].startswith("cust_")
    assert (data["duration"], data["sentiment"], data["receivedAt"]) == (125, "positive", "2026-11-20T09:30:00.250Z")
    event = db.session.scalars(select(Event)).one()
    assert (event.type, event.user_id) == ("call.received", user_id)
    assert event.payload == {
        "id": data["id"], "customerId": data["customerId"], "customerName": "Bob Caller",
        "customerPhone": "+14155550123", "duration": 125, "recordingUrl": "https://recordings.callnfy.test/abc.mp3",
        "transcript": "Hello, I'd like to book.", "sentiment": "positive", "receivedAt": "2026-11-20T09:30:00.250Z"}


def test_minimal_call_defaults_received_at_and_names_customer_by_phone(client, headers):
    response = client.post("/calls", json={"customerPhone": "+14155550124", "duration": 0}, headers=headers)
    data = response.json["data"]
    assert response.status_code == 201 and data["customerName"] == "+14155550124"
    assert data["recordingUrl"] is None and data["receivedAt"].endswith("Z")


def test_call_from_known_phone_reuses_the_customer(client, headers):
    appointment = client.post("/appointments", headers=headers, json={
        "customerName": "Ann", "customerPhone": "+447700900123", "scheduledAt": "2026-12-01T10:00:00Z"}).json["data"]
    call = client.post("/calls", json={"customerPhone": "07700 900123", "duration": 10}, headers=headers).json["data"]
    assert call["customerId"] == appointment["customerId"] and call["customerName"] == "Ann"


@pytest.mark.parametrize("overrides, field", [
    ({"duration": -1}, "duration"), ({"duration": 86401}, "duration"), ({"duration": "60"}, "duration"),
    ({"recordingUrl": "ftp://files.example/a.mp3"}, "recordingUrl"), ({"recordingUrl": "javascript:alert(1)"},
                                                                       "recordingUrl"),
    ({"recordingUrl": "https://x.example/" + "a" * 2048}, "recordingUrl"),
    ({"sentiment": "ecstatic"}, "sentiment"), ({"receivedAt": "2026-11-20T09:30:00"}, "receivedAt"),
    ({"transcript": "t" * 100_001}, "transcript"), ({"customerPhone": ""}, "customerPhone"),
    ({"customerName": "n" * 201}, "customerName"), ({"caller": "x"}, "caller"),
])
def test_record_rejects_invalid_field_and_writes_nothing(client, app_ctx, headers, overrides, field):
    before = row_counts()
    response = client.post("/calls", json=call_body(**overrides), headers=headers)
    assert response.status_code == 400 and field in response.json["error"]["details"]
    assert row_counts() == before


def test_list_calls_newest_first_paginated_and_isolated(client, headers):
    times = ["2026-11-20T09:00:00Z", "2026-11-22T09:00:00Z", "2026-11-21T09:00:00Z"]
    ids = {t: client.post("/calls", json=call_body(receivedAt=t), headers=headers).json["data"]["id"] for t in times}
    client.post("/calls", json=call_body(), headers=auth_headers(uuid.uuid4()))
    response = client.get("/calls?page_size=2", headers=headers)
    assert [c["id"] for c in response.json["data"]] == [ids[times[1]], ids[times[2]]]
    assert json.loads(response.headers["X-Pagination"])["total"] == 3


def test_get_call_and_other_users_call_is_404(client, headers):
    call = client.post("/calls", json=call_body(), headers=headers).json["data"]
    assert client.get(f"/calls/{call['id']}", headers=headers).json["data"] == call
    assert client.get(f"/calls/{call['id']}", headers=auth_headers(uuid.uuid4())).status_code == 404
    assert client.get("/calls/call_" + uuid.uuid4().hex, headers=headers).status_code == 404
