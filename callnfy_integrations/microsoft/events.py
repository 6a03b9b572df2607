"""Graph's `event` JSON (as the calendar view's delta answers it) turned into the engine's `RemoteEvent`.

A deleted, cancelled or moved-out-of-the-window event comes as `{"id", "@removed": {...}}`: cancelled.
Times are read in the zone Graph names (the delta is asked for UTC); an all-day or unreadable event
has no start or end. Callnfy's tag: the extended property our push writes (`event_body`), when the
event was read with `$expand` (the delta cannot), else the `transactionId` our push gives an event it
creates (`callnfy-<appointment uuid hex>[-v<n>]`), which Graph keeps and returns with the event;
occurrences of a series have neither.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..calendar_sync.remote import ACCEPTED, DECLINED, NEEDS_ACTION, ORGANIZER, TENTATIVE, Attendee, RemoteEvent
from . import event_body

RECURRING_TYPES = ("seriesMaster", "occurrence", "exception")
UTC_NAMES = ("UTC", "Coordinated Universal Time", "tzone://Microsoft/Utc", "Etc/UTC")
# Graph's responseStatus.response → the engine's owner response.
RESPONSES = {"organizer": ORGANIZER, "accepted": ACCEPTED, "tentativelyAccepted": TENTATIVE,
             "notResponded": NEEDS_ACTION, "none": NEEDS_ACTION, "declined": DECLINED}
TAG = re.compile(r"callnfy-([0-9a-f]{32})(?:-.*)?", re.IGNORECASE | re.DOTALL)


def normalize(item: dict[str, Any], owner_email: str | None) -> RemoteEvent:
    """The engine's view of one Graph event; `owner_email` is the connected mailbox's address."""
    event_id = str(item.get("id") or "")
    if "@removed" in item:
        return RemoteEvent(id=event_id, cancelled=True, confirmed=False)
    cancelled = bool(item.get("isCancelled"))
    all_day = bool(item.get("isAllDay"))
    start = None if all_day else _moment(item.get("start"))
    end = None if all_day else _moment(item.get("end"))
    if start is None or end is None:
        start = end = None
    return RemoteEvent(
        id=event_id,
        etag=item.get("changeKey") or item.get("@odata.etag"),
        updated=_timestamp(item.get("lastModifiedDateTime")),
        created=_timestamp(item.get("createdDateTime")),
        cancelled=cancelled,
        confirmed=not cancelled,
        busy=item.get("showAs") != "free",
        recurring=item.get("type") in RECURRING_TYPES or bool(item.get("recurrence")),
        start=start,
        end=end,
        owner_response=owner_response(item),
        tagged_appointment_id=tagged_appointment_id(item),
        summary=str(item.get("subject") or ""),
        attendees=tuple(_attendees(item, owner_email)),
    )


def owner_response(item: dict[str, Any]) -> str | None:
    """`organizer` when the owner organises it, else their answer; None when Graph says nothing."""
    if item.get("isOrganizer"):
        return ORGANIZER
    response = (item.get("responseStatus") or {}).get("response")
    return RESPONSES.get(response) if isinstance(response, str) else None


def tagged_appointment_id(item: dict[str, Any]) -> uuid.UUID | None:
    tagged = event_body.tagged_appointment_id(item)
    if tagged is not None:
        return tagged
    match = TAG.fullmatch(str(item.get("transactionId") or ""))
    return uuid.UUID(hex=match.group(1)) if match else None


def _attendees(item: dict[str, Any], owner_email: str | None):
    owner = (owner_email or "").strip().lower()
    for attendee in item.get("attendees") or []:
        address = (attendee or {}).get("emailAddress") or {}
        email = str(address.get("address") or "").strip() or None
        name = str(address.get("name") or "").strip() or None
        if email or name:
            yield Attendee(email=email, name=name, is_owner=bool(owner and email and email.lower() == owner))


def _timestamp(value: Any) -> datetime | None:
    """`lastModifiedDateTime` / `createdDateTime`: ISO 8601 in UTC (seven fractional digits)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _moment(value: Any) -> datetime | None:
    """A `dateTimeTimeZone` as an aware moment; None when missing or in a zone we cannot read."""
    if not isinstance(value, dict) or not isinstance(value.get("dateTime"), str):
        return None
    try:
        local = datetime.fromisoformat(value["dateTime"].replace("Z", "+00:00"))
    except ValueError:
        return None
    if local.tzinfo is not None:
        return local
    name = value.get("timeZone") or "UTC"
    if name in UTC_NAMES:
        return local.replace(tzinfo=UTC)
    try:
        return local.replace(tzinfo=ZoneInfo(name))
    except (ZoneInfoNotFoundError, ValueError):
        return None  # a Windows zone name: we ask Graph for UTC, so this is not what Graph answers
