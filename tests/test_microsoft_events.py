"""Graph's event JSON, as the calendar view's delta answers it, read into the engine's `RemoteEvent`:
removed and cancelled events, etags, times and zones, all-day, recurrence, the owner's answer,
Callnfy's tag and attendees."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

from callnfy_integrations.calendar_sync.remote import Attendee, RemoteEvent
from callnfy_integrations.microsoft.events import normalize

OWNER = "owner@example.com"


def graph_event(**overrides) -> dict:
    """An event as Graph's delta answers it with `Prefer: outlook.timezone="UTC"`."""
    event = {
        "@odata.type": "#microsoft.graph.event",
        "@odata.etag": 'W/"DwAAABYAAABf0GaXtPeUR4kOXa9JAzd8AAAJ3Iq6"',
        "id": "AAMkAGI2TGuLAAA=",
        "createdDateTime": "2026-12-01T09:15:02.4419317Z",
        "lastModifiedDateTime": "2026-12-02T10:20:31.1039581Z",
        "changeKey": "DwAAABYAAABf0GaXtPeUR4kOXa9JAzd8AAAJ3Iq6",
        "categories": [], "transactionId": None, "originalStartTimeZone": "GMT Standard Time",
        "originalEndTimeZone": "GMT Standard Time", "iCalUId": "040000008200E00074C5B7101A82E00800000000",
        "reminderMinutesBeforeStart": 15, "isReminderOn": True, "hasAttachments": False,
        "subject": "Consultation with Jane", "bodyPreview": "", "importance": "normal", "sensitivity": "normal",
        "isAllDay": False, "isCancelled": False, "isOrganizer": True, "responseRequested": True,
        "seriesMasterId": None, "showAs": "busy", "type": "singleInstance",
        "webLink": "https://outlook.office365.com/owa/?itemid=AAMkAGI2TGuLAAA%3D&exvsurl=1&path=/calendar/item",
        "onlineMeetingUrl": None, "isOnlineMeeting": False, "onlineMeetingProvider": "unknown",
        "responseStatus": {"response": "organizer", "time": "0001-01-01T00:00:00Z"},
        "body": {"contentType": "html", "content": ""},
        "start": {"dateTime": "2026-12-10T15:00:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2026-12-10T15:45:00.0000000", "timeZone": "UTC"},
        "location": {"displayName": "", "locationType": "default", "uniqueIdType": "unknown"},
        "locations": [], "recurrence": None,
        "attendees": [{"type": "required", "status": {"response": "none", "time": "0001-01-01T00:00:00Z"},
                       "emailAddress": {"name": "Jane Smith", "address": "jane@example.com"}}],
        "organizer": {"emailAddress": {"name": "Owner", "address": OWNER}},
    }
    event.update(overrides)
    return event


def test_a_timed_event_the_owner_organises():
    event = normalize(graph_event(), OWNER)
    assert event == RemoteEvent(
        id="AAMkAGI2TGuLAAA=", etag="DwAAABYAAABf0GaXtPeUR4kOXa9JAzd8AAAJ3Iq6",
        updated=datetime(2026, 12, 2, 10, 20, 31, 103958, tzinfo=UTC),
        created=datetime(2026, 12, 1, 9, 15, 2, 441931, tzinfo=UTC),
        cancelled=False, confirmed=True, busy=True, recurring=False,
        start=datetime(2026, 12, 10, 15, 0, tzinfo=UTC), end=datetime(2026, 12, 10, 15, 45, tzinfo=UTC),
        owner_response="organizer", tagged_appointment_id=None, summary="Consultation with Jane",
        attendees=(Attendee(email="jane@example.com", name="Jane Smith", is_owner=False),))
    assert event.start.utcoffset() == timedelta(0)  # aware


def test_a_removed_event_is_cancelled_and_nothing_else_is_known():
    event = normalize({"@odata.type": "#microsoft.graph.event", "id": "AAMkRemoved=",
                       "@removed": {"reason": "deleted"}}, OWNER)
    assert event.id == "AAMkRemoved=" and event.cancelled and not event.confirmed
    assert (event.start, event.end, event.etag, event.owner_response) == (None, None, None, None)


def test_a_cancelled_meeting_is_cancelled():
    event = normalize(graph_event(isCancelled=True, isOrganizer=False,
                                  responseStatus={"response": "accepted", "time": "2026-12-01T10:00:00Z"}), OWNER)
    assert event.cancelled and not event.confirmed and event.owner_response == "accepted"


def test_the_etag_is_the_change_key_or_else_the_odata_etag():
    without = graph_event()
    del without["changeKey"]
    assert normalize(without, OWNER).etag == 'W/"DwAAABYAAABf0GaXtPeUR4kOXa9JAzd8AAAJ3Iq6"'


def test_free_time_is_not_busy_and_tentative_or_away_is():
    assert not normalize(graph_event(showAs="free"), OWNER).busy
    assert all(normalize(graph_event(showAs=shown), OWNER).busy
               for shown in ("tentative", "busy", "oof", "workingElsewhere", "unknown"))


def test_series_occurrences_and_exceptions_are_recurring():
    for kind in ("seriesMaster", "occurrence", "exception"):
        assert normalize(graph_event(type=kind), OWNER).recurring, kind
    pattern = {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
               "range": {"type": "noEnd", "startDate": "2026-12-07"}}
    assert normalize(graph_event(recurrence=pattern), OWNER).recurring
    assert not normalize(graph_event(), OWNER).recurring


def test_times_are_read_in_the_zone_graph_names():
    event = normalize(graph_event(start={"dateTime": "2026-07-10T15:00:00.0000000", "timeZone": "Europe/London"},
                                  end={"dateTime": "2026-07-10T16:00:00.0000000", "timeZone": "Europe/London"}),
                      OWNER)
    assert event.start == datetime(2026, 7, 10, 14, 0, tzinfo=UTC)  # BST
    assert event.end - event.start == timedelta(hours=1)
    offset = normalize(graph_event(start={"dateTime": "2026-12-10T15:00:00+01:00", "timeZone": "UTC"}), OWNER)
    assert offset.start == datetime(2026, 12, 10, 15, 0, tzinfo=timezone(timedelta(hours=1)))


def test_all_day_and_unreadable_times_have_no_start_or_end():
    all_day = normalize(graph_event(isAllDay=True, start={"dateTime": "2026-12-24T00:00:00.0000000", "timeZone": "UTC"},
                                    end={"dateTime": "2026-12-25T00:00:00.0000000", "timeZone": "UTC"}), OWNER)
    assert (all_day.start, all_day.end) == (None, None)
    pacific = {"dateTime": "2026-12-10T15:00:00", "timeZone": "Pacific Standard Time"}
    windows_zone = normalize(graph_event(start=pacific), OWNER)
    assert (windows_zone.start, windows_zone.end) == (None, None)  # never half a time
    assert normalize(graph_event(end={"dateTime": "not a time", "timeZone": "UTC"}), OWNER).start is None
    assert normalize(graph_event(start=None), OWNER).start is None


def test_the_owners_answer_to_an_invitation():
    answers = {"accepted": "accepted", "tentativelyAccepted": "tentative", "notResponded": "needsAction",
               "none": "needsAction", "declined": "declined", "organizer": "organizer"}
    for graph_answer, expected in answers.items():
        invitation = graph_event(isOrganizer=False, responseStatus={"response": graph_answer,
                                                                    "time": "2026-12-01T10:00:00Z"})
        assert normalize(invitation, OWNER).owner_response == expected, graph_answer
    assert normalize(graph_event(isOrganizer=False, responseStatus=None), OWNER).owner_response is None
    assert normalize(graph_event(isOrganizer=True, responseStatus={"response": "none"}), OWNER).owner_response == (
        "organizer")


def test_callnfy_tag_is_read_from_the_transaction_id_and_nothing_else_is_taken_for_one():
    appointment_id = uuid.uuid4()
    tagged = normalize(graph_event(transactionId=f"callnfy-{appointment_id.hex}-3"), OWNER)
    assert tagged.tagged_appointment_id == appointment_id
    assert normalize(graph_event(transactionId=f"callnfy-{appointment_id.hex}"), OWNER).tagged_appointment_id == (
        appointment_id)
    for other in (str(uuid.uuid4()), f"callnfy-{appointment_id.hex[:-1]}", f"x-callnfy-{appointment_id.hex}", 7):
        assert normalize(graph_event(transactionId=other), OWNER).tagged_appointment_id is None, other


def test_attendees_mark_the_owner_whatever_the_case_of_the_address():
    event = normalize(graph_event(attendees=[
        {"type": "required", "emailAddress": {"name": "Jane Smith", "address": "jane@example.com"}},
        {"type": "required", "emailAddress": {"name": "Owner", "address": "Owner@Example.com"},
         "status": {"response": "accepted"}},
        {"type": "resource", "emailAddress": {"name": "Room 1"}},
        {"type": "optional", "emailAddress": {}},
    ]), OWNER)
    assert event.attendees == (Attendee("jane@example.com", "Jane Smith", False),
                               Attendee("Owner@Example.com", "Owner", True), Attendee(None, "Room 1", False))
    assert normalize(graph_event(attendees=None), None).attendees == ()
    assert normalize(graph_event(subject=None), OWNER).summary == ""
