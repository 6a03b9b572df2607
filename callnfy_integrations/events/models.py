"""`events` (the outbox) and `event_handler_runs` (which handler has finished with which event)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text, func
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from ..columns import uuid_pk
from ..extensions import db


class Event(db.Model):
    __tablename__ = "events"
    __table_args__ = (
        # The sweeper's scan: undispatched events by due time, and nothing else.
        Index("ix_events_due", "next_attempt_at", postgresql_where="dispatched_at IS NULL"),
        Index("ix_events_user_id_type_created_at", "user_id", "type", "created_at"),
        # Retention: dispatched events by age.
        Index("ix_events_dispatched", "created_at", postgresql_where="dispatched_at IS NOT NULL"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"),
                                               nullable=False)
    type: Mapped[str] = mapped_column(String(64), nullable=False)
    payload: Mapped[dict] = mapped_column(JSONB, nullable=False)  # the webhook `data`
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False,
                                                 server_default=func.clock_timestamp())
    # Dispatch bookkeeping: the sweeper re-enqueues events due and not dispatched.
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class EventHandlerRun(db.Model):
    """A handler's completion mark, committed in the same transaction as the handler's own writes."""

    __tablename__ = "event_handler_runs"

    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("events.id", ondelete="CASCADE"),
                                                primary_key=True)
    handler: Mapped[str] = mapped_column(String(100), primary_key=True)
    completed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False,
                                                   server_default=func.clock_timestamp())
