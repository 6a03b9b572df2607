"""`calendar_links`: where one appointment stands with one connected calendar (Google, Microsoft).

One row per (appointment, provider), made when the appointment first needs pushing to that calendar
or is imported from it. It holds the push state machine (`state`, `attempts`, `next_sync_at`, the
version last written) and what the provider holds (event id, etag or changeKey, the event's time and
update time as of our last write or read), which two-way sync reads to tell echoes and moves apart.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db

# `state`; an appointment without a link to a connected calendar reads "off".
PENDING = "pending"
SYNCED = "synced"
FAILED = "failed"
OFF = "off"
STATES = (PENDING, SYNCED, FAILED, OFF)


class CalendarLink(db.Model):
    __tablename__ = "calendar_links"
    __table_args__ = (
        CheckConstraint("provider IN ('google_calendar', 'microsoft_calendar')", name="provider"),
        CheckConstraint("state IN ('pending', 'synced', 'failed', 'off')", name="state"),
        # One appointment per event of a calendar: an import never doubles, a link never forks.
        Index("ix_calendar_links_user_id_provider_event_id", "user_id", "provider", "event_id", unique=True,
              postgresql_where="event_id IS NOT NULL"),
        Index("ix_calendar_links_user_id_provider", "user_id", "provider"),
        # The sweeper's scan: pushes still due, and nothing else.
        Index("ix_calendar_links_next_sync_at", "next_sync_at", postgresql_where="next_sync_at IS NOT NULL"),
    )

    appointment_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("appointments.id", ondelete="CASCADE"), primary_key=True)
    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"),
                                               nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False, default=PENDING, server_default=PENDING)
    synced_version: Mapped[int | None] = mapped_column(Integer)  # the appointment version last written
    error: Mapped[str | None] = mapped_column(String(500))
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    synced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When the push is (next) due; the sweeper re-drives what is past it. NULL: nothing to do.
    next_sync_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    event_id: Mapped[str | None] = mapped_column(String(1024))
    etag: Mapped[str | None] = mapped_column(String(255))  # Google's etag, Graph's changeKey
    # The event's time and update time as of our last write or read of it.
    remote_start_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    remote_duration: Mapped[int | None] = mapped_column(Integer)
    remote_updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Cancelled in Callnfy, its event (the owner's own, imported) left in the calendar untouched.
    event_left: Mapped[bool | None] = mapped_column(Boolean)

    def shown(self, version: int) -> dict:
        """`googleSync` / `microsoftSync` of an appointment at `version` (`left`: the provider's
        `leftInGoogle` / `leftInOutlook`)."""
        state = self.state
        if state == SYNCED and self.synced_version != version:
            state = PENDING  # changed since the last push; the next one is on its way
        return {"state": state, "eventId": self.event_id, "error": self.error, "syncedAt": self.synced_at,
                "left": bool(self.event_left)}


def off() -> dict:
    return {"state": OFF, "eventId": None, "error": None, "syncedAt": None, "left": False}
