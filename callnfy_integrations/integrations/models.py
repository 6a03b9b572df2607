"""The `integrations` table: one row per (user, provider), secrets only ever encrypted or hashed."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from ..columns import Timestamps, uuid_pk
from ..extensions import db

GOOGLE_CALENDAR = "google_calendar"
MICROSOFT_CALENDAR = "microsoft_calendar"
ZAPIER = "zapier"
PROVIDERS = (GOOGLE_CALENDAR, MICROSOFT_CALENDAR, ZAPIER)

CONNECTED = "connected"
REAUTHORIZATION_REQUIRED = "reauthorization_required"

ONE_WAY = "one-way"
TWO_WAY = "two-way"
SYNC_MODES = (ONE_WAY, TWO_WAY)


class Integration(Timestamps, db.Model):
    __tablename__ = "integrations"
    __table_args__ = (
        UniqueConstraint("user_id", "provider"),
        Index("ix_integrations_user_id", "user_id"),
        Index("ix_integrations_api_key_hash", "api_key_hash", unique=True),
        CheckConstraint("provider IN ('google_calendar', 'microsoft_calendar', 'zapier')", name="provider"),
        CheckConstraint("status IN ('connected', 'reauthorization_required')", name="status"),
        CheckConstraint("sync_mode IS NULL OR sync_mode IN ('one-way', 'two-way')", name="sync_mode"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"),
                                               nullable=False)
    provider: Mapped[str] = mapped_column(String(32), nullable=False)
    status: Mapped[str] = mapped_column(String(32), nullable=False, default=CONNECTED, server_default=CONNECTED)

    # Calendar providers (Google Calendar; Microsoft 365 uses the columns up to calendar_time_zone)
    email: Mapped[str | None] = mapped_column(String(320))
    sync_mode: Mapped[str | None] = mapped_column(String(16))
    access_token_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    refresh_token_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    token_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    scopes: Mapped[str | None] = mapped_column(Text)
    calendar_id: Mapped[str | None] = mapped_column(String(255))
    # The calendar's own time zone (from events.list on connect); events are written in it.
    calendar_time_zone: Mapped[str | None] = mapped_column(String(64))
    sync_token: Mapped[str | None] = mapped_column(Text)
    channel_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    channel_token_hash: Mapped[str | None] = mapped_column(String(64))
    channel_resource_id: Mapped[str | None] = mapped_column(String(255))
    channel_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Two-way sync: during a renewal the channel being replaced is accepted too, until it is stopped.
    previous_channel_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    previous_channel_token_hash: Mapped[str | None] = mapped_column(String(64))
    previous_channel_resource_id: Mapped[str | None] = mapped_column(String(255))
    two_way_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # the baseline
    sync_error: Mapped[str | None] = mapped_column(String(500))
    sync_attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    last_sync_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    # Zapier: the key is looked up by its SHA-256 and shown again from its encrypted copy.
    api_key_hash: Mapped[str | None] = mapped_column(String(64))
    api_key_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)

    settings: Mapped[dict] = mapped_column(JSONB, nullable=False, default=dict, server_default="{}")
