"""The combined integration status of a user, read in one query."""

from __future__ import annotations

import uuid
from typing import Any

from flask import current_app
from sqlalchemy import and_, select

from ..crypto import secret_box
from ..extensions import db
from ..users.models import User
from ..users.service import ensure_user
from .models import CONNECTED, GOOGLE_CALENDAR, ZAPIER, Integration

ZAPIER_API_KEY_FIELD = "zapier.api_key"


def zapier_webhook_url(user_id: uuid.UUID) -> str:
    return f"{current_app.config['PUBLIC_API_URL']}/webhooks/zapier/{user_id}"


def google_status(row: Integration | None) -> dict[str, Any]:
    if row is None:
        return {"connected": False}
    if row.status != CONNECTED:
        return {"connected": False, "reauthorizationRequired": True, "email": row.email}
    return {"connected": True, "email": row.email, "syncMode": row.sync_mode, "lastSyncAt": row.last_sync_at}


def zapier_status(row: Integration | None) -> dict[str, Any]:
    if row is None or row.api_key_encrypted is None:
        return {"connected": False}
    api_key = secret_box().decrypt(row.api_key_encrypted, user_id=row.user_id, field=ZAPIER_API_KEY_FIELD)
    return {"connected": True, "apiKey": api_key, "webhookUrl": zapier_webhook_url(row.user_id),
            "createdAt": row.created_at}


def get_status(user_id: uuid.UUID) -> dict[str, Any]:
    """Status of both providers; creates the user's row the first time it is seen."""
    # One round trip: the user joined to their integrations (at most two rows).
    rows = db.session.execute(
        select(User.id, Integration)
        .outerjoin(Integration, and_(Integration.user_id == User.id))
        .where(User.id == user_id)
    ).all()
    if not rows:
        ensure_user(user_id)
        db.session.commit()
    by_provider = {row.Integration.provider: row.Integration for row in rows if row.Integration is not None}
    return {
        "googleCalendar": google_status(by_provider.get(GOOGLE_CALENDAR)),
        "zapier": zapier_status(by_provider.get(ZAPIER)),
    }
