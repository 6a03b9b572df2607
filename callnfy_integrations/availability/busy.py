"""The busy copy: which calendars make the owner busy, and what they said when last read.

Calendar providers plug in here (`register_provider`): each says which of the owner's calendars count
by default, whether a calendar's copy is kept fresh by its notifications (two-way sync), and how to
read a calendar's busy intervals for a window. Nothing else here knows a provider: Microsoft 365 is a
second `Provider` beside Google's. These functions only flush; `refresh.py` reads and commits.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import delete, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from ..extensions import db
from .models import BusyBlock, BusySource

# The calendar providers availability knows (each registers itself: google.busy, microsoft.busy).
PROVIDERS = ("google", "microsoft")


@dataclass(frozen=True, order=True)
class Source:
    provider: str
    calendar_id: str

    def as_json(self) -> dict[str, str]:
        return {"provider": self.provider, "calendarId": self.calendar_id}


@dataclass(frozen=True)
class Block:
    event_id: str | None
    start: datetime
    end: datetime
    all_day: bool = False


class BusyUnavailable(Exception):
    """The provider could not be read now (down, rate limited, reconnect needed): keep the last copy."""


class Provider(Protocol):
    name: str

    def default_calendars(self, user_id: uuid.UUID) -> list[str]:
        """The owner's connected calendar(s) with this provider, counted busy unless they choose."""

    def default_time_zone(self, user_id: uuid.UUID) -> str | None:
        """The connected calendar's time zone, when known."""

    def pushed(self, user_id: uuid.UUID, calendar_id: str) -> bool:
        """True when notifications keep this calendar's copy fresh (no read on the request path)."""

    def read(self, user_id: uuid.UUID, calendar_id: str, start: datetime, end: datetime,
             zone: ZoneInfo) -> list[Block]:
        """The calendar's busy intervals overlapping [start, end); raises BusyUnavailable."""

    def calendar_ids(self, user_id: uuid.UUID) -> set[str] | None:
        """The ids of the owner's calendars with this provider (to check a choice); None when they
        cannot be listed now (not connected, no permission, provider down): the choice is not checked."""


_providers: dict[str, Provider] = {}


def register_provider(provider: Provider) -> None:
    _providers[provider.name] = provider


def provider(name: str) -> Provider | None:
    return _providers.get(name)


def provider_names() -> list[str]:
    return sorted(_providers)


def default_sources(user_id: uuid.UUID) -> list[Source]:
    return [Source(p.name, calendar_id) for p in _providers.values() for calendar_id in p.default_calendars(user_id)]


def default_time_zone(user_id: uuid.UUID) -> str | None:
    return next((zone for p in _providers.values() if (zone := p.default_time_zone(user_id))), None)


def unknown_calendars(user_id: uuid.UUID, chosen: list[dict[str, str]]) -> dict[str, dict]:
    """What is wrong with a choice of busy calendars: the position of each calendar its provider says
    the owner does not have (field errors, as for `busyCalendars`); a provider is asked at most once,
    and one that cannot list its calendars now accepts them. Asks providers: call with no transaction open."""
    known: dict[str, set[str] | None] = {}
    errors: dict[str, dict] = {}
    for position, item in enumerate(chosen):
        found = _providers.get(item["provider"])
        if found is None:
            continue
        if item["provider"] not in known:
            known[item["provider"]] = found.calendar_ids(user_id)
        ids = known[item["provider"]]
        if ids is not None and item["calendarId"] not in ids:
            errors[str(position)] = {"calendarId": [f"Not one of your {item['provider']} calendars."]}
    return errors


def copies(user_id: uuid.UUID, sources: list[Source]) -> dict[Source, BusySource]:
    """The stored copy of each source that has one."""
    if not sources:
        return {}
    rows = db.session.scalars(select(BusySource).where(BusySource.user_id == user_id)).all()
    wanted = set(sources)
    return {key: row for row in rows if (key := Source(row.provider, row.calendar_id)) in wanted}


def covers(copy: BusySource | None, start: datetime, end: datetime) -> bool:
    return copy is not None and copy.window_start <= start and end <= copy.window_end


def store(user_id: uuid.UUID, source: Source, window: tuple[datetime, datetime], blocks: list[Block],
          read_at: datetime) -> None:
    """Replace the source's copy with what was read for `window`."""
    db.session.execute(delete(BusyBlock).where(BusyBlock.user_id == user_id, BusyBlock.provider == source.provider,
                                               BusyBlock.calendar_id == source.calendar_id))
    if blocks:
        db.session.execute(insert(BusyBlock), [
            {"user_id": user_id, "provider": source.provider, "calendar_id": source.calendar_id,
             "event_id": (b.event_id or "")[:1024] or None, "starts_at": b.start, "ends_at": b.end,
             "all_day": b.all_day} for b in blocks])
    values = {"window_start": window[0], "window_end": window[1], "read_at": read_at, "last_error": None}
    db.session.execute(pg_insert(BusySource).values(user_id=user_id, provider=source.provider,
                                                    calendar_id=source.calendar_id, **values)
                       .on_conflict_do_update(index_elements=["user_id", "provider", "calendar_id"], set_=values))


def forget(user_id: uuid.UUID, provider_name: str) -> None:
    """Drop the copy of every calendar of one provider (the owner disconnected it)."""
    for model in (BusyBlock, BusySource):
        db.session.execute(delete(model).where(model.user_id == user_id, model.provider == provider_name))


def record_failure(user_id: uuid.UUID, source: Source, message: str) -> None:
    """A failed read keeps the copy (and its read time, which says how old it is)."""
    db.session.execute(BusySource.__table__.update().where(
        BusySource.user_id == user_id, BusySource.provider == source.provider,
        BusySource.calendar_id == source.calendar_id).values(last_error=message[:500]))
