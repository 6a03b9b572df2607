"""Talking OAuth to the Microsoft identity platform v2 (or the sandbox) with Authlib: the authorization
URL (PKCE S256, a single-use state and the browser binder, shared with Google through
`integrations.oauth_flow`), the code exchange, the refresh (which rotates the refresh token) and the
account's email from Graph's `/me`."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from flask import current_app

from ..integrations import oauth_flow

PROVIDER = "microsoft"
CALENDAR_SCOPE = "Calendars.ReadWrite"
SCOPES = f"openid email offline_access User.Read {CALENDAR_SCOPE}"
HTTP_TIMEOUT = 10
CALLBACK_PATH = "/integrations/microsoft/callback"
BINDER_COOKIE = "callnfy_microsoft_oauth"


class MicrosoftUnavailable(Exception):
    """Microsoft cannot be asked right now (not configured, network, 5xx): worth retrying later."""


def redirect_uri() -> str:
    return f"{current_app.config['PUBLIC_API_URL']}{CALLBACK_PATH}"


def endpoint(kind: str) -> str:
    """`authorize` or `token` of the configured tenant."""
    config = current_app.config
    return f"{config['MICROSOFT_AUTHORITY_URL']}/{config['MICROSOFT_TENANT']}/oauth2/v2.0/{kind}"


def client(**kwargs: Any) -> OAuth2Session:
    config = current_app.config
    if not config["MICROSOFT_CLIENT_ID"] or not config["MICROSOFT_CLIENT_SECRET"]:
        raise MicrosoftUnavailable("MICROSOFT_CLIENT_ID / MICROSOFT_CLIENT_SECRET are not configured")
    # client_secret_post: the secret in the form, as Microsoft documents it for the token endpoint.
    session = OAuth2Session(config["MICROSOFT_CLIENT_ID"], config["MICROSOFT_CLIENT_SECRET"], scope=SCOPES,
                            redirect_uri=redirect_uri(), code_challenge_method="S256",
                            token_endpoint_auth_method="client_secret_post", **kwargs)
    session.trust_env = False
    return session


def authorization_url(user_id: uuid.UUID, binder: str) -> str:
    """A consent URL with PKCE S256; its state (user, verifier, the browser binder's hash) is kept in
    Redis for 10 minutes, single use."""
    state, verifier = secrets.token_urlsafe(32), generate_token(64)
    url, _ = client().create_authorization_url(endpoint("authorize"), state=state, code_verifier=verifier,
                                               response_mode="query")
    oauth_flow.save_state(PROVIDER, state, user_id, verifier, binder)
    return url


def exchange_code(code: str, verifier: str) -> dict:
    return dict(client().fetch_token(endpoint("token"), code=code, code_verifier=verifier, timeout=HTTP_TIMEOUT))


def refresh(refresh_token: str) -> dict:
    """A new access token and a NEW refresh token (Microsoft rotates it on every refresh); OAuthError
    when Microsoft refuses (e.g. `invalid_grant`), MicrosoftUnavailable when it cannot answer."""
    try:
        return dict(client().refresh_token(endpoint("token"), refresh_token=refresh_token, timeout=HTTP_TIMEOUT))
    except requests.RequestException as exc:
        raise MicrosoftUnavailable(f"refresh failed: {type(exc).__name__}") from None
    except ValueError:
        raise MicrosoftUnavailable("refresh failed: unreadable answer") from None


def fetch_email(access_token: str) -> str:
    """The account's address from Graph's `/me` (User.Read): `mail`, else the sign-in name."""
    response = requests.get(f"{current_app.config['MICROSOFT_GRAPH_URL']}/me", timeout=HTTP_TIMEOUT,
                            headers={"Authorization": f"Bearer {access_token}"})
    response.raise_for_status()
    me = response.json()
    email = me.get("mail") or me.get("userPrincipalName")
    if not email:
        raise LookupError("Graph's /me names no address")
    return email
