"""OAuth tokens of a calendar connection: stored encrypted, refreshed shortly before expiry under a
per-integration Redis lock. One `TokenStore` per provider (Google, Microsoft).

The token store keeps its own books: it reads and writes the integration's token columns on its own
connections, never through the caller's session. A refresh is a fact at the provider the moment it
happens (a rotated refresh token replaces the old one there — Microsoft rotates it on every refresh),
so it is committed at once, under the lock, whatever becomes of the caller's transaction, and the
caller's unit of work is neither committed nor rolled back behind its back. Callers must therefore not
hold a row lock on the integration while asking for a token (the write below would wait for it).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from authlib.integrations.base_client.errors import OAuthError
from sqlalchemy import bindparam, select, update

from ..crypto import secret_box
from ..extensions import AUTOCOMMIT_BIND, db
from ..queues import redis_connection
from ..timestamps import utcnow
from .models import CONNECTED, REAUTHORIZATION_REQUIRED, Integration

log = logging.getLogger(__name__)

REFRESH_MARGIN = timedelta(minutes=5)
LOCK_TIMEOUT_SECONDS = 30

_integrations = Integration.__table__


class ReauthorizationRequired(Exception):
    """The provider refused the refresh token (revoked, expired): the user must connect again."""


@dataclass(frozen=True)
class TokenStore:
    provider: str  # the integrations row's provider
    label: str  # for logs and lock names: "google", "microsoft"
    access_field: str  # the field names bound into each ciphertext
    refresh_field: str
    refresh: Callable[[str], dict]  # the provider's refresh; OAuthError when it refuses
    unavailable: type[Exception]  # raised when the provider cannot answer now

    def token_columns(self, user_id: uuid.UUID, token: dict) -> dict[str, Any]:
        """Column values for what the provider returned; a refresh token is replaced only when a new one came."""
        box = secret_box()
        values: dict[str, Any] = {
            "access_token_encrypted": box.encrypt(token["access_token"], user_id=user_id, field=self.access_field),
            "token_expires_at": utcnow() + timedelta(seconds=int(token.get("expires_in", 3600))),
        }
        if token.get("refresh_token"):
            values["refresh_token_encrypted"] = box.encrypt(token["refresh_token"], user_id=user_id,
                                                            field=self.refresh_field)
        if token.get("scope"):
            values["scopes"] = token["scope"]
        return values

    def store_tokens(self, row: Integration, token: dict) -> None:
        """Set the encrypted tokens on a row of the caller's session (the caller commits)."""
        for column, value in self.token_columns(row.user_id, token).items():
            setattr(row, column, value)

    def decrypt(self, row: Any, field: str) -> str | None:
        blob = row.access_token_encrypted if field == self.access_field else row.refresh_token_encrypted
        return None if blob is None else secret_box().decrypt(blob, user_id=row.user_id, field=field)

    def _read(self, integration_id: uuid.UUID) -> Any:
        query = select(_integrations.c.user_id, _integrations.c.status, _integrations.c.access_token_encrypted,
                       _integrations.c.refresh_token_encrypted, _integrations.c.token_expires_at).where(
            _integrations.c.id == bindparam("integration_id"), _integrations.c.provider == self.provider)
        with db.engines[AUTOCOMMIT_BIND].connect() as conn:
            row = conn.execute(query, {"integration_id": integration_id}).one_or_none()
        if row is None:
            raise LookupError(f"no {self.label} integration {integration_id}")
        if row.status != CONNECTED:
            raise ReauthorizationRequired(str(integration_id))
        return row

    @staticmethod
    def _write(integration_id: uuid.UUID, values: dict[str, Any]) -> None:
        with db.engine.begin() as conn:  # its own transaction: see the module docstring
            conn.execute(update(_integrations).where(_integrations.c.id == integration_id).values(**values))

    def _fresh(self, row: Any, rejected: str | None) -> str | None:
        """The stored access token when it is good for 5 more minutes and is not the one just `rejected`."""
        if row.access_token_encrypted is None or row.token_expires_at is None or \
                row.token_expires_at - utcnow() <= REFRESH_MARGIN:
            return None
        current = self.decrypt(row, self.access_field)
        return current if rejected is None or current != rejected else None

    def access_token(self, integration_id: uuid.UUID, *, rejected: str | None = None) -> str:
        """A usable access token, refreshed first when it expires within 5 minutes or when the provider
        just `rejected` it (a 401); raises ReauthorizationRequired once the provider has refused the grant."""
        current = self._fresh(self._read(integration_id), rejected)
        if current is not None:
            return current
        # One refresher per integration across every process; the others wait, then reuse its token.
        with redis_connection().lock(f"callnfy:lock:{self.label}-refresh:{integration_id}",
                                     timeout=LOCK_TIMEOUT_SECONDS, blocking_timeout=LOCK_TIMEOUT_SECONDS):
            row = self._read(integration_id)  # re-read: another process may have refreshed meanwhile
            current = self._fresh(row, rejected)
            if current is not None:
                return current
            try:
                token = self.refresh(self.decrypt(row, self.refresh_field) or "")
            except OAuthError as exc:
                if exc.error == "invalid_grant":
                    self._write(integration_id, {"status": REAUTHORIZATION_REQUIRED})
                    log.warning("the provider refused the refresh token; reauthorization required",
                                extra={"integration_id": str(integration_id), "provider": self.label})
                    raise ReauthorizationRequired(str(integration_id)) from None
                raise self.unavailable(f"refresh failed: {exc.error}") from None
            # The new refresh token (rotated) is stored before the lock is let go: the next refresher
            # reads it, never the one the provider just retired.
            self._write(integration_id, self.token_columns(row.user_id, token))
            return token["access_token"]
