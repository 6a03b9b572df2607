"""The combined integration status of a user, read in one round trip."""

from __future__ import annotations

import uuid
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, select

from ..crypto import secret_box
from ..extensions import AUTOCOMMIT_BIND, db
from ..users.service import CREATE_USER
from .models import CONNECTED, GOOGLE_CALENDAR, MICROSOFT_CALENDAR, ZAPIER, Integration

ZAPIER_API_KEY_FIELD = "zapier.api_key"

_integrations = Integration.__table__
# Built once, table columns only, so SQLAlchemy neither re-derives the cache key shape nor adapts
# ORM annotations per request. One table, one index: PostgreSQL plans it far cheaper than a join.
_STATUS_QUERY = (
    select(_integrations.c.provider, _integrations.c.status, _integrations.c.email, _integrations.c.sync_mode,
           _integrations.c.last_sync_at, _integrations.c.sync_error, _integrations.c.api_key_encrypted,
           _integrations.c.created_at)
    .where(_integrations.c.user_id == bindparam("user_id"))
)


GOOGLE_ACCESS_TOKEN_FIELD = "google.access_token"
GOOGLE_REFRESH_TOKEN_FIELD = "google.refresh_token"
MICROSOFT_ACCESS_TOKEN_FIELD = "microsoft.access_token"
MICROSOFT_REFRESH_TOKEN_FIELD = "microsoft.refresh_token"
ENCRYPTED_FIELDS = {  # column -> the field name bound into its ciphertext
    "api_key_encrypted": ZAPIER_API_KEY_FIELD,
    "access_token_encrypted": GOOGLE_ACCESS_TOKEN_FIELD,
    "refresh_token_encrypted": GOOGLE_REFRESH_TOKEN_FIELD,
}
# A provider's own field names, where they differ from the above.
PROVIDER_FIELDS = {MICROSOFT_CALENDAR: {"access_token_encrypted": MICROSOFT_ACCESS_TOKEN_FIELD,
                                        "refresh_token_encrypted": MICROSOFT_REFRESH_TOKEN_FIELD}}


def encrypted_fields(provider: str) -> dict[str, str]:
    """Each encrypted column of a row of this provider -> the field name bound into its ciphertext."""
    return {**ENCRYPTED_FIELDS, **PROVIDER_FIELDS.get(provider, {})}


def rotate_encryption() -> int:
    """Re-encrypt every stored secret with the first key of ENCRYPTION_KEYS; returns how many changed."""
    box = secret_box()
    rotated = 0
    for row in db.session.scalars(select(Integration).with_for_update()):
        for column, field in encrypted_fields(row.provider).items():
            blob = getattr(row, column)
            if blob is not None and not box.is_current(blob):
                plaintext = box.decrypt(blob, user_id=row.user_id, field=field)
                setattr(row, column, box.encrypt(plaintext, user_id=row.user_id, field=field))
                rotated += 1
    db.session.flush()
    return rotated


def old_key_secrets() -> int:
    """How many stored secrets the first key of ENCRYPTION_KEYS did not encrypt."""
    box = secret_box()
    return sum(1 for row in db.session.scalars(select(Integration)) for column in ENCRYPTED_FIELDS
               if getattr(row, column) is not None and not box.is_current(getattr(row, column)))


def zapier_webhook_url(user_id: uuid.UUID) -> str:
    return f"{current_app.config['PUBLIC_API_URL']}/webhooks/zapier/{user_id}"


def calendar_status(row: Any) -> dict[str, Any]:
    """`row` is an Integration or a status-query row of a calendar provider (Google, Microsoft)."""
    if row is None:
        return {"connected": False}
    if row.status != CONNECTED:
        return {"connected": False, "reauthorizationRequired": True, "email": row.email}
    return {"connected": True, "email": row.email, "syncMode": row.sync_mode, "lastSyncAt": row.last_sync_at,
            "syncError": row.sync_error}


def zapier_status(row: Any, user_id: uuid.UUID) -> dict[str, Any]:
    """`row` is an Integration or a status-query row of the zapier provider."""
    if row is None or row.api_key_encrypted is None:
        return {"connected": False}
    api_key = secret_box().decrypt(row.api_key_encrypted, user_id=user_id, field=ZAPIER_API_KEY_FIELD)
    return {"connected": True, "apiKey": api_key, "webhookUrl": zapier_webhook_url(user_id),
            "createdAt": row.created_at}


def get_status(user_id: uuid.UUID) -> dict[str, Any]:
    """Status of every provider; creates the user's row the first time it is seen."""
    # Autocommit: a lone SELECT needs no BEGIN/ROLLBACK round trips around it. A user with an
    # integration has a row already (foreign key); only one without may be new: ensure it then.
    with db.engines[AUTOCOMMIT_BIND].connect() as conn:
        rows = conn.execute(_STATUS_QUERY, {"user_id": user_id}).all()
        if not rows:
            conn.execute(CREATE_USER, {"user_id": user_id})
    by_provider = {row.provider: row for row in rows}
    return {
        "googleCalendar": calendar_status(by_provider.get(GOOGLE_CALENDAR)),
        "microsoftCalendar": calendar_status(by_provider.get(MICROSOFT_CALENDAR)),
        "zapier": zapier_status(by_provider.get(ZAPIER), user_id),
    }
