"""Request and response shapes of availability: settings, the busy/slots answer, holds."""

from __future__ import annotations

import re
from datetime import timedelta
from zoneinfo import available_timezones

import marshmallow as ma
from marshmallow import validate

from .. import public_ids
from ..appointments.models import DURATION_MAX, DURATION_MIN
from ..appointments.schemas import Duration, When
from ..timestamps import Timestamp, format_timestamp
from .busy import PROVIDERS
from .rules import WEEKDAYS

MAX_WINDOW = timedelta(days=31)
MAX_INTERVALS_PER_DAY = 6
MAX_BUSY_CALENDARS = 20
HOLD_TTL_MAX, HOLD_TTL_DEFAULT = 900, 300
CLOCK = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]|24:00")


_ZONES = frozenset(available_timezones())


def _zone(value: str) -> None:
    if value not in _ZONES:
        raise ma.ValidationError("Not a known IANA time zone (e.g. Europe/London).")


class WorkingHours(ma.fields.Dict):
    """`{"mon": [["09:00", "12:00"], ["13:00", "17:00"]], …, "sun": []}`: every day, each interval
    "HH:MM" to a later "HH:MM" ("24:00" ends the day), in order and not overlapping."""

    def __init__(self, **kwargs):
        interval = {"type": "array", "minItems": 2, "maxItems": 2,
                    "items": {"type": "string", "pattern": f"^(?:{CLOCK.pattern})$"}}
        day = {"type": "array", "maxItems": MAX_INTERVALS_PER_DAY, "items": interval}
        super().__init__(metadata={"description": self.__doc__, "properties": {d: day for d in WEEKDAYS},
                                   "required": list(WEEKDAYS), "additionalProperties": False, "example": {
                             "mon": [["09:00", "17:00"]], "tue": [["09:00", "17:00"]], "wed": [["09:00", "17:00"]],
                             "thu": [["09:00", "17:00"]], "fri": [["09:00", "17:00"]], "sat": [], "sun": []}},
                         **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        loaded = super()._deserialize(value, attr, data, **kwargs)
        errors: dict[str, list[str]] = {}
        missing = [day for day in WEEKDAYS if day not in loaded]
        unknown = sorted(set(loaded) - set(WEEKDAYS))
        if missing:
            errors["days"] = [f"Give every day (an empty list when closed); missing: {', '.join(missing)}."]
        if unknown:
            errors["days"] = errors.get("days", []) + [f"Unknown days: {', '.join(unknown)} (use mon … sun)."]
        for day in WEEKDAYS:
            problem = _day_problem(loaded.get(day, []))
            if problem:
                errors[day] = [problem]
        if errors:
            raise ma.ValidationError(errors)
        return {day: [list(interval) for interval in loaded[day]] for day in WEEKDAYS}


def _day_problem(intervals: object) -> str | None:
    if not isinstance(intervals, list) or not all(
            isinstance(i, list) and all(isinstance(part, str) for part in i) for i in intervals):
        return 'A list of intervals, each ["HH:MM", "HH:MM"].'
    if len(intervals) > MAX_INTERVALS_PER_DAY:
        return f"At most {MAX_INTERVALS_PER_DAY} intervals a day."
    previous_end = "00:00"
    for interval in intervals:
        if len(interval) != 2 or not all(CLOCK.fullmatch(part) for part in interval):
            return 'Each interval is ["HH:MM", "HH:MM"] (24-hour clock; "24:00" ends the day).'
        opens, closes = interval
        if opens == "24:00" or opens >= closes:
            return f"{opens}-{closes}: an interval must end after it starts."
        if opens < previous_end:
            return f"{opens}-{closes}: intervals must be in order and must not overlap."
        previous_end = closes
    return None


class BusyCalendarSchema(ma.Schema):
    provider = ma.fields.String(required=True, validate=validate.OneOf(PROVIDERS))
    calendarId = ma.fields.String(required=True, validate=validate.Length(1, 255))


Minutes = lambda high, description, **kw: ma.fields.Integer(  # noqa: E731
    strict=True, validate=validate.Range(0, high), metadata={"description": description}, **kw)


class AvailabilitySettingsSchema(ma.Schema):
    timeZone = ma.fields.String(attribute="time_zone")
    workingHours = WorkingHours(attribute="working_hours")
    bufferBefore = Minutes(240, "minutes kept free before each appointment", attribute="buffer_before")
    bufferAfter = Minutes(240, "minutes kept free after each appointment", attribute="buffer_after")
    minNotice = Minutes(43200, "minutes of notice a booking needs", attribute="min_notice")
    busyCalendars = ma.fields.List(ma.fields.Nested(BusyCalendarSchema), attribute="busy_calendars",
                                   metadata={"description": "the calendars whose events make the owner busy; "
                                                            "by default each connected calendar"})


class AvailabilitySettingsUpdateSchema(ma.Schema):
    """Any subset of the settings; each given field replaces what was there."""

    class Meta:
        openapi = {"minProperties": 1}

    time_zone = ma.fields.String(data_key="timeZone", validate=[validate.Length(1, 64), _zone],
                                 metadata={"enum": sorted(_ZONES), "description": "an IANA time zone"})
    working_hours = WorkingHours(data_key="workingHours")
    buffer_before = Minutes(240, "minutes kept free before each appointment", data_key="bufferBefore")
    buffer_after = Minutes(240, "minutes kept free after each appointment", data_key="bufferAfter")
    min_notice = Minutes(43200, "minutes of notice a booking needs", data_key="minNotice")
    busy_calendars = ma.fields.List(ma.fields.Nested(BusyCalendarSchema), data_key="busyCalendars",
                                    validate=validate.Length(max=MAX_BUSY_CALENDARS), metadata={"uniqueItems": True})

    @ma.validates_schema
    def _checks(self, data, **kwargs):
        if not data:
            raise ma.ValidationError("Give at least one setting to change")
        calendars = [(c["provider"], c["calendarId"]) for c in data.get("busy_calendars") or []]
        if len(set(calendars)) != len(calendars):
            raise ma.ValidationError("A calendar is listed twice.", field_name="busyCalendars")


class AvailabilityQuerySchema(ma.Schema):
    from_ = When("the window's start", data_key="from", required=True)
    to = When("the window's end (at most 31 days after from)", required=True)
    duration = ma.fields.Integer(validate=validate.Range(DURATION_MIN, DURATION_MAX), metadata={
        "description": f"minutes, {DURATION_MIN}-{DURATION_MAX}: answer the free slots of this length too"})
    step = ma.fields.Integer(load_default=15, validate=validate.Range(5, 1440),
                             metadata={"description": "minutes between candidate slot starts (default 15)"})

    @ma.validates_schema
    def _window(self, data, **kwargs):
        start, end = data.get("from_"), data.get("to")
        if start is None or end is None:
            return
        if end <= start:
            raise ma.ValidationError("Must be after from.", field_name="to")
        if end - start > MAX_WINDOW:
            raise ma.ValidationError("The window is at most 31 days.", field_name="to")


_INTERVAL = {"type": "object", "properties": {"start": {"type": "string", "format": "date-time"},
                                              "end": {"type": "string", "format": "date-time"}}}


class AvailabilitySchema(ma.Schema):
    timeZone = ma.fields.String(attribute="time_zone")
    busyAsOf = Timestamp(attribute="busy_as_of", allow_none=True, metadata={
        "description": "when the calendars' busy times were last read (null: a calendar never read yet)"})
    # Both lists are formatted here, not by nested schemas: a week can hold hundreds of intervals, and
    # marshmallow's per-field dump was the largest cost of the answer.
    busy = ma.fields.Method("_busy", metadata={"type": "array", "items": _INTERVAL | {"properties": {
        **_INTERVAL["properties"], "source": {"type": "string", "enum": ["appointment", "hold", *PROVIDERS]}}},
        "description": "appointments and holds include the buffers"})
    slots = ma.fields.Method("_slots", metadata={"type": "array", "items": _INTERVAL,
                                                 "description": "only with duration: the free start times"})

    def _busy(self, answer):
        return [{"start": format_timestamp(b.start), "end": format_timestamp(b.end), "source": b.source}
                for b in answer["busy"]]

    def _slots(self, answer):
        if "slots" not in answer:
            return None
        return [{"start": format_timestamp(s), "end": format_timestamp(e)} for s, e in answer["slots"]]

    @ma.post_dump(pass_original=True)
    def _slots_only_when_asked(self, data, original, **kwargs):
        if "slots" not in original:
            data.pop("slots", None)
        return data


class HoldCreateSchema(ma.Schema):
    scheduled_at = When(data_key="scheduledAt", required=True)
    duration = Duration(required=True)
    ttl = ma.fields.Integer(strict=True, load_default=HOLD_TTL_DEFAULT, validate=validate.Range(1, HOLD_TTL_MAX),
                            metadata={"description": f"seconds, at most {HOLD_TTL_MAX} (default {HOLD_TTL_DEFAULT})"})


class HoldSchema(ma.Schema):
    id = ma.fields.Function(lambda h: public_ids.encode(public_ids.HOLD, h.id))
    scheduledAt = Timestamp(attribute="scheduled_at")
    duration = ma.fields.Integer()
    expiresAt = Timestamp(attribute="expires_at")
