"""UTC ISO-8601 timestamps with milliseconds, the only time format on the wire (DESIGN §4)."""

from __future__ import annotations

from datetime import datetime, timezone

import marshmallow as ma


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def format_timestamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # naive values are UTC by convention in this service
        value = value.replace(tzinfo=timezone.utc)
    value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


class Timestamp(ma.fields.DateTime):
    """Serialises as `2025-12-22T10:45:00.000Z`; accepts any timezone-aware ISO-8601 value."""

    def _serialize(self, value, attr, obj, **kwargs):
        return format_timestamp(value)
