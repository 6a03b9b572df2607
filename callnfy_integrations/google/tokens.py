"""Google tokens: stored encrypted, refreshed shortly before expiry under a per-integration lock."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from authlib.integrations.base_client.errors import OAuthError
from sqlalchemy import select

from ..crypto import secret_box
from ..extensions import db
from ..integrations.models import CONNECTED, GOOGLE_CALENDAR, REAUTHORIZATION_REQUIRED, Integration
from ..integrations.service import GOOGLE_ACCESS_TOKEN_FIELD as ACCESS_FIELD
from ..integrations.service import GOOGLE_REFRESH_TOKEN_FIELD as REFRESH_FIELD
from ..queues import redis_connection
from ..timestamps import utcnow
from . import oauth

log = logging.getLogger(__name__)

REFRESH_MARGIN = timedelta(minutes=5)
LOCK_TIMEOUT_SECONDS = 30


class ReauthorizationRequired(Exception):
    """Google refused the refresh token (revoked, expired): the user must connect again."""


def store_tokens(row: Integration, token: dict) -> None:
    """Encrypt and keep what Google returned; a refresh token is replaced only when a new one came."""
    box = secret_box()
    row.access_token_encrypted = box.encrypt(token["access_token"], user_id=row.user_id, field=ACCESS_FIELD)
    if token.get("refresh_token"):
        row.refresh_token_encrypted = box.encrypt(token["refresh_token"], user_id=row.user_id, field=REFRESH_FIELD)
    row.token_expires_at = utcnow() + timedelta(seconds=int(token.get("expires_in", 3600)))
    if token.get("scope"):
        row.scopes = token["scope"]


def decrypt(row: Integration, field: str) -> str | None:
    blob = row.access_token_encrypted if field == ACCESS_FIELD else row.refresh_token_encrypted
    return None if blob is None else secret_box().decrypt(blob, user_id=row.user_id, field=field)


def _needs_refresh(row: Integration, now: datetime) -> bool:
    return row.access_token_encrypted is None or row.token_expires_at is None or \
        row.token_expires_at - now <= REFRESH_MARGIN


def _load(integration_id: uuid.UUID) -> Integration:
    row = db.session.scalars(select(Integration).where(Integration.id == integration_id,
                                                       Integration.provider == GOOGLE_CALENDAR)
                             .execution_options(populate_existing=True)).one_or_none()
    if row is None:
        raise LookupError(f"no Google integration {integration_id}")
    if row.status != CONNECTED:
        raise ReauthorizationRequired(str(integration_id))
    return row


def access_token(integration_id: uuid.UUID) -> str:
    """A usable access token for the integration, refreshed first when it expires within 5 minutes."""
    row = _load(integration_id)
    if not _needs_refresh(row, utcnow()):
        return decrypt(row, ACCESS_FIELD)
    db.session.rollback()
    # One refresher per integration across every process; the others wait, then reuse its token.
    with redis_connection().lock(f"callnfy:lock:google-refresh:{integration_id}", timeout=LOCK_TIMEOUT_SECONDS,
                                 blocking_timeout=LOCK_TIMEOUT_SECONDS):
        row = _load(integration_id)  # re-read: another process may have refreshed meanwhile
        if not _needs_refresh(row, utcnow()):
            token = decrypt(row, ACCESS_FIELD)
            db.session.commit()
            return token
        try:
            token = oauth.refresh(decrypt(row, REFRESH_FIELD) or "")
        except OAuthError as exc:
            if exc.error == "invalid_grant":
                row.status = REAUTHORIZATION_REQUIRED
                db.session.commit()
                log.warning("Google refused the refresh token; reauthorization required",
                            extra={"integration_id": str(integration_id)})
                raise ReauthorizationRequired(str(integration_id)) from None
            raise oauth.GoogleUnavailable(f"refresh failed: {exc.error}") from None
        store_tokens(row, token)
        db.session.commit()
        return token["access_token"]
