"""Google Calendar as an adapter of the one-way sync engine (`calendar_sync.push`).

* scheduled/completed → upsert the event under a deterministic id (insert; 409 → update);
  cancelled → delete (404/410 = done). One write call per change when the token is fresh, each on our
  per-user quota (`quota.py`).
* An event Callnfy did not create (an appointment imported from the owner's calendar) is never
  rewritten or deleted: a change patches only its start and end, and a cancellation leaves it in
  Google (`googleSync.leftInGoogle`).
* Errors sort into the engine's outcomes: 401 → one refresh; 403 rate limits, 429, 5xx, network →
  retried with backoff; other 4xx → failed for good; `invalid_grant` → waits for a reconnect.

The state machine, backfill and sweeper are the engine's; the names below keep Google's callers short.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, timedelta
from typing import Any

from ..calendar_sync import push as engine
from ..calendar_sync.adapter import RECONNECT, REJECTED, RETRY, STOPPED, Adapter, Push, QuotaWait, Sent, register
from ..integrations.models import GOOGLE_CALENDAR, Integration
from . import calendar_api, oauth, quota, sync_errors, tokens
from .event_body import DEFAULT_TIME_ZONE, build_event, event_id_for

__all__ = ["QuotaWait", "backoff_seconds", "call", "connected_integration", "failed_pushes", "request_backfill",
           "stop_syncing"]

SYNC_JOB = "jobs.google.sync_appointments"
BACKFILL_JOB = "jobs.google.backfill_calendar"
RECONNECT_NEEDED = "Google Calendar needs to be reconnected"
backoff_seconds = engine.backoff_seconds


def request_backfill(user_id: uuid.UUID, *, every_upcoming: bool = False) -> int:
    return engine.request_backfill(GOOGLE_CALENDAR, user_id, every_upcoming=every_upcoming)


def stop_syncing(user_id: uuid.UUID) -> None:
    engine.stop_syncing(GOOGLE_CALENDAR, user_id)


def connected_integration(user_id: uuid.UUID) -> Integration | None:
    return engine.connected_integration(GOOGLE_CALENDAR, user_id)


def failed_pushes(user_id: uuid.UUID, *, offset: int, limit: int):
    return engine.failed_pushes(GOOGLE_CALENDAR, user_id, offset=offset, limit=limit)


def call(integration_id: uuid.UUID, request: Callable[[str], Any]) -> Any:
    """`request(access_token)` on our per-user quota (a slot per call), refreshing the token once on a
    401; raises what a push raises (QuotaWait included)."""
    token = tokens.access_token(integration_id)
    _take_slot(integration_id)
    try:
        return request(token)
    except calendar_api.TokenRejected:
        _take_slot(integration_id)
        return request(tokens.access_token(integration_id, rejected=token))


def fetch_time_zone(integration_id: uuid.UUID, calendar_id: str) -> str:
    """The calendar's own zone (one events.list, on our quota); raises what a push raises."""
    return call(integration_id, lambda token: calendar_api.calendar_time_zone(token, calendar_id)) \
        or DEFAULT_TIME_ZONE


def _take_slot(integration_id: uuid.UUID) -> None:
    if not quota.wait_for_slot(integration_id):
        raise QuotaWait(quota.take_slot(integration_id) or 1.0)


class EventGone(calendar_api.Rejected):
    """The owner's event no longer exists in Google: Callnfy does not write a new one in its place."""


def _sent(event: dict[str, Any] | None, zone_name: str | None = None) -> Sent:
    if event is None:
        return Sent(time_zone=zone_name)
    return Sent(event_id=event.get("id"), etag=event.get("etag"), updated_at=event.get("updated"), written=True,
                time_zone=zone_name)


class GoogleAdapter(Adapter):
    provider = GOOGLE_CALENDAR
    label = "Google Calendar"
    sync_job = SYNC_JOB
    backfill_job = BACKFILL_JOB
    reconnect_message = RECONNECT_NEEDED

    def send(self, push: Push) -> Sent:
        """Make Google match the plan; a 401 refreshes the token once."""
        token = tokens.access_token(push.integration_id)
        try:
            return self._write(push, token)
        except calendar_api.TokenRejected:
            return self._write(push, tokens.access_token(push.integration_id, rejected=token))

    def classify(self, error: Exception) -> str | None:
        if isinstance(error, tokens.ReauthorizationRequired):
            return RECONNECT
        if isinstance(error, (calendar_api.RetryLater, oauth.GoogleUnavailable)):
            return RETRY
        if isinstance(error, calendar_api.CalendarError):  # Rejected, or a second 401 right after a refresh
            return REJECTED
        if isinstance(error, LookupError):  # disconnected meanwhile
            return STOPPED
        return None

    def describe(self, error: Exception) -> str:
        return sync_errors.describe(error)

    def prepare_backfill(self, integration_id: uuid.UUID, calendar_id: str | None) -> str | None:
        return fetch_time_zone(integration_id, calendar_id or "primary")

    def _write(self, push: Push, token: str) -> Sent:
        if not push.ours:
            return self._write_foreign(push, token)
        calendar_id = push.calendar_id or "primary"
        event_id = push.event_id or event_id_for(push.appointment_id)
        if push.delete:
            _take_slot(push.integration_id)
            calendar_api.delete_event(token, calendar_id, event_id)
            return Sent()
        learnt_zone = None
        zone_name = push.time_zone
        if zone_name is None:  # once per connection: the calendar's own zone
            _take_slot(push.integration_id)
            zone_name = learnt_zone = calendar_api.calendar_time_zone(token, calendar_id) or DEFAULT_TIME_ZONE
        body = build_event(appointment_id=push.appointment_id, version=push.version, time_zone=zone_name,
                           **push.fields)
        if push.linked:
            try:
                _take_slot(push.integration_id)
                return _sent(calendar_api.update_event(token, calendar_id, event_id, body), learnt_zone)
            except calendar_api.Rejected as exc:
                if exc.status not in (404, 410):
                    raise  # 404/410: Google no longer has it; write it anew below
        target = event_id_for(push.appointment_id)
        try:
            _take_slot(push.integration_id)
            return _sent(calendar_api.insert_event(token, calendar_id, {"id": target, **body}), learnt_zone)
        except calendar_api.Rejected as exc:
            if exc.status != 409:
                raise
        _take_slot(push.integration_id)  # 409 duplicate: an earlier or concurrent push inserted it; make it current
        return _sent(calendar_api.update_event(token, calendar_id, target, body), learnt_zone)

    def _write_foreign(self, push: Push, token: str) -> Sent:
        """The owner's own event (imported by two-way sync): Callnfy owns only its time. A change
        patches start and end (their `dateTime`: the event keeps its own time zone, summary,
        description, guests, conference and reminders); a cancellation leaves the event where it is.
        The event's guests would otherwise lose a meeting the owner organised, with nobody told."""
        if push.delete:
            return Sent(left_in_calendar=True)
        if push.remote_time == (push.fields["scheduled_at"], push.fields["duration"]):
            return Sent()  # notes, completion: nothing of the event's changes
        start = push.fields["scheduled_at"].astimezone(UTC)
        end = start + timedelta(minutes=push.fields["duration"])
        body = {"start": {"dateTime": start.isoformat(timespec="seconds")},
                "end": {"dateTime": end.isoformat(timespec="seconds")}}
        _take_slot(push.integration_id)
        try:
            return _sent(calendar_api.patch_event(token, push.calendar_id or "primary", push.event_id, body))
        except calendar_api.Rejected as exc:
            if exc.status in (404, 410):
                raise EventGone(exc.status, "eventGone", "the owner's event is no longer in Google Calendar") \
                    from None
            raise


ADAPTER = register(GoogleAdapter())
