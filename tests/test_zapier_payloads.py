"""Webhook bodies follow the product spec's examples field by field; samples have exactly the live shape."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook

from tests.factories import appointment_body
from tests.zapier_fixtures import run_worker

# The product spec, section "Zapier Webhook Events" → "Event Types" (examples 1-4), copied verbatim:
# CI has no access to the spec itself.
SPEC_EXAMPLES = {
    "appointment.created": {
        "event": "appointment.created",
        "timestamp": "2025-12-22T10:45:00.000Z",
        "data": {
            "id": "appt_123",
            "customerId": "cust_456",
            "customerName": "John Doe",
            "customerPhone": "+44 7700 900123",
            "scheduledAt": "2025-12-23T14:00:00.000Z",
            "duration": 30,
            "status": "scheduled",
            "notes": "First consultation",
        },
    },
    "appointment.cancelled": {
        "event": "appointment.cancelled",
        "timestamp": "2025-12-22T10:50:00.000Z",
        "data": {
            "id": "appt_123",
            "customerId": "cust_456",
            "customerName": "John Doe",
            "cancelledAt": "2025-12-22T10:50:00.000Z",
            "reason": "Customer requested cancellation",
        },
    },
    "appointment.completed": {
        "event": "appointment.completed",
        "timestamp": "2025-12-22T11:00:00.000Z",
        "data": {
            "id": "appt_123",
            "customerId": "cust_456",
            "customerName": "John Doe",
            "completedAt": "2025-12-22T11:00:00.000Z",
            "duration": 30,
        },
    },
    "call.received": {
        "event": "call.received",
        "timestamp": "2025-12-22T11:05:00.000Z",
        "data": {
            "id": "call_789",
            "customerId": "cust_456",
            "customerName": "John Doe",
            "customerPhone": "+44 7700 900123",
            "duration": 180,
            "recordingUrl": "https://api.callnfy.com/recordings/call_789.mp3",
            "transcript": "Full call transcript...",
            "sentiment": "positive",
        },
    },
}
EVENTS = list(SPEC_EXAMPLES)

# What we send beyond the spec's example, each documented in docs/api.md's payload tables: name → kind.
_APPOINTMENT_EXTRAS = {"customerEmail": "str", "source": "str"}
EXTRAS = {
    "appointment.created": _APPOINTMENT_EXTRAS,
    "appointment.cancelled": {**_APPOINTMENT_EXTRAS, "customerPhone": "str", "scheduledAt": "timestamp",
                              "duration": "int", "status": "str", "notes": "str"},
    "appointment.completed": {**_APPOINTMENT_EXTRAS, "customerPhone": "str", "scheduledAt": "timestamp",
                              "status": "str", "notes": "str"},
    "call.received": {"receivedAt": "timestamp"},
}
TOP_LEVEL_EXTRAS = {"id": "evt_id"}  # the event id, also sent as the `webhook-id` header

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
PUBLIC_ID = re.compile(r"^(appt|cust|call|evt)_[0-9A-Za-z]+$")


def kind(value):
    """A value's type and, for strings, its format: what a Zap built on the spec's example relies on."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, str):
        if ISO_MS.match(value):
            return "timestamp"
        if PUBLIC_ID.match(value):
            return value.split("_")[0] + "_id"
        if value.startswith("https://"):
            return "url"
        return "str"
    return type(value).__name__


def shape(body):
    return {**{k: kind(v) for k, v in body.items() if k != "data"},
            "data": {k: kind(v) for k, v in body["data"].items()}}


def assert_follows_the_spec(body):
    """Every field of the spec's example, under its name, of its type and format; extras only as documented."""
    spec = SPEC_EXAMPLES[body["event"]]
    assert set(body) == set(spec) | set(TOP_LEVEL_EXTRAS)
    assert kind(body["timestamp"]) == "timestamp" and kind(body["id"]) == "evt_id"
    assert set(body["data"]) == set(spec["data"]) | set(EXTRAS[body["event"]])
    for name, example in spec["data"].items():
        assert kind(body["data"][name]) == kind(example), (body["event"], name, body["data"][name])
    for name, extra_kind in EXTRAS[body["event"]].items():
        assert kind(body["data"][name]) == extra_kind, (body["event"], name, body["data"][name])


def spec_values(event):
    return SPEC_EXAMPLES[event]["data"]


@pytest.fixture
def delivered_events(hooks_app, account, receiver):
    """One real event of each kind, made through the API with the spec's example values and delivered
    by a real worker to an HTTPS receiver: (bodies by event, API resources by event, samples before)."""
    examples = {event: account.hook("get", f"/samples/{event}").json["data"] for event in EVENTS}
    for event in EVENTS:
        account.subscribe(receiver.url(f"/{event}"), event)
    created = spec_values("appointment.created")
    booking = appointment_body(customerName=created["customerName"], customerPhone=created["customerPhone"],
                               customerEmail="john@example.com", scheduledAt=created["scheduledAt"],
                               duration=created["duration"], notes=created["notes"])
    to_cancel, to_complete = account.book(**booking), account.book(**booking)
    cancelled = account.client.post(f"/appointments/{to_cancel['id']}/cancel", headers=account.headers,
                                    json={"reason": spec_values("appointment.cancelled")["reason"]}).json["data"]
    completed = account.client.post(f"/appointments/{to_complete['id']}/complete", headers=account.headers,
                                    json={"duration": spec_values("appointment.completed")["duration"]}).json["data"]
    call_spec = spec_values("call.received")
    call = account.client.post("/calls", headers=account.headers, json={
        "customerName": call_spec["customerName"], "customerPhone": call_spec["customerPhone"],
        "duration": call_spec["duration"], "recordingUrl": call_spec["recordingUrl"],
        "transcript": call_spec["transcript"], "sentiment": call_spec["sentiment"]}).json["data"]

    run_worker(hooks_app)

    bodies = {}
    for received in receiver.requests:
        body = Webhook(account.api_key.encode()).verify(received.body, received.headers)
        assert received.path == f"/{body['event']}"
        bodies.setdefault(body["event"], []).append(body)
    # Two bookings: the cancelled one's `created` is the one compared with the example.
    assert {event: len(items) for event, items in bodies.items()} == {
        "appointment.created": 2, "appointment.cancelled": 1, "appointment.completed": 1, "call.received": 1}
    resources = {"appointment.created": to_cancel, "appointment.cancelled": cancelled,
                 "appointment.completed": completed, "call.received": call}
    delivered = {"appointment.created": next(b for b in bodies["appointment.created"]
                                             if b["data"]["id"] == to_cancel["id"]),
                 **{event: items[0] for event, items in bodies.items() if event != "appointment.created"}}
    return delivered, resources, examples


@pytest.mark.parametrize("event", EVENTS)
def test_delivered_body_has_every_field_of_the_specs_example(delivered_events, event):
    delivered, resources, _ = delivered_events
    body, resource = delivered[event], resources[event]
    assert_follows_the_spec(body)
    assert body["event"] == event
    sent_at = datetime.strptime(body["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert abs(datetime.now(UTC) - sent_at) < timedelta(minutes=2)  # when the event happened
    data = body["data"]
    # The ids are the public ids the API answers; everything the spec shows is what we were given.
    assert data["id"] == resource["id"] and data["customerId"] == resource["customerId"]
    for name, example in spec_values(event).items():
        if name in ("id", "customerId", "cancelledAt", "completedAt"):
            continue  # ours, not the example's
        if name == "customerPhone":
            assert data[name] == "+447700900123"  # the spec's "+44 7700 900123", stored in E.164
        else:
            assert data[name] == example, (event, name)


def test_event_specific_fields_are_the_moments_the_api_shows(delivered_events):
    delivered, resources, _ = delivered_events
    cancelled, completed = delivered["appointment.cancelled"]["data"], delivered["appointment.completed"]["data"]
    assert cancelled["cancelledAt"] == resources["appointment.cancelled"]["cancelledAt"]
    assert cancelled["reason"] == resources["appointment.cancelled"]["cancelReason"]
    assert completed["completedAt"] == resources["appointment.completed"]["completedAt"]
    assert (cancelled["status"], completed["status"]) == ("cancelled", "completed")
    assert cancelled["scheduledAt"] == resources["appointment.cancelled"]["scheduledAt"]
    assert delivered["call.received"]["data"]["receivedAt"] == resources["call.received"]["receivedAt"]
    assert "appointmentId" not in delivered["appointment.created"]["data"]
    assert "callId" not in delivered["call.received"]["data"]


@pytest.mark.parametrize("event", EVENTS)
def test_sample_example_before_any_event_has_the_live_shape(delivered_events, event):
    delivered, _, examples = delivered_events
    [example] = examples[event]
    assert_follows_the_spec(example)
    assert shape(example) == shape(delivered[event])


@pytest.mark.parametrize("event", EVENTS)
def test_samples_after_a_real_event_are_the_delivered_bodies(delivered_events, account, event):
    delivered, _, _ = delivered_events
    samples = account.hook("get", f"/samples/{event}").json["data"]
    assert delivered[event] in samples  # the very body the receiver got: same id, same data
    for sample in samples:
        assert shape(sample) == shape(delivered[event])


def test_samples_without_any_event_follow_the_spec(account):
    # No subscription, no event, no worker: what Zapier shows while the user builds the Zap.
    for event in EVENTS:
        [example] = account.hook("get", f"/samples/{event}").json["data"]
        assert_follows_the_spec(example)
        assert example["event"] == event and example["data"]["customerName"] == "John Doe"


# `appointment.rescheduled` is ours, not the spec's: every `data` field of `appointment.created` (the
# spec's and our documented extras) plus the time and duration the appointment had before.
RESCHEDULED_FIELDS = {**{name: kind(value) for name, value in spec_values("appointment.created").items()},
                      **EXTRAS["appointment.created"], "previousScheduledAt": "timestamp", "previousDuration": "int"}


def test_rescheduled_is_sent_for_a_new_time_or_duration_only_with_the_previous_ones(hooks_app, account, receiver):
    account.subscribe(receiver.url("/rescheduled"), "appointment.rescheduled")
    [example] = account.hook("get", "/samples/appointment.rescheduled").json["data"]
    booked = account.book(scheduledAt="2026-12-01T10:00:00.000Z", duration=30)
    path = f"/appointments/{booked['id']}"
    notes_only = account.client.patch(path, headers=account.headers, json={"notes": "bring the forms"})
    moved = account.client.patch(path, headers=account.headers, json={"scheduledAt": "2026-12-02T11:15:00Z"})
    same_time = account.client.patch(path, headers=account.headers, json={"scheduledAt": "2026-12-02T11:15:00Z"})
    longer = account.client.patch(path, headers=account.headers, json={"duration": 45})
    assert [r.status_code for r in (notes_only, moved, same_time, longer)] == [200] * 4

    run_worker(hooks_app)

    bodies = [Webhook(account.api_key.encode()).verify(r.body, r.headers) for r in receiver.requests]
    assert [b["event"] for b in bodies] == ["appointment.rescheduled"] * 2  # not for notes, not for the same time
    first, second = sorted(bodies, key=lambda b: b["data"]["duration"])
    for body in (first, second):
        assert {k: kind(v) for k, v in body["data"].items()} == RESCHEDULED_FIELDS
        assert body["data"]["id"] == booked["id"] and body["data"]["customerId"] == booked["customerId"]
    assert (first["data"]["previousScheduledAt"], first["data"]["previousDuration"]) == ("2026-12-01T10:00:00.000Z", 30)
    assert (first["data"]["scheduledAt"], first["data"]["duration"]) == ("2026-12-02T11:15:00.000Z", 30)
    assert (second["data"]["previousScheduledAt"], second["data"]["previousDuration"]) == (
        "2026-12-02T11:15:00.000Z", 30)
    assert (second["data"]["scheduledAt"], second["data"]["duration"]) == ("2026-12-02T11:15:00.000Z", 45)
    assert second["data"]["notes"] == "bring the forms"
    # The example Zapier shows before any event has the live shape; afterwards, the live bodies.
    assert shape(example) == shape(first) and example["data"]["previousScheduledAt"] != example["data"]["scheduledAt"]
    samples = account.hook("get", "/samples/appointment.rescheduled").json["data"]
    assert first in samples and second in samples
