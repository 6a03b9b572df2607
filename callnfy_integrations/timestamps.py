"""UTC ISO-8601 timestamps with milliseconds, the only time format on the wire (DESIGN §4)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import marshmallow as ma


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def format_timestamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # naive values are UTC by convention in this service
        value = value.replace(tzinfo=timezone.utc)
    value = value.astimezone(timezone.utc)
    # Not strftime: its %Y does not pad years before 1000 ("329-05-23"), which is not ISO-8601.
    return (f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:{value.minute:02d}:"
            f"{value.second:02d}.{value.microsecond // 1000:03d}Z")


class Timestamp(ma.fields.DateTime):
    """Serialises as `2025-12-22T10:45:00.000Z`; accepts any timezone-aware ISO-8601 value."""

    def _serialize(self, value, attr, obj, **kwargs):
        return format_timestamp(value)


SANE_YEARS = 10


def within_sane_range(value: datetime) -> bool:
    """A time a person can mean for an appointment or a call: within SANE_YEARS of now. Anything else
    is a typo or a probe, and near the calendar's ends an offset can push it past year 9999."""
    try:
        utc = value.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        return False
    margin = timedelta(days=round(365.25 * SANE_YEARS))
    now = utcnow()
    return now - margin <= utc <= now + margin


def SaneTime(description: str = "ISO-8601 with a timezone offset or Z",  # noqa: N802 - reads like a field
             **kwargs) -> ma.fields.AwareDateTime:
    """An aware ISO-8601 time within SANE_YEARS of now (400 otherwise)."""
    return ma.fields.AwareDateTime(
        format="iso", validate=_sane,
        metadata={"description": f"{description}; within {SANE_YEARS} years of now"}, **kwargs)


def _sane(value: datetime) -> None:
    if not within_sane_range(value):
        raise ma.ValidationError(f"Must be within {SANE_YEARS} years of now.")
