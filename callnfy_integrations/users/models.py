"""The `users` table: one row per Callnfy user, created the first time their token is seen."""

from __future__ import annotations

import uuid

from sqlalchemy import String
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from ..columns import Timestamps
from ..extensions import db

DEFAULT_TIME_ZONE = "Europe/London"


class User(Timestamps, db.Model):
    __tablename__ = "users"

    # The id is Callnfy's (the JWT `sub`), never generated here.
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    time_zone: Mapped[str] = mapped_column(String(64), nullable=False, default=DEFAULT_TIME_ZONE,
                                           server_default=DEFAULT_TIME_ZONE)
