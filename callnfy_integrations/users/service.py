"""User rows: created on first sight, idempotently and safely under concurrency."""

from __future__ import annotations

import uuid

from sqlalchemy.dialects.postgresql import insert

from ..extensions import db
from .models import User


def ensure_user(user_id: uuid.UUID) -> None:
    """Create the user's row if it does not exist yet; the caller commits."""
    db.session.execute(insert(User).values(id=user_id).on_conflict_do_nothing(index_elements=[User.id]))
