"""Inputs that once answered 500 (found by fuzzing): times near the calendar's ends, years before
1000, bodies nested thousands deep. Each now gets a 400 in the envelope and writes nothing."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from callnfy_integrations.appointments.models import Appointment
from callnfy_integrations.extensions import db
from callnfy_integrations.timestamps import format_timestamp
from tests.factories import appointment_body, auth_headers, call_body


def count_appointments() -> int:
    return db.session.scalar(select(func.count()).select_from(Appointment))


def test_appointment_times_must_be_within_ten_years_of_now(client, app_ctx, user_id):
    headers = auth_headers(user_id)
    now = datetime.now(timezone.utc)
    for when in ("8102-11-30T23:10:10+23:01", "0001-01-01T00:00:00-23:59",
                 format_timestamp(now + timedelta(days=11 * 366)), format_timestamp(now - timedelta(days=11 * 366))):
        answer = client.post("/appointments", json=appointment_body(scheduledAt=when), headers=headers)
        assert answer.status_code == 400, (when, answer.json)
        assert answer.json["error"]["details"]["scheduledAt"] == ["Must be within 10 years of now."]
    assert count_appointments() == 0
    booked = client.post("/appointments", json=appointment_body(
        scheduledAt=format_timestamp(now + timedelta(days=9 * 365))), headers=headers)
    assert booked.status_code == 201
    moved = client.patch(f"/appointments/{booked.json['data']['id']}", json={"scheduledAt": "9999-12-31T23:59:59Z"},
                         headers=headers)
    assert moved.status_code == 400 and moved.json["success"] is False
    listed = client.get("/appointments", query_string={"from": "8102-11-30T23:10:10+23:01"}, headers=headers)
    assert listed.status_code == 400


def test_call_times_are_held_to_the_same_range(client, app_ctx, user_id):
    answer = client.post("/calls", json=call_body(receivedAt="0329-05-23T00:00:00Z"), headers=auth_headers(user_id))
    assert answer.status_code == 400 and "receivedAt" in answer.json["error"]["details"]


def test_timestamps_before_the_year_1000_are_still_iso_8601():
    assert format_timestamp(datetime(329, 5, 23, tzinfo=timezone.utc)) == "0329-05-23T00:00:00.000Z"
    assert format_timestamp(datetime(2025, 12, 22, 10, 45, 0, 123456, tzinfo=timezone.utc)) == \
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
