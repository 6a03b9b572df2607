"""The `appointments` table, with the version counter calendar sync orders its writes by.

Where an appointment stands with each connected calendar is in `calendar_links` (`links`). The
`google_*` columns are the previous release's copy of the Google link: nothing reads or writes them
any more, and a later release drops them (migration 0012 explains the order)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..calendar_sync.models import CalendarLink
from ..calendar_sync.models import off as calendar_link_off
from ..columns import Timestamps, uuid_pk
from ..customers.models import Customer
from ..extensions import db
from ..integrations.models import GOOGLE_CALENDAR, MICROSOFT_CALENDAR

SCHEDULED = "scheduled"
CANCELLED = "cancelled"
COMPLETED = "completed"
STATUSES = (SCHEDULED, CANCELLED, COMPLETED)

SOURCE_CALLNFY = "callnfy"
SOURCE_GOOGLE = "google"
SOURCE_MICROSOFT = "microsoft"
SOURCES = (SOURCE_CALLNFY, SOURCE_GOOGLE, SOURCE_MICROSOFT)

NOTES_MAX = 5000
IDEMPOTENCY_KEY_MAX = 255
REASON_MAX = 500
DURATION_MIN, DURATION_MAX = 1, 1440


class Appointment(Timestamps, db.Model):
    __tablename__ = "appointments"
    __table_args__ = (
        CheckConstraint("status IN ('scheduled', 'cancelled', 'completed')", name="status"),
        CheckConstraint("source IN ('callnfy', 'google', 'microsoft')", name="source"),
        CheckConstraint(f"duration BETWEEN {DURATION_MIN} AND {DURATION_MAX}", name="duration"),
        Index("ix_appointments_user_id_created_at", "user_id", "created_at"),
        Index("ix_appointments_user_id_scheduled_at", "user_id", "scheduled_at"),
        Index("ix_appointments_user_id_google_event_id", "user_id", "google_event_id", unique=True,
              postgresql_where="google_event_id IS NOT NULL"),
        CheckConstraint("google_sync_state IS NULL OR google_sync_state IN ('pending', 'synced', 'failed', 'off')",
                        name="google_sync_state"),
        # The calendar sweeper's scan: pushes still due, and nothing else.
        Index("ix_appointments_google_sync_due", "google_next_sync_at",
              postgresql_where="google_next_sync_at IS NOT NULL"),
        # A create retried with the same key finds the first one, even when the retries race (NULLs differ).
        UniqueConstraint("user_id", "idempotency_key"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"),
                                               nullable=False)
    customer_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("customers.id"), nullable=False)
    scheduled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    duration: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=SCHEDULED, server_default=SCHEDULED)
    notes: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16), nullable=False, default=SOURCE_CALLNFY,
                                        server_default=SOURCE_CALLNFY)
    # Bumped on every change: calendar sync tags Google events with it to order writes.
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1, server_default="1")
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_reason: Mapped[str | None] = mapped_column(String(REASON_MAX))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Legacy (see the module's docstring): the Google link as the previous release kept it.
    google_event_id: Mapped[str | None] = mapped_column(String(1024))
    google_etag: Mapped[str | None] = mapped_column(String(255))
    google_synced_version: Mapped[int | None] = mapped_column(Integer)
    google_sync_state: Mapped[str | None] = mapped_column(String(16))
    google_sync_error: Mapped[str | None] = mapped_column(String(500))
    google_sync_attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    google_synced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When the push is (next) due; the sweeper re-drives what is past it. NULL: nothing to do.
    google_next_sync_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The event's time in Google as of our last write or read of it: tells a Google-side move from a
    # Google edit of something else while a Callnfy change waits to be pushed (two-way sync).
    google_start_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    google_duration: Mapped[int | None] = mapped_column(Integer)
    # Google's `updated` of the event as of our last write or read: an older state listed later is stale.
    google_updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Cancelled in Callnfy, its event (the owner's own, imported from Google) left in Google untouched.
    google_event_left: Mapped[bool | None] = mapped_column(Boolean)

    # The key a key-authenticated create (Zapier) was made with, and a digest of what it asked for: the
    # same key with another request is refused rather than answered with this appointment.
    idempotency_key: Mapped[str | None] = mapped_column(String(IDEMPOTENCY_KEY_MAX))
    idempotency_fingerprint: Mapped[str | None] = mapped_column(String(64))

    customer: Mapped[Customer] = relationship(lazy="joined", innerjoin=True)
    # One per connected calendar it was pushed to or imported from (loaded with the appointment).
    links: Mapped[list[CalendarLink]] = relationship(lazy="selectin", viewonly=True)

    def link(self, provider: str) -> CalendarLink | None:
        return next((link for link in self.links if link.provider == provider), None)

    def _sync(self, provider: str, left_key: str) -> dict:
        link = self.link(provider)
        shown = link.shown(self.version) if link is not None else calendar_link_off()
        shown[left_key] = shown.pop("left")
        return shown

    @property
    def google_sync(self) -> dict:
        """Where this appointment stands with the user's Google calendar (`googleSync`)."""
        return self._sync(GOOGLE_CALENDAR, "leftInGoogle")

    @property
    def microsoft_sync(self) -> dict:
        """Where this appointment stands with the user's Outlook calendar (`microsoftSync`)."""
        return self._sync(MICROSOFT_CALENDAR, "leftInOutlook")
