"""Google jobs: revoke access and stop the watch channel after a disconnect (retried)."""

from __future__ import annotations

import uuid

from authlib.integrations.base_client.errors import OAuthError

from callnfy_integrations.crypto import secret_box
from callnfy_integrations.google import oauth
from callnfy_integrations.google.tokens import ACCESS_FIELD, REFRESH_FIELD


def revoke_google_access(user_id: str, refresh_token_hex: str | None, access_token_hex: str | None,
                         channel_id: str | None = None, resource_id: str | None = None) -> None:
    """Stop the channel (it needs a live access token), then revoke the grant. Safe to run twice."""
    box, owner = secret_box(), uuid.UUID(user_id)
    refresh_token = refresh_token_hex and box.decrypt(bytes.fromhex(refresh_token_hex), user_id=owner,
                                                      field=REFRESH_FIELD)
    access_token = access_token_hex and box.decrypt(bytes.fromhex(access_token_hex), user_id=owner,
                                                    field=ACCESS_FIELD)
    if channel_id and resource_id:
        if refresh_token:
            try:  # the stored access token may have expired
                access_token = oauth.refresh(refresh_token)["access_token"]
            except OAuthError:
                pass  # already revoked: the channel dies with the grant
        if access_token:
            oauth.stop_channel(access_token, channel_id, resource_id)
    token = refresh_token or access_token
    if token:
        oauth.revoke(token)
