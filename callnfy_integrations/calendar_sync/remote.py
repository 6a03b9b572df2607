"""A calendar event as the engine sees it, whichever provider holds it.

Each adapter translates its own event JSON (Google's `events` resource, Graph's `event`) into a
`RemoteEvent`; two-way apply reads only this. Times are timezone-aware; an all-day or malformed
event has no `start`/`end`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

# The owner's relation to an event: organiser, or their answer to an invitation (None: not invited).
ORGANIZER = "organizer"
ACCEPTED = "accepted"
TENTATIVE = "tentative"
NEEDS_ACTION = "needsAction"
DECLINED = "declined"
RESPONSES = (ORGANIZER, ACCEPTED, TENTATIVE, NEEDS_ACTION, DECLINED)


@dataclass(frozen=True)
class Attendee:
    email: str | None
    name: str | None
    is_owner: bool = False


@dataclass(frozen=True)
class RemoteEvent:
    id: str
    etag: str | None = None  # Google's etag, Graph's changeKey: equal means "the state we last saw"
    updated: datetime | None = None  # Google's `updated`, Graph's `lastModifiedDateTime`
    created: datetime | None = None
    cancelled: bool = False  # cancelled or deleted
    confirmed: bool = True  # Google's status `confirmed` (a tentative event is not)
    busy: bool = True  # blocks time (Google: not transparent; Graph: showAs other than free)
    recurring: bool = False  # a series or one of its occurrences
    start: datetime | None = None  # None: all-day, or unreadable
    end: datetime | None = None
    owner_response: str | None = None  # one of RESPONSES, or None when the owner is not invited
    tagged_appointment_id: uuid.UUID | None = None  # Callnfy's own tag on the event, when present
    summary: str = ""
    attendees: tuple[Attendee, ...] = field(default_factory=tuple)


class Skipped(Exception):
    """An event that cannot become or change an appointment (bad data: recorded, then the sync goes on)."""
