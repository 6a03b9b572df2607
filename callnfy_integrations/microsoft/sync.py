"""Microsoft 365 / Outlook as an adapter of the one-way sync engine (`calendar_sync.push`).

* scheduled/completed → create with a `transactionId` derived from the appointment (a retried POST
  never makes a second event), then PATCH the stored event; a PATCH that finds it gone (404: the owner
  deleted it) writes it anew; cancelled → DELETE (404 = done).
* An event Callnfy did not create (imported from Outlook) is never rewritten or deleted: a change
  PATCHes only its start and end, and a cancellation leaves it (`microsoftSync.leftInOutlook`).
* Errors sort into the engine's outcomes: 401 → one refresh (`tokens.call`); 429, 503 and other 5xx,
  network → retried with backoff, Graph's `Retry-After` honoured; other 4xx → failed for good;
  `invalid_grant` → waits for a reconnect.

Times are written in the owner's availability zone, learnt at the backfill (reading the mailbox's own
zone needs MailboxSettings.Read, which Callnfy does not ask for); Europe/London until then.
"""

from __future__ import annotations

import uuid
from datetime import UTC
from typing import Any

from .. import public_ids
from ..availability import service as availability
from ..calendar_sync import push as engine
from ..calendar_sync.adapter import RECONNECT, REJECTED, RETRY, STOPPED, Adapter, Push, Sent, register
from ..extensions import db
from ..google.event_body import DEFAULT_TIME_ZONE
from ..integrations.models import MICROSOFT_CALENDAR, Integration
from . import events, graph_api, oauth, sync_errors
from .event_body import TAG_PROPERTY, build_event, times, transaction_id
from .tokens import ReauthorizationRequired, call

SYNC_JOB = "jobs.calendar.sync_microsoft_appointments"
BACKFILL_JOB = "jobs.calendar.backfill_microsoft_calendar"
RECONNECT_NEEDED = "Outlook needs to be reconnected"



def request_backfill(user_id: uuid.UUID) -> int:
    return engine.request_backfill(MICROSOFT_CALENDAR, user_id)


def stop_syncing(user_id: uuid.UUID) -> None:
    engine.stop_syncing(MICROSOFT_CALENDAR, user_id)


def _events_path(calendar_id: str | None) -> str:
    return f"{graph_api.calendar_path(calendar_id or 'default')}/events"


def _event_path(event_id: str) -> str:
    return f"/me/events/{graph_api.quote(event_id, safe='')}"


# A create's answer in UTC and with a text body, so `_holds` can compare it with what was sent.
PREFER = {"Prefer": 'outlook.timezone="UTC", outlook.body-content-type="text"'}


def _text(body: Any) -> str:
    return " ".join(str((body or {}).get("content") or "").split())


def _holds(event: dict[str, Any], body: dict[str, Any]) -> bool:
    """Whether the event Graph answered holds what this push sent (time, subject, text)."""
    shown, sent = events.normalize(event, None), events.normalize(body, None)
    return ((shown.start, shown.end) == (sent.start, sent.end) and event.get("subject") == body.get("subject")
            and _text(event.get("body")) == _text(body.get("body")))


def _sent(event: dict[str, Any] | None) -> Sent:
    event = event or {}
    return Sent(event_id=event.get("id"), etag=event.get("changeKey"), updated_at=event.get("lastModifiedDateTime"),
                written=True)


class MicrosoftAdapter(Adapter):
    provider = MICROSOFT_CALENDAR
    label = "Outlook"
    sync_job = SYNC_JOB
    backfill_job = BACKFILL_JOB
    reconnect_message = RECONNECT_NEEDED

    def send(self, push: Push) -> Sent:
        return call(push.integration_id, lambda token: self._write(push, token))

    def classify(self, error: Exception) -> str | None:
        if isinstance(error, ReauthorizationRequired):
            return RECONNECT
        if isinstance(error, oauth.MicrosoftUnavailable) or (
                isinstance(error, graph_api.GraphError) and error.retryable):
            return RETRY
        if isinstance(error, graph_api.GraphError):  # refused, or a second 401 right after a refresh
            return REJECTED
        if isinstance(error, LookupError):  # disconnected meanwhile
            return STOPPED
        return None

    def describe(self, error: Exception) -> str:
        return sync_errors.describe(error)

    def prepare_backfill(self, integration_id: uuid.UUID, calendar_id: str | None) -> str | None:
        """The zone events are written in: the owner's availability zone (a database read, no Graph call)."""
        integration = db.session.get(Integration, integration_id)
        return availability.settings(integration.user_id)["time_zone"] if integration else None

    def _write(self, push: Push, token: str) -> Sent:
        if not push.ours:
            return self._write_foreign(push, token)
        if push.delete:
            # No event id known: a create may still have made one whose answer was lost. Our tag finds it.
            found = [push.event_id] if push.event_id else [e["id"] for e in graph_api.tagged_events(
                token, push.calendar_id or "default", TAG_PROPERTY,
                public_ids.encode(public_ids.APPOINTMENT, push.appointment_id))]
            for event_id in found:
                try:
                    graph_api.request("DELETE", token, _event_path(event_id))
                except graph_api.GraphError as exc:
                    if exc.status not in (404, 410):
                        raise  # 404: already gone
            return Sent()
        body = build_event(appointment_id=push.appointment_id, time_zone=push.time_zone or DEFAULT_TIME_ZONE,
                           **push.fields)
        if push.linked:
            update = {k: v for k, v in body.items() if k != "singleValueExtendedProperties"}
            try:
                return _sent(graph_api.request("PATCH", token, _event_path(push.event_id), json=update))
            except graph_api.GraphError as exc:
                if exc.status not in (404, 410):
                    raise  # 404: the owner deleted it; write it anew below
            body["transactionId"] = transaction_id(push.appointment_id, push.version)
        else:
            body["transactionId"] = transaction_id(push.appointment_id)
        created = graph_api.request("POST", token, _events_path(push.calendar_id), json=body, headers=PREFER)
        if created and created.get("id") and not _holds(created, body):
            # Graph answered a repeated transactionId with the event an earlier create made (its answer
            # was lost), as that create wrote it: an older version of the appointment. Bring it up to date.
            update = {k: v for k, v in body.items() if k not in ("singleValueExtendedProperties", "transactionId")}
            return _sent(graph_api.request("PATCH", token, _event_path(created["id"]), json=update))
        return _sent(created)

    def _write_foreign(self, push: Push, token: str) -> Sent:
        """The owner's own event (imported from Outlook): only its start and end are Callnfy's to change;
        a cancellation leaves the event where it is."""
        if push.delete:
            return Sent(left_in_calendar=True)
        if push.remote_time == (push.fields["scheduled_at"], push.fields["duration"]):
            return Sent()  # notes, completion: nothing of the event's changes
        body = times(push.fields["scheduled_at"].astimezone(UTC), push.fields["duration"], "UTC")
        return _sent(graph_api.request("PATCH", token, _event_path(push.event_id), json=body))


ADAPTER = register(MicrosoftAdapter())
