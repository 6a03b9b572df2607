"""Google tokens: stored encrypted, refreshed shortly before expiry under a per-integration lock.

The token store keeps its own books: it reads and writes the integration's token columns on its own
connections, never through the caller's session. A refresh is a fact at Google the moment it happens
(a rotated refresh token replaces the old one there), so it is committed at once whatever becomes
of the caller's transaction, and the caller's unit of work is neither committed nor rolled back
behind its back. Callers must therefore not hold a row lock on the integration while asking for a
token (the write below would wait for it).
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from authlib.integrations.base_client.errors import OAuthError
from sqlalchemy import bindparam, select, update

from ..crypto import secret_box
from ..extensions import AUTOCOMMIT_BIND, db
from ..integrations.models import CONNECTED, GOOGLE_CALENDAR, REAUTHORIZATION_REQUIRED, Integration
from ..integrations.service import GOOGLE_ACCESS_TOKEN_FIELD as ACCESS_FIELD
from ..integrations.service import GOOGLE_REFRESH_TOKEN_FIELD as REFRESH_FIELD
from ..queues import redis_connection
from ..timestamps import utcnow
from . import oauth

log = logging.getLogger(__name__)

REFRESH_MARGIN = timedelta(minutes=5)
LOCK_TIMEOUT_SECONDS = 30

_integrations = Integration.__table__
_READ = select(_integrations.c.user_id, _integrations.c.status, _integrations.c.access_token_encrypted,
               _integrations.c.refresh_token_encrypted, _integrations.c.token_expires_at).where(
    _integrations.c.id == bindparam("integration_id"), _integrations.c.provider == GOOGLE_CALENDAR)


class ReauthorizationRequired(Exception):
    """Google refused the refresh token (revoked, expired): the user must connect again."""


def token_columns(user_id: uuid.UUID, token: dict) -> dict[str, Any]:
    """Column values for what Google returned; a refresh token is replaced only when a new one came."""
    box = secret_box()
    values: dict[str, Any] = {
        "access_token_encrypted": box.encrypt(token["access_token"], user_id=user_id, field=ACCESS_FIELD),
        "token_expires_at": utcnow() + timedelta(seconds=int(token.get("expires_in", 3600))),
    }
    if token.get("refresh_token"):
        values["refresh_token_encrypted"] = box.encrypt(token["refresh_token"], user_id=user_id, field=REFRESH_FIELD)
    if token.get("scope"):
        values["scopes"] = token["scope"]
    return values


def store_tokens(row: Integration, token: dict) -> None:
    """Set the encrypted tokens on a row of the caller's session (the caller commits)."""
    for column, value in token_columns(row.user_id, token).items():
        setattr(row, column, value)


def decrypt(row: Any, field: str) -> str | None:
    blob = row.access_token_encrypted if field == ACCESS_FIELD else row.refresh_token_encrypted
    return None if blob is None else secret_box().decrypt(blob, user_id=row.user_id, field=field)


def _needs_refresh(row: Any, now: datetime) -> bool:
    return row.access_token_encrypted is None or row.token_expires_at is None or \
        row.token_expires_at - now <= REFRESH_MARGIN


def _read(integration_id: uuid.UUID) -> Any:
    with db.engines[AUTOCOMMIT_BIND].connect() as conn:
        row = conn.execute(_READ, {"integration_id": integration_id}).one_or_none()
    if row is None:
        raise LookupError(f"no Google integration {integration_id}")
    if row.status != CONNECTED:
        raise ReauthorizationRequired(str(integration_id))
    return row


def _write(integration_id: uuid.UUID, values: dict[str, Any]) -> None:
    with db.engine.begin() as conn:  # its own transaction: see the module docstring
        conn.execute(update(_integrations).where(_integrations.c.id == integration_id).values(**values))


def access_token(integration_id: uuid.UUID, *, rejected: str | None = None) -> str:
    """A usable access token, refreshed first when it expires within 5 minutes or when Google just
    `rejected` it (a 401); raises ReauthorizationRequired once Google has refused the grant."""
    row = _read(integration_id)
    if not _needs_refresh(row, utcnow()) and (rejected is None or decrypt(row, ACCESS_FIELD) != rejected):
        return decrypt(row, ACCESS_FIELD)
    # One refresher per integration across every process; the others wait, then reuse its token.
    with redis_connection().lock(f"callnfy:lock:google-refresh:{integration_id}", timeout=LOCK_TIMEOUT_SECONDS,
                                 blocking_timeout=LOCK_TIMEOUT_SECONDS):
        row = _read(integration_id)  # re-read: another process may have refreshed meanwhile
        current = decrypt(row, ACCESS_FIELD)
        if not _needs_refresh(row, utcnow()) and (rejected is None or current != rejected):
            return current
        try:
            token = oauth.refresh(decrypt(row, REFRESH_FIELD) or "")
        except OAuthError as exc:
            if exc.error == "invalid_grant":
                _write(integration_id, {"status": REAUTHORIZATION_REQUIRED})
                log.warning("Google refused the refresh token; reauthorization required",
                            extra={"integration_id": str(integration_id)})
                raise ReauthorizationRequired(str(integration_id)) from None
            raise oauth.GoogleUnavailable(f"refresh failed: {exc.error}") from None
        _write(integration_id, token_columns(row.user_id, token))
        return token["access_token"]
