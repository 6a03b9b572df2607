"""The `appointments` table, with the version counter and Google link columns calendar sync needs."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..columns import Timestamps, uuid_pk
from ..customers.models import Customer
from ..extensions import db

SCHEDULED = "scheduled"
CANCELLED = "cancelled"
COMPLETED = "completed"
STATUSES = (SCHEDULED, CANCELLED, COMPLETED)

SOURCE_CALLNFY = "callnfy"
SOURCE_GOOGLE = "google"
SOURCES = (SOURCE_CALLNFY, SOURCE_GOOGLE)

# Where the appointment stands with the user's Google calendar (`googleSync.state`; NULL reads "off").
SYNC_PENDING = "pending"
SYNC_SYNCED = "synced"
SYNC_FAILED = "failed"
SYNC_OFF = "off"
SYNC_STATES = (SYNC_PENDING, SYNC_SYNCED, SYNC_FAILED, SYNC_OFF)

NOTES_MAX = 5000
IDEMPOTENCY_KEY_MAX = 255
REASON_MAX = 500
DURATION_MIN, DURATION_MAX = 1, 1440


class Appointment(Timestamps, db.Model):
    __tablename__ = "appointments"
    __table_args__ = (
        CheckConstraint("status IN ('scheduled', 'cancelled', 'completed')", name="status"),
        CheckConstraint("source IN ('callnfy', 'google')", name="source"),
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
    # Google link: the event this appointment is mirrored to, and what we last wrote there.
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

    @property
    def google_sync(self) -> dict:
        """Where this appointment stands with the user's Google calendar (`googleSync`)."""
        state = self.google_sync_state or SYNC_OFF
        if state == SYNC_SYNCED and self.google_synced_version != self.version:
            state = SYNC_PENDING  # changed since the last push; the next one is on its way
        return {"state": state, "eventId": self.google_event_id, "error": self.google_sync_error,
                "syncedAt": self.google_synced_at, "leftInGoogle": bool(self.google_event_left)}
