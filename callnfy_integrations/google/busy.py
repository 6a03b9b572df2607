"""Google Calendar as a provider of busy time for availability (`availability.busy.Provider`).

An event makes the owner busy unless it is transparent ("free"), cancelled, declined by the owner, or
Callnfy's own mirror of an appointment (the appointment itself is counted). Google expands recurring
events into their instances (`singleEvents`). An all-day event blocks its days in the owner's time
zone. A two-way connection's calendar is kept fresh by its notifications: its sync run reads it.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from ..availability.busy import Block, BusyUnavailable, register_provider
from ..availability.rules import local_midnight
from ..extensions import AUTOCOMMIT_BIND, db
from ..integrations.models import CONNECTED, GOOGLE_CALENDAR, TWO_WAY, Integration
from . import calendar_api, calendars, oauth
from .sync import QuotaWait, call
from .tokens import ReauthorizationRequired

PROVIDER = "google"
MAX_PAGES = 20  # 2,500 events a page: far beyond any calendar's busy times in the horizon


def _integration(user_id: uuid.UUID) -> Integration | None:
    return db.session.scalars(select(Integration).where(
        Integration.user_id == user_id, Integration.provider == GOOGLE_CALENDAR,
        Integration.status == CONNECTED)).one_or_none()


def is_mirror(item: dict[str, Any]) -> bool:
    """Callnfy's own copy of an appointment (tagged when created), which is counted as the appointment."""
    return bool(((item.get("extendedProperties") or {}).get("private") or {}).get("callnfyAppointmentId"))


def counts_as_busy(item: dict[str, Any]) -> bool:
    if item.get("status") == "cancelled" or item.get("transparency") == "transparent" or is_mirror(item):
        return False
    me = next((a for a in item.get("attendees") or [] if a.get("self")), None)
    return not (me and me.get("responseStatus") == "declined")


def block_of(item: dict[str, Any], zone: ZoneInfo) -> Block | None:
    start, end = item.get("start") or {}, item.get("end") or {}
    if start.get("dateTime") and end.get("dateTime"):
        first = datetime.fromisoformat(start["dateTime"].replace("Z", "+00:00"))
        last = datetime.fromisoformat(end["dateTime"].replace("Z", "+00:00"))
        return Block(item.get("id"), first, last) if last > first else None
    if start.get("date") and end.get("date"):  # all day: its days in the owner's zone (end date exclusive)
        first = local_midnight(date.fromisoformat(start["date"]), zone)
        last = local_midnight(date.fromisoformat(end["date"]), zone)
        return Block(item.get("id"), first, last, all_day=True) if last > first else None
    return None


class GoogleBusy:
    name = PROVIDER

    def default_calendars(self, user_id: uuid.UUID) -> list[str]:
        integration = _integration(user_id)
        return [integration.calendar_id or "primary"] if integration is not None else []

    def default_time_zone(self, user_id: uuid.UUID) -> str | None:
        integration = _integration(user_id)
        return integration.calendar_time_zone if integration is not None else None

    def pushed(self, user_id: uuid.UUID, calendar_id: str) -> bool:
        integration = _integration(user_id)
        return (integration is not None and integration.sync_mode == TWO_WAY and integration.channel_id is not None
                and calendar_id == (integration.calendar_id or "primary"))

    def calendar_ids(self, user_id: uuid.UUID) -> set[str] | None:
        return calendars.ids(user_id)

    def read(self, user_id: uuid.UUID, calendar_id: str, start: datetime, end: datetime,
             zone: ZoneInfo) -> list[Block]:
        # A lone read on the autocommit engine: no transaction stays open while Google answers.
        with db.engines[AUTOCOMMIT_BIND].connect() as connection:
            integration = connection.execute(select(Integration.id).where(
                Integration.user_id == user_id, Integration.provider == GOOGLE_CALENDAR,
                Integration.status == CONNECTED)).one_or_none()
        if integration is None:
            raise BusyUnavailable("Google Calendar is not connected")
        blocks, page_token = [], None
        try:
            for _ in range(MAX_PAGES):
                page = call(integration.id, lambda token, page_token=page_token: calendar_api.list_window(
                    token, calendar_id, start, end, page_token=page_token))
                blocks += [b for item in page.get("items") or [] if counts_as_busy(item)
                           and (b := block_of(item, zone)) is not None]
                page_token = page.get("nextPageToken")
                if not page_token:
                    return blocks
        except (calendar_api.CalendarError, oauth.GoogleUnavailable, ReauthorizationRequired, QuotaWait,
                LookupError) as exc:
            raise BusyUnavailable(f"Google Calendar: {type(exc).__name__}") from None
        return blocks


register_provider(GoogleBusy())
