"""Talking OAuth to Google (or the sandbox) with Authlib: authorization URL, state, code, refresh, revoke."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from flask import current_app

from ..integrations import oauth_flow
from ..integrations.oauth_flow import STATE_TTL_SECONDS  # noqa: F401 - part of this module's surface

CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar.events"
# To list the owner's calendars (choosing which count as busy); a connection may predate it.
CALENDAR_LIST_SCOPE = "https://www.googleapis.com/auth/calendar.calendarlist.readonly"
# Any of these lets calendarList.list answer (Google's reference for the method).
LISTING_SCOPES = frozenset({CALENDAR_LIST_SCOPE, "https://www.googleapis.com/auth/calendar.calendarlist",
                            "https://www.googleapis.com/auth/calendar.readonly",
                            "https://www.googleapis.com/auth/calendar"})
SCOPES = f"openid email {CALENDAR_SCOPE} {CALENDAR_LIST_SCOPE}"
PROVIDER = "google"
HTTP_TIMEOUT = 10
CALLBACK_PATH = "/integrations/google/callback"
# The browser binder: an HttpOnly cookie set by connect, whose hash travels with the state.
BINDER_COOKIE = "callnfy_google_oauth"


class GoogleUnavailable(Exception):
    """Google cannot be asked right now (not configured, network, 5xx): worth retrying later."""


def may_list_calendars(granted: str | None) -> bool:
    """Whether a grant's scopes (as recorded; None: not known) let it list the owner's calendars."""
    return bool(LISTING_SCOPES & set((granted or "").split()))


def redirect_uri() -> str:
    return f"{current_app.config['PUBLIC_API_URL']}{CALLBACK_PATH}"


def client(**kwargs: Any) -> OAuth2Session:
    config = current_app.config
    if not config["GOOGLE_CLIENT_ID"] or not config["GOOGLE_CLIENT_SECRET"]:
        raise GoogleUnavailable("GOOGLE_CLIENT_ID / GOOGLE_CLIENT_SECRET are not configured")
    session = OAuth2Session(config["GOOGLE_CLIENT_ID"], config["GOOGLE_CLIENT_SECRET"], scope=SCOPES,
                            redirect_uri=redirect_uri(), code_challenge_method="S256", **kwargs)
    session.trust_env = False
    return session


def authorization_url(user_id: uuid.UUID, binder: str) -> str:
    """A consent URL with PKCE S256; its state (user, verifier, the browser binder's hash) is kept in
    Redis for 10 minutes, single use."""
    state, verifier = secrets.token_urlsafe(32), generate_token(64)
    url, _ = client().create_authorization_url(
        current_app.config["GOOGLE_AUTHORIZE_URL"], state=state, code_verifier=verifier,
        access_type="offline", prompt="consent", include_granted_scopes="true")
    oauth_flow.save_state(PROVIDER, state, user_id, verifier, binder)
    return url


def exchange_code(code: str, verifier: str) -> dict:
    return dict(client().fetch_token(current_app.config["GOOGLE_TOKEN_URL"], code=code, code_verifier=verifier,
                                     timeout=HTTP_TIMEOUT))


def refresh(refresh_token: str) -> dict:
    """A new access token; OAuthError when Google refuses (e.g. `invalid_grant`), GoogleUnavailable
    when it cannot answer (network, a non-JSON 5xx)."""
    try:
        return dict(client().refresh_token(current_app.config["GOOGLE_TOKEN_URL"], refresh_token=refresh_token,
                                           timeout=HTTP_TIMEOUT))
    except requests.RequestException as exc:
        raise GoogleUnavailable(f"refresh failed: {type(exc).__name__}") from None
    except ValueError:
        raise GoogleUnavailable("refresh failed: unreadable answer") from None


def fetch_email(access_token: str) -> str:
    response = requests.get(current_app.config["GOOGLE_USERINFO_URL"], timeout=HTTP_TIMEOUT,
                            headers={"Authorization": f"Bearer {access_token}"})
    response.raise_for_status()
    return response.json()["email"]


def revoke(token: str) -> None:
    """Revoke at Google; an already-invalid token counts as done, network errors and 5xx are raised."""
    try:
        response = requests.post(current_app.config["GOOGLE_REVOKE_URL"], data={"token": token},
                                 timeout=HTTP_TIMEOUT)
    except requests.RequestException as exc:
        raise GoogleUnavailable(f"revoke failed: {type(exc).__name__}") from None
    if response.status_code >= 500:
        raise GoogleUnavailable(f"revoke failed: HTTP {response.status_code}")
