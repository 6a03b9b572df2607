"""Inputs that once answered 500 (found by fuzzing): times near the calendar's ends, years before
1000, bodies nested thousands deep. Each now gets a 400 in the envelope and writes nothing."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from sqlalchemy import func, select

from callnfy_integrations.appointments.models import Appointment
from callnfy_integrations.extensions import db
from callnfy_integrations.timestamps import format_timestamp
from tests.factories import appointment_body, auth_headers, call_body


def count_appointments() -> int:
    return db.session.scalar(select(func.count()).select_from(Appointment))


def test_appointment_times_must_be_within_ten_years_of_this_year(client, app_ctx, user_id):
    headers = auth_headers(user_id)
    year = datetime.now(UTC).year
    for when in ("8102-11-30T23:10:10+23:01", "0001-01-01T00:00:00-23:59", f"{year + 11}-01-01T00:00:00Z",
                 f"{year - 11}-12-31T23:59:59Z", f"{year - 11}-12-31T23:59:59-05:00"):
        answer = client.post("/appointments", json=appointment_body(scheduledAt=when), headers=headers)
        assert answer.status_code == 400, (when, answer.json)
        assert answer.json["error"]["details"]["scheduledAt"] == ["Year must be within 10 years of this year."]
    assert count_appointments() == 0
    # The year as written counts: the last second of year+10, even at -23:59 (year+11 in UTC), is fine.
    for when in (f"{year + 10}-12-31T23:59:59-23:59", f"{year - 10}-01-01T00:00:00+23:59"):
        booked = client.post("/appointments", json=appointment_body(scheduledAt=when), headers=headers)
        assert booked.status_code == 201, (when, booked.json)
    moved = client.patch(f"/appointments/{booked.json['data']['id']}", json={"scheduledAt": "9999-12-31T23:59:59Z"},
                         headers=headers)
    assert moved.status_code == 400 and moved.json["success"] is False
    listed = client.get("/appointments", query_string={"from": "8102-11-30T23:10:10+23:01"}, headers=headers)
    assert listed.status_code == 400


def test_call_times_are_held_to_the_same_range(client, app_ctx, user_id):
    answer = client.post("/calls", json=call_body(receivedAt="0329-05-23T00:00:00Z"), headers=auth_headers(user_id))
    assert answer.status_code == 400 and "receivedAt" in answer.json["error"]["details"]


def test_timestamps_before_the_year_1000_are_still_iso_8601():
    assert format_timestamp(datetime(329, 5, 23, tzinfo=UTC)) == "0329-05-23T00:00:00.000Z"
    assert format_timestamp(datetime(2025, 12, 22, 10, 45, 0, 123456, tzinfo=UTC)) == \
        "2025-12-22T10:45:00.123Z"


def test_a_deeply_nested_body_is_a_400_not_a_500(client, app_ctx, user_id):
    headers = {**auth_headers(user_id), "Content-Type": "application/json"}
    for depth in (33, 5000, 100_000):
        answer = client.post("/appointments", data="[" * depth + "]" * depth, headers=headers)
        assert answer.status_code == 400, depth
        assert answer.json["error"]["message"] == "Request body is nested too deeply"
    nested_strings = appointment_body(notes="[[[[{{{{" * 100)  # brackets inside strings do not count
    assert client.post("/appointments", json=nested_strings, headers=auth_headers(user_id)).status_code == 201
    assert count_appointments() == 1


def test_the_document_states_the_time_rule_as_a_pattern(client):
    """What the document says is what is refused: its pattern accepts exactly the years the check does."""
    spec = client.get("/openapi.json").json
    pattern = spec["components"]["schemas"]["AppointmentCreate"]["properties"]["scheduledAt"]["pattern"]
    year = datetime.now(UTC).year
    assert [y for y in range(1, 10000) if re.match(pattern, f"{y:04d}-01-01T00:00:00Z")] == \
        list(range(year - 10, year + 11))


def test_strings_postgresql_cannot_store_are_a_400(client, app_ctx, user_id):
    """A NUL character (text columns refuse it) or an unpaired surrogate (not UTF-8) once reached
    PostgreSQL and answered 500."""
    headers = auth_headers(user_id)
    for bad in (r"Ann\u0000Example", r"Ann \udb72 Example"):  # JSON escapes, as a client sends them
        body = json.dumps(appointment_body()).replace('"Ann Example"', f'"{bad}"')
        answer = client.post("/appointments", data=body, headers={**headers, "Content-Type": "application/json"})
        assert answer.status_code == 400, answer.json
        assert answer.json["error"]["details"] == {
            "customerName": ["Must not contain NUL characters or unpaired surrogates."]}
    answer = client.post("/calls", json=call_body(transcript=["not", "a", "string\x00"]), headers=headers)
    assert answer.status_code == 400 and list(answer.json["error"]["details"]) == ["transcript.2"]
    listed = client.get("/appointments?status=sched%00uled", headers=headers)
    assert listed.status_code == 400 and "status" in listed.json["error"]["details"]
    assert count_appointments() == 0


def test_undocumented_query_parameters_are_refused_on_the_api_only(client, app_ctx, user_id):
    headers = auth_headers(user_id)
    typo = client.get("/appointments?stauts=cancelled&page=1", headers=headers)
    assert typo.status_code == 400
    assert typo.json["error"] == {"code": "VALIDATION_ERROR", "message": "Unknown query parameter",
                                  "details": {"stauts": ["Unknown field."]}}
    assert client.get("/calls?page=1&page_size=5", headers=headers).status_code == 200
    assert client.get("/calls?sort=asc", headers=headers).status_code == 400
    # Google adds its own parameters to the OAuth callback: they are not refused there.
    callback = client.get("/integrations/google/callback?state=unknown&code=x&scope=email&authuser=0&prompt=consent")
    assert callback.status_code == 302 and "error=" in callback.headers["Location"]


def test_an_empty_patch_is_documented_as_invalid_and_refused(client, app_ctx, user_id):
    spec = client.get("/openapi.json").json
    assert spec["components"]["schemas"]["AppointmentUpdate"]["minProperties"] == 1
    headers = auth_headers(user_id)
    booked = client.post("/appointments", json=appointment_body(), headers=headers).json["data"]
    answer = client.patch(f"/appointments/{booked['id']}", json={}, headers=headers)
    assert answer.status_code == 400 and answer.json["error"]["details"] == {
        "_schema": ["Give at least one field to change"]}


def test_x_pagination_is_documented_as_json(client, app_ctx, user_id):
    spec = client.get("/openapi.json").json
    header = spec["components"]["headers"]["PAGINATION"]
    assert "schema" not in header and header["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PaginationMetadata"}
    answer = client.get("/calls", headers=auth_headers(user_id))
    assert json.loads(answer.headers["X-Pagination"]) == {"total": 0, "total_pages": 0}


def test_cancel_and_complete_bodies_are_documented_as_optional_and_are(client, app_ctx, user_id):
    spec = client.get("/openapi.json").json
    for action in ("cancel", "complete"):
        assert spec["paths"][f"/appointments/{{appointment_id}}/{action}"]["post"]["requestBody"]["required"] is False
    headers = auth_headers(user_id)
    for action, status in (("cancel", "cancelled"), ("complete", "completed")):
        booked = client.post("/appointments", json=appointment_body(), headers=headers).json["data"]
        answer = client.post(f"/appointments/{booked['id']}/{action}", headers=headers)  # no body at all
        assert answer.status_code == 200 and answer.json["data"]["status"] == status
