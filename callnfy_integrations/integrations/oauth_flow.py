"""What every calendar provider's OAuth connect shares: the single-use state in Redis with the PKCE
verifier and the hash of a browser binder, the binder cookie, and the checks the callback makes
before it exchanges anything.

The binder is an HttpOnly cookie set by connect (SameSite=Lax, `Secure` when PUBLIC_API_URL is https,
path = the provider's callback): a callback whose browser does not hold it is refused, so nobody can
link their own account to someone else's calendar (or the reverse).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from urllib.parse import urlencode

from flask import current_app

from ..queues import redis_connection

STATE_TTL_SECONDS = 600
MAX_STATE_LENGTH = 200
MAX_CODE_LENGTH = 2048


def _state_key(provider: str, state: str) -> str:
    return f"callnfy:{provider}:oauth-state:{state}"


def new_binder() -> str:
    return secrets.token_urlsafe(32)


def _binder_hash(binder: str) -> str:
    return hashlib.sha256(binder.encode()).hexdigest()


def binder_matches(saved: dict, binder: str | None) -> bool:
    """Whether the browser delivering the callback holds the binder of the browser that started it."""
    expected = saved.get("binder_hash")
    return bool(binder and expected) and hmac.compare_digest(expected, _binder_hash(binder))


def save_state(provider: str, state: str, user_id: uuid.UUID, verifier: str, binder: str) -> None:
    """Keep the state's user, PKCE verifier and binder hash for 10 minutes, for one callback."""
    redis_connection().set(_state_key(provider, state), json.dumps(
        {"user_id": str(user_id), "code_verifier": verifier, "binder_hash": _binder_hash(binder)}),
        ex=STATE_TTL_SECONDS)


def pop_state(provider: str, state: str | None) -> dict | None:
    """The state's user and verifier, at most once; None when unknown, expired or already used."""
    if not state or len(state) > MAX_STATE_LENGTH:
        return None
    raw = redis_connection().getdel(_state_key(provider, state))
    return json.loads(raw) if raw else None


def frontend(**params: str) -> str:
    """Where the callback sends the browser: the app's integrations settings, with the outcome."""
    return f"{current_app.config['FRONTEND_URL']}/settings/integrations?{urlencode(params)}"


def cookie_options(callback_path: str) -> dict:
    # Lax: sent on the provider's top-level redirect back to the callback, never on cross-site subrequests.
    return {"path": callback_path, "httponly": True, "samesite": "Lax",
            "secure": current_app.config["PUBLIC_API_URL"].startswith("https://")}


def set_binder_cookie(response, cookie: str, binder: str, callback_path: str):
    response.set_cookie(cookie, binder, max_age=STATE_TTL_SECONDS, **cookie_options(callback_path))
    response.headers["Cache-Control"] = "no-store"
    return response


def clear_binder_cookie(response, cookie: str, callback_path: str):
    response.delete_cookie(cookie, **cookie_options(callback_path))
    return response


def check_callback(provider: str, failed: str, state: str | None, code: str | None, error: str | None,
                   binder: str | None, log) -> tuple[dict | None, str | None]:
    """(the saved state, None) when the callback may exchange its code; else (None, where to send the
    browser): `failed` (e.g. google_auth_failed) for a bad, expired or replayed state, another browser
    or a missing code, `access_denied` when the user declined. The state is consumed in every case."""
    saved = pop_state(provider, state)  # consumed even when the provider reports an error: single use
    if saved is None:
        return None, frontend(error=failed)
    if not binder_matches(saved, binder):
        # Another browser than the one that pressed Connect: linking here would let someone attach
        # their own account to the victim's calendar (or the reverse). Nothing is exchanged or stored.
        log.warning("OAuth callback from a browser that did not start it", extra={"provider": provider})
        return None, frontend(error=failed)
    if error:
        return None, frontend(error="access_denied" if error == "access_denied" else failed)
    if not code or len(code) > MAX_CODE_LENGTH:
        return None, frontend(error=failed)
    return saved, None
