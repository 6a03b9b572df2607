"""The `calls` table."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..columns import Timestamps, uuid_pk
from ..customers.models import Customer
from ..extensions import db

SENTIMENTS = ("positive", "neutral", "negative")
DURATION_MIN, DURATION_MAX = 0, 86400
URL_MAX = 2048
TRANSCRIPT_MAX = 100_000


class Call(Timestamps, db.Model):
    __tablename__ = "calls"
    __table_args__ = (
        CheckConstraint("sentiment IS NULL OR sentiment IN ('positive', 'neutral', 'negative')", name="sentiment"),
        CheckConstraint(f"duration BETWEEN {DURATION_MIN} AND {DURATION_MAX}", name="duration"),
        Index("ix_calls_user_id_received_at", "user_id", "received_at"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"),
                                               nullable=False)
    customer_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("customers.id"), nullable=False)
    duration: Mapped[int] = mapped_column(Integer, nullable=False)  # seconds
    recording_url: Mapped[str | None] = mapped_column(String(URL_MAX))
    transcript: Mapped[str | None] = mapped_column(Text)
    sentiment: Mapped[str | None] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    customer: Mapped[Customer] = relationship(lazy="joined", innerjoin=True)
