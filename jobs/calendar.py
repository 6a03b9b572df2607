"""Calendar jobs shared by the providers' sync engine, and Microsoft's one-way pushes (the runs in
`callnfy_integrations/calendar_sync/push_runs.py`, which own their transactions). Google's keep their
names in `jobs/google.py`.

New job parameters are added last, with defaults, so jobs already queued stay valid.
"""

from __future__ import annotations

import uuid

from callnfy_integrations.calendar_sync import push_runs
from callnfy_integrations.integrations.models import MICROSOFT_CALENDAR


def sync_microsoft_appointments(appointment_ids: list[str]) -> int:
    """Make Outlook match each appointment's current state; returns how many were pushed."""
    return push_runs.push_batch(MICROSOFT_CALENDAR, appointment_ids)


def backfill_microsoft_calendar(user_id: str) -> int:
    """After (re)connect: the user's pending appointments, pushed to Outlook in batches."""
    return push_runs.backfill(MICROSOFT_CALENDAR, uuid.UUID(user_id))
