"""Graph's `dateTimeTimeZone` values and recurrence, turned into moments and occurrences.

Graph names time zones by Windows name ("Pacific Standard Time") or IANA name; both are accepted here
(Windows names from a small table of common ones). Without `Prefer: outlook.timezone`, Graph answers
start and end in UTC; dateTime is written with seven fractional digits, as Graph does.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import DAILY, MONTHLY, WEEKLY, YEARLY, rrule, weekday

WINDOWS_ZONES = {
    "UTC": "UTC", "Coordinated Universal Time": "UTC", "GMT Standard Time": "Europe/London",
    "Greenwich Standard Time": "Atlantic/Reykjavik", "W. Europe Standard Time": "Europe/Berlin",
    "Romance Standard Time": "Europe/Paris", "Central Europe Standard Time": "Europe/Budapest",
    "Central European Standard Time": "Europe/Warsaw", "FLE Standard Time": "Europe/Kiev",
    "GTB Standard Time": "Europe/Bucharest", "Eastern Standard Time": "America/New_York",
    "Central Standard Time": "America/Chicago", "Mountain Standard Time": "America/Denver",
    "US Mountain Standard Time": "America/Phoenix", "Pacific Standard Time": "America/Los_Angeles",
    "Alaskan Standard Time": "America/Anchorage", "Hawaiian Standard Time": "Pacific/Honolulu",
    "Atlantic Standard Time": "America/Halifax", "E. South America Standard Time": "America/Sao_Paulo",
    "India Standard Time": "Asia/Kolkata", "Tokyo Standard Time": "Asia/Tokyo",
    "China Standard Time": "Asia/Shanghai", "Singapore Standard Time": "Asia/Singapore",
    "AUS Eastern Standard Time": "Australia/Sydney", "New Zealand Standard Time": "Pacific/Auckland",
    "South Africa Standard Time": "Africa/Johannesburg", "Arabian Standard Time": "Asia/Dubai",
}
FRACTION = re.compile(r"(\.\d{1,6})\d*")
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
INDEX = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": -1}
MAX_INSTANCES = 1000


def zone(name: str | None) -> ZoneInfo:
    """The zone a Graph time zone name stands for; ValueError when unknown (Graph answers 400)."""
    if not name:
        raise ValueError("a time zone is required")
    try:
        return ZoneInfo(WINDOWS_ZONES.get(name, name))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unsupported time zone {name!r}") from exc


def moment(value: dict | None) -> datetime:
    """A `{dateTime, timeZone}` as an aware UTC datetime; ValueError when malformed."""
    if not isinstance(value, dict) or not isinstance(value.get("dateTime"), str):
        raise ValueError("dateTime is required")
    text = FRACTION.sub(r"\1", value["dateTime"].replace("Z", ""))
    local = datetime.fromisoformat(text)
    if local.tzinfo is None:
        local = local.replace(tzinfo=zone(value.get("timeZone")))
    return local.astimezone(UTC)


def render(at: datetime, zone_name: str) -> dict:
    local = at.astimezone(zone(zone_name))
    return {"dateTime": f"{local:%Y-%m-%dT%H:%M:%S}.0000000", "timeZone": zone_name}


def parse_query_time(text: str | None) -> datetime:
    """startDateTime / endDateTime of calendarView: ISO 8601, UTC when no offset is given (as Graph)."""
    if not text:
        raise ValueError("startDateTime and endDateTime are required")
    parsed = datetime.fromisoformat(FRACTION.sub(r"\1", text.replace("Z", "+00:00")))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def rule_parts(pattern: dict) -> dict:
    kind = pattern.get("type")
    days = [weekday(DAYS.index(d)) for d in pattern.get("daysOfWeek") or []]
    index = INDEX.get(pattern.get("index") or "first", 1)
    parts: dict = {"interval": int(pattern.get("interval") or 1)}
    if kind == "daily":
        parts["freq"] = DAILY
    elif kind == "weekly":
        parts.update(freq=WEEKLY, byweekday=days,
                     wkst=weekday(DAYS.index(pattern.get("firstDayOfWeek") or "sunday")))
    elif kind == "absoluteMonthly":
        parts.update(freq=MONTHLY, bymonthday=int(pattern["dayOfMonth"]))
    elif kind == "relativeMonthly":
        parts.update(freq=MONTHLY, byweekday=days, bysetpos=index)
    elif kind == "absoluteYearly":
        parts.update(freq=YEARLY, bymonth=int(pattern["month"]), bymonthday=int(pattern["dayOfMonth"]))
    elif kind == "relativeYearly":
        parts.update(freq=YEARLY, bymonth=int(pattern["month"]), byweekday=days, bysetpos=index)
    else:
        raise ValueError(f"unsupported recurrence pattern {kind!r}")
    return parts


def occurrences(recurrence: dict, start: dict, until: datetime) -> list[datetime]:
    """The local start times (aware, in the event's own zone) of a patternedRecurrence, up to `until`.

    The series starts on `range.startDate` at the event's start time of day, in the event's zone;
    `endDate` ends it after that day, `numbered` after `numberOfOccurrences`."""
    event_zone = zone(start.get("timeZone"))
    first = moment(start).astimezone(event_zone)
    span = recurrence.get("range") or {}
    begin = date.fromisoformat(span.get("startDate") or first.date().isoformat())
    parts = rule_parts(recurrence.get("pattern") or {})
    dtstart = datetime.combine(begin, first.time())  # naive wall clock: DST keeps the time of day
    if span.get("type") == "numbered":
        parts["count"] = int(span.get("numberOfOccurrences") or 1)
    elif span.get("type") == "endDate" and span.get("endDate"):
        parts["until"] = datetime.combine(date.fromisoformat(span["endDate"]), datetime.max.time())
    found = []
    for local in rrule(dtstart=dtstart, **parts):
        aware = local.replace(tzinfo=event_zone)
        if aware >= until or len(found) >= MAX_INSTANCES:
            break
        found.append(aware)
    return found


def horizon(window_end: datetime | None) -> datetime:
    return window_end or datetime.now(UTC) + timedelta(days=730)
