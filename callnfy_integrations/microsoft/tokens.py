"""Microsoft tokens: stored encrypted, refreshed shortly before expiry under a per-integration lock
(`integrations.tokens.TokenStore`). Microsoft rotates the refresh token on every refresh: the store
writes each new one before it lets go of the lock. `invalid_grant` marks the connection as needing
reauthorization (`reauthorizationRequired` in status)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TypeVar

from ..integrations.models import MICROSOFT_CALENDAR
from ..integrations.service import MICROSOFT_ACCESS_TOKEN_FIELD as ACCESS_FIELD
from ..integrations.service import MICROSOFT_REFRESH_TOKEN_FIELD as REFRESH_FIELD
from ..integrations.tokens import ReauthorizationRequired, TokenStore
from . import oauth
from .graph_api import Unauthorized

__all__ = ["ACCESS_FIELD", "REFRESH_FIELD", "ReauthorizationRequired", "access_token", "call", "decrypt",
           "store_tokens"]

STORE = TokenStore(provider=MICROSOFT_CALENDAR, label="microsoft", access_field=ACCESS_FIELD,
                   refresh_field=REFRESH_FIELD, refresh=lambda refresh_token: oauth.refresh(refresh_token),
                   unavailable=oauth.MicrosoftUnavailable)

store_tokens = STORE.store_tokens
decrypt = STORE.decrypt
access_token = STORE.access_token

T = TypeVar("T")


def call(integration_id: uuid.UUID, request: Callable[[str], T]) -> T:
    """`request(access_token)`; a 401 refreshes the token once and asks again."""
    token = access_token(integration_id)
    try:
        return request(token)
    except Unauthorized:
        return request(access_token(integration_id, rejected=token))
