"""REST-hook subscriptions, one delivery row per (event, subscription), and every attempt made."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from ..columns import uuid_pk
from ..extensions import db

HOOK_URL_MAX = 2048

PENDING = "pending"
DELIVERED = "delivered"
DEAD = "dead"  # every attempt failed
GONE = "gone"  # the receiver answered 410: its subscription was removed
CANCELLED = "cancelled"  # the key was revoked or the subscription deleted before delivery
DELIVERY_STATUSES = (PENDING, DELIVERED, DEAD, GONE, CANCELLED)
# Why a delivery was cancelled (`cancel_reason`): only one cancelled when its subscription was disabled
# may be sent again (the user fixed the receiver); the others have nowhere, or no key, to go.
KEY_REVOKED = "key_revoked"
SUBSCRIPTION_DELETED = "subscription_deleted"
SUBSCRIPTION_DISABLED = "subscription_disabled"
HOOK_GONE = "hook_gone"
CANCEL_REASONS = (KEY_REVOKED, SUBSCRIPTION_DELETED, SUBSCRIPTION_DISABLED, HOOK_GONE)


class ZapierSubscription(db.Model):
    __tablename__ = "zapier_subscriptions"
    __table_args__ = (UniqueConstraint("user_id", "event", "hook_url"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"),
                                               nullable=False)
    event: Mapped[str] = mapped_column(String(64), nullable=False)
    hook_url: Mapped[str] = mapped_column(String(HOOK_URL_MAX), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    # Set by the first failed attempt after a success; a subscription failing for
    # WEBHOOK_DISABLE_AFTER_DAYS is disabled: no new deliveries until Zapier subscribes it again.
    failing_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    disabled_reason: Mapped[str | None] = mapped_column(String(200))

    @property
    def status(self) -> str:
        return "disabled" if self.disabled_at is not None else "active"


class WebhookDelivery(db.Model):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "subscription_id"),
        CheckConstraint("status IN ('pending', 'delivered', 'dead', 'gone', 'cancelled')", name="status"),
        CheckConstraint("cancel_reason IS NULL OR cancel_reason IN "
                        "('key_revoked', 'subscription_deleted', 'subscription_disabled', 'hook_gone')",
                        name="cancel_reason"),
        # The sweeper's scan: pending deliveries by due time, nothing else.
        Index("ix_webhook_deliveries_due", "next_attempt_at", postgresql_where="status = 'pending'"),
        Index("ix_webhook_deliveries_user_id_created_at", "user_id", "created_at"),
        # Attempts in flight, per account (the fairness limit counts them).
        Index("ix_webhook_deliveries_in_flight", "user_id", "claimed_until",
              postgresql_where="claimed_until IS NOT NULL"),
        # Retention: finished deliveries by age.
        Index("ix_webhook_deliveries_finished", "created_at", postgresql_where="status <> 'pending'"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"),
                                               nullable=False)
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("events.id", ondelete="CASCADE"),
                                                nullable=False)
    # Kept (NULL) when the subscription goes, so a dead or cancelled delivery stays visible.
    subscription_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("zapier_subscriptions.id", ondelete="SET NULL"))
    hook_url: Mapped[str] = mapped_column(String(HOOK_URL_MAX), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=PENDING, server_default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False,
                                                      server_default=func.clock_timestamp())
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    cancel_reason: Mapped[str | None] = mapped_column(String(32))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # While an attempt runs: its lease. A claim still set after this time lost its worker.
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False,
                                                 server_default=func.clock_timestamp())


class WebhookAttempt(db.Model):
    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), nullable=False, index=True)
    attempt: Mapped[int] = mapped_column(Integer, nullable=False)
    status_code: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[int] = mapped_column(Integer, nullable=False)
    error: Mapped[str | None] = mapped_column(String(500))
    attempted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False,
                                                   server_default=func.clock_timestamp())
