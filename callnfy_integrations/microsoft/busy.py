"""Microsoft 365 / Outlook as a provider of busy time for availability (`availability.busy.Provider`).

The calendar is read with `calendarView` (Graph expands recurring series into their occurrences),
following `@odata.nextLink`. An event makes the owner busy unless it shows as free (`showAs: free`), is
cancelled (`isCancelled`), was declined by the owner (`responseStatus.response: declined`), or is
Callnfy's own mirror of an appointment (`is_mirror`: the appointment itself already counts).

Time zones: Callnfy's scopes do not include MailboxSettings.Read, so the mailbox's zone is not read.
Graph is asked to show times in the owner's availability zone (`Prefer: outlook.timezone="<zone>"`); a
timed event's start and end are exact moments whatever zone they are shown in, and an all-day event
blocks its dates from local midnight to midnight in that zone (as Google's do). Without a connected
Google calendar the availability zone defaults to Europe/London until the owner sets `timeZone`.

A two-way connection's calendar is pushed: its subscription's notifications make two-way sync read
the copy again after each change (`calendar_sync.apply_runs.refresh_busy`). Other calendars are read again when
the copy is older than AVAILABILITY_MAX_AGE_SECONDS, as for one-way Google.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select

from ..availability.busy import Block, BusyUnavailable, register_provider
from ..availability.rules import local_midnight
from ..extensions import AUTOCOMMIT_BIND, db
from ..integrations.models import CONNECTED, MICROSOFT_CALENDAR, TWO_WAY, Integration
from . import graph_api, oauth
from .event_body import tagged_appointment_id
from .tokens import ReauthorizationRequired, call

PROVIDER = "microsoft"
DEFAULT_CALENDAR = "default"  # the mailbox's default calendar (/me/calendar)
MAX_PAGES = 40  # 50 a page: far beyond any calendar's busy times in the horizon
UTC_NAMES = ("UTC", "Coordinated Universal Time", "tzone://Microsoft/Utc")


def _integration(user_id: uuid.UUID) -> Integration | None:
    return db.session.scalars(select(Integration).where(
        Integration.user_id == user_id, Integration.provider == MICROSOFT_CALENDAR,
        Integration.status == CONNECTED)).one_or_none()


def _connected_id(user_id: uuid.UUID) -> uuid.UUID | None:
    # A lone read on the autocommit engine: no transaction stays open while Microsoft answers.
    with db.engines[AUTOCOMMIT_BIND].connect() as connection:
        return connection.scalar(select(Integration.id).where(
            Integration.user_id == user_id, Integration.provider == MICROSOFT_CALENDAR,
            Integration.status == CONNECTED))


def is_mirror(item: dict[str, Any]) -> bool:
    """Callnfy's own copy of an appointment (counted as the appointment itself): the event carries
    Callnfy's tag, a single-value extended property read with `$expand` (`event_body.TAG_EXPAND`)."""
    return tagged_appointment_id(item) is not None


def counts_as_busy(item: dict[str, Any]) -> bool:
    if item.get("isCancelled") or item.get("showAs") == "free" or is_mirror(item):
        return False
    return (item.get("responseStatus") or {}).get("response") != "declined"


def _moment(value: dict[str, Any], asked: str, zone: ZoneInfo) -> datetime:
    """A Graph `dateTimeTimeZone` as an aware datetime (the zone Graph names, normally the one asked for)."""
    local = datetime.fromisoformat(value["dateTime"][:26].rstrip("Z"))  # at most 6 fractional digits
    name = value.get("timeZone") or asked
    if name == asked:
        shown_in = zone
    elif name in UTC_NAMES:
        shown_in = UTC
    else:
        try:
            shown_in = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {name!r}") from None
    return local.replace(tzinfo=shown_in) if local.tzinfo is None else local


def block_of(item: dict[str, Any], zone: ZoneInfo) -> Block | None:
    start, end = item.get("start") or {}, item.get("end") or {}
    if not start.get("dateTime") or not end.get("dateTime"):
        return None
    asked = str(zone.key)
    first, last = _moment(start, asked, zone), _moment(end, asked, zone)
    if item.get("isAllDay"):  # its dates in the owner's zone, end date exclusive
        first_day, last_day = first.astimezone(zone).date(), last.astimezone(zone).date()
        first, last = local_midnight(first_day, zone), local_midnight(max(last_day, _next(first_day)), zone)
        return Block(item.get("id"), first, last, all_day=True)
    return Block(item.get("id"), first, last) if last > first else None


def _next(day: date) -> date:
    return date.fromordinal(day.toordinal() + 1)


class MicrosoftBusy:
    name = PROVIDER

    def default_calendars(self, user_id: uuid.UUID) -> list[str]:
        integration = _integration(user_id)
        return [integration.calendar_id or DEFAULT_CALENDAR] if integration is not None else []

    def default_time_zone(self, user_id: uuid.UUID) -> str | None:
        return None  # the mailbox's zone needs MailboxSettings.Read, which Callnfy does not ask for

    def pushed(self, user_id: uuid.UUID, calendar_id: str) -> bool:
        integration = _integration(user_id)
        return (integration is not None and integration.sync_mode == TWO_WAY and integration.channel_id is not None
                and calendar_id == (integration.calendar_id or DEFAULT_CALENDAR))

    def calendar_ids(self, user_id: uuid.UUID) -> set[str] | None:
        integration = _connected_id(user_id)
        if integration is None:
            return None
        try:
            found = call(integration, graph_api.calendars)
        except (graph_api.GraphError, oauth.MicrosoftUnavailable, ReauthorizationRequired, LookupError):
            return None
        return {DEFAULT_CALENDAR} | {c["id"] for c in found if c.get("id")}

    def read(self, user_id: uuid.UUID, calendar_id: str, start: datetime, end: datetime,
             zone: ZoneInfo) -> list[Block]:
        integration = _connected_id(user_id)
        if integration is None:
            raise BusyUnavailable("Microsoft Calendar is not connected")
        blocks: list[Block] = []
        next_link = None
        try:
            for _ in range(MAX_PAGES):
                page = call(integration, lambda token, next_link=next_link: graph_api.calendar_view(
                    token, calendar_id, start, end, str(zone.key), next_link))
                blocks += [b for item in page.get("value") or [] if counts_as_busy(item)
                           and (b := block_of(item, zone)) is not None]
                next_link = page.get("@odata.nextLink")
                if not next_link:
                    return blocks
        except (graph_api.GraphError, oauth.MicrosoftUnavailable, ReauthorizationRequired, LookupError,
                ValueError, KeyError) as exc:
            raise BusyUnavailable(f"Microsoft Calendar: {type(exc).__name__}") from None
        return blocks


register_provider(MicrosoftBusy())
