"""The `customers` table: unique per (user, phone)."""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from ..columns import Timestamps, uuid_pk
from ..extensions import db

NAME_MAX = 200
PHONE_MAX = 32
EMAIL_MAX = 320


class Customer(Timestamps, db.Model):
    __tablename__ = "customers"
    __table_args__ = (UniqueConstraint("user_id", "phone"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"),
                                               nullable=False)
    name: Mapped[str] = mapped_column(String(NAME_MAX), nullable=False)
    # NULL only for customers of appointments imported from Google Calendar (no phone known).
    phone: Mapped[str | None] = mapped_column(String(PHONE_MAX))
    email: Mapped[str | None] = mapped_column(String(EMAIL_MAX))
