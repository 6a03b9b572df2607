"""Google tokens: stored encrypted, refreshed shortly before expiry under a per-integration lock
(`integrations.tokens.TokenStore`, which says how the store keeps its own books)."""

from __future__ import annotations

from ..integrations.models import GOOGLE_CALENDAR
from ..integrations.service import GOOGLE_ACCESS_TOKEN_FIELD as ACCESS_FIELD
from ..integrations.service import GOOGLE_REFRESH_TOKEN_FIELD as REFRESH_FIELD
from ..integrations.tokens import LOCK_TIMEOUT_SECONDS, REFRESH_MARGIN, ReauthorizationRequired, TokenStore
from . import oauth

__all__ = ["ACCESS_FIELD", "LOCK_TIMEOUT_SECONDS", "REFRESH_FIELD", "REFRESH_MARGIN", "ReauthorizationRequired",
           "access_token", "decrypt", "store_tokens", "token_columns"]

STORE = TokenStore(provider=GOOGLE_CALENDAR, label="google", access_field=ACCESS_FIELD, refresh_field=REFRESH_FIELD,
                   refresh=lambda refresh_token: oauth.refresh(refresh_token), unavailable=oauth.GoogleUnavailable)

token_columns = STORE.token_columns
store_tokens = STORE.store_tokens
decrypt = STORE.decrypt
access_token = STORE.access_token
