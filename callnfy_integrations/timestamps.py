"""UTC ISO-8601 timestamps with milliseconds, the only time format on the wire (docs/api.md)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import marshmallow as ma


def utcnow() -> datetime:
    return datetime.now(UTC)


def format_timestamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # naive values are UTC by convention in this service
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    # Not strftime: its %Y does not pad years before 1000 ("329-05-23"), which is not ISO-8601.
    return (f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:{value.minute:02d}:"
            f"{value.second:02d}.{value.microsecond // 1000:03d}Z")


class Timestamp(ma.fields.DateTime):
    """Serialises as `2025-12-22T10:45:00.000Z`; accepts any timezone-aware ISO-8601 value."""

    def _serialize(self, value, attr, obj, **kwargs):
        return format_timestamp(value)


SANE_YEARS = 10


def sane_years(today: datetime | None = None) -> range:
    """The years an appointment or a call can be in: within SANE_YEARS of this year. Anything else is
    a typo or a probe, and near the calendar's ends an offset can push a time past year 9999."""
    year = (today or utcnow()).year
    return range(year - SANE_YEARS, year + SANE_YEARS + 1)


_WRITTEN_YEAR = re.compile(r"([0-9]{4})-")


def sane_year_pattern() -> str:
    """`sane_years()` as the OpenAPI `pattern` of a date-time string, so that the document says
    exactly which times are refused. Taken when the document is built (at start-up); the check
    itself reads the clock on every request."""
    return "^(" + "|".join(str(year) for year in sane_years()) + ")-"


class SaneTime(ma.fields.AwareDateTime):
    """An aware ISO-8601 time whose year, as written, is one of `sane_years()` (400 otherwise), loaded
    in UTC: an offset is the client's notation, and PostgreSQL refuses offsets beyond ±15:59 that
    ISO-8601 allows (-23:59)."""

    default_error_messages = {"insane": f"Year must be within {SANE_YEARS} years of this year."}

    def __init__(self, description: str = "ISO-8601 with a timezone offset or Z", **kwargs) -> None:
        super().__init__(format="iso", metadata={
            "description": f"{description}; its year within {SANE_YEARS} of this year",
            "pattern": sane_year_pattern()}, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs) -> datetime:
        loaded = super()._deserialize(value, attr, data, **kwargs)
        written = _WRITTEN_YEAR.match(value)  # the documented pattern, read against today's clock
        if written is None or int(written.group(1)) not in sane_years():
            raise self.make_error("insane")
        return loaded.astimezone(UTC)  # cannot overflow: the year is within SANE_YEARS of now
