"""The `appointments` table, with the version counter and Google link columns calendar sync needs."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text
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

NOTES_MAX = 5000
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

    customer: Mapped[Customer] = relationship(lazy="joined", innerjoin=True)
