"""Google's one-way pushes: the engine's runs (`calendar_sync.push_runs`) for Google, behind
`jobs.google.sync_appointments` and `backfill_calendar`."""

from __future__ import annotations

import uuid

from ..calendar_sync import push_runs as runs
from ..integrations.models import GOOGLE_CALENDAR
from ..locking import Lease


def push_lease(appointment_id: uuid.UUID) -> Lease:
    return runs.push_lease(appointment_id, GOOGLE_CALENDAR)


def push_batch(appointment_ids: list[str]) -> int:
    return runs.push_batch(GOOGLE_CALENDAR, appointment_ids)


def backfill(owner: uuid.UUID) -> int:
    return runs.backfill(GOOGLE_CALENDAR, owner)


sweep = runs.sweep


def push_appointment(appointment_id: uuid.UUID) -> float | None:
    return runs.push_appointment(runs.adapter_for(GOOGLE_CALENDAR), appointment_id)
