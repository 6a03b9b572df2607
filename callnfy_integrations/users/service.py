"""User rows: created on first sight, idempotently and safely under concurrency."""

from __future__ import annotations

import uuid

from sqlalchemy import bindparam
from sqlalchemy.dialects.postgresql import insert

from ..extensions import db
from .models import User

# Built once; also run on the autocommit connection of the status read.
CREATE_USER = insert(User).values(id=bindparam("user_id")).on_conflict_do_nothing(index_elements=[User.id])


def ensure_user(user_id: uuid.UUID) -> None:
    """Create the user's row if it does not exist yet; the caller commits."""
    db.session.execute(CREATE_USER, {"user_id": user_id})
