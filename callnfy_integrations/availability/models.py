"""Availability's tables: each owner's settings, holds on slots, and the busy copy of their calendars."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text, func
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from ..columns import uuid_pk
from ..extensions import db


class AvailabilitySettings(db.Model):
    """One row per owner who changed a setting; an owner without one has the defaults."""

    __tablename__ = "availability_settings"

    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"),
                                               primary_key=True)
    time_zone: Mapped[str | None] = mapped_column(String(64))  # NULL: the connected calendar's, else London
    working_hours: Mapped[dict | None] = mapped_column(JSONB)  # NULL: Mon–Fri 09:00–17:00
    buffer_before: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    buffer_after: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    min_notice: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    busy_calendars: Mapped[list | None] = mapped_column(JSONB)  # NULL: the connected calendar(s)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now(),
                                                 onupdate=func.now())


class Hold(db.Model):
    """A slot kept for a caller who is deciding: busy until `expires_at` exactly, or until consumed."""

    __tablename__ = "availability_holds"
    __table_args__ = (
        Index("ix_availability_holds_user_id_scheduled_at", "user_id", "scheduled_at"),
        CheckConstraint("duration BETWEEN 1 AND 1440", name="duration"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"),
                                               nullable=False)
    scheduled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    duration: Mapped[int] = mapped_column(Integer, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    consumed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False,
                                                 server_default=func.clock_timestamp())


class BusySource(db.Model):
    """One calendar whose busy times are copied: how far the copy reaches and when it was read."""

    __tablename__ = "busy_sources"

    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"),
                                               primary_key=True)
    provider: Mapped[str] = mapped_column(String(16), primary_key=True)
    calendar_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    window_end: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    read_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)  # busyAsOf
    last_error: Mapped[str | None] = mapped_column(Text)


class BusyBlock(db.Model):
    """A busy interval of a copied calendar (an event that makes its owner busy, its instances expanded)."""

    __tablename__ = "busy_blocks"
    __table_args__ = (
        Index("ix_busy_blocks_user_id_starts_at", "user_id", "starts_at"),
        Index("ix_busy_blocks_source", "user_id", "provider", "calendar_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"),
                                               nullable=False)
    provider: Mapped[str] = mapped_column(String(16), nullable=False)
    calendar_id: Mapped[str] = mapped_column(String(255), nullable=False)
    event_id: Mapped[str | None] = mapped_column(String(1024))
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    all_day: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default="false")
