"""Connecting, disconnecting and configuring a user's Microsoft 365 / Outlook calendar.

Services only flush: the views commit (the callback too). What is built: the connection (OAuth,
tokens, status), busy times for availability (`busy.py`), pushing appointments to Outlook (`sync.py`,
on the shared engine) and Microsoft's half of two-way sync (`two_way.py`: the subscription,
notifications and the delta; the engine's `calendar_sync.apply` applies Outlook's changes).
"""

from __future__ import annotations

import logging
import uuid

from authlib.integrations.base_client.errors import OAuthError
from sqlalchemy import select

from ..availability import busy as availability_busy
from ..errors import ApiError, Conflict, NotFound, ValidationFailed
from ..extensions import db
from ..integrations import oauth_flow
from ..integrations.models import CONNECTED, MICROSOFT_CALENDAR, ONE_WAY, SYNC_MODES, TWO_WAY, Integration
from ..users.service import ensure_user
from . import oauth, sync, two_way
from .busy import PROVIDER as BUSY_PROVIDER
from .tokens import store_tokens

log = logging.getLogger(__name__)

AUTH_FAILED = "microsoft_auth_failed"


class OAuthInitFailed(ApiError):
    status = 500
    code = "MICROSOFT_OAUTH_UNAVAILABLE"
    message = "Failed to initiate Microsoft OAuth"


class NotConnected(NotFound):
    code = "INTEGRATION_NOT_FOUND"
    message = "Microsoft Calendar not connected"

    def __init__(self):
        super().__init__(details="Please connect Microsoft Calendar first")


def _integration(user_id: uuid.UUID, *, for_update: bool = False) -> Integration | None:
    statement = select(Integration).where(Integration.user_id == user_id, Integration.provider == MICROSOFT_CALENDAR)
    return db.session.scalars(statement.with_for_update() if for_update else statement).one_or_none()


def connect(user_id: uuid.UUID) -> tuple[str, str]:
    """(consent URL, browser binder); 409 while a healthy connection exists (a lapsed one may reconnect).
    The binder goes to the browser as an HttpOnly cookie; only its hash is kept with the state."""
    existing = _integration(user_id)
    if existing is not None and existing.status == CONNECTED:
        raise Conflict("Microsoft Calendar is already connected", code="ALREADY_CONNECTED")
    binder = oauth_flow.new_binder()
    try:
        return oauth.authorization_url(user_id, binder), binder
    except Exception:
        log.exception("could not build the Microsoft authorization URL")
        raise OAuthInitFailed() from None


def complete_authorization(state: str | None, code: str | None, error: str | None, binder: str | None) -> str:
    """Finish the OAuth dance; returns where to send the browser. Never raises for bad input."""
    saved, refused = oauth_flow.check_callback(oauth.PROVIDER, AUTH_FAILED, state, code, error, binder, log)
    if saved is None:
        return refused
    user_id = uuid.UUID(saved["user_id"])
    try:
        token = oauth.exchange_code(code, saved["code_verifier"])
        if oauth.CALENDAR_SCOPE.lower() not in (token.get("scope") or "").lower().split():
            return oauth_flow.frontend(error="missing_scope")  # nothing stored: the grant is of no use
        if not token.get("refresh_token"):  # offline_access refused: the connection would lapse in an hour
            return oauth_flow.frontend(error="missing_scope")
        email = oauth.fetch_email(token["access_token"])
    except (OAuthError, oauth.MicrosoftUnavailable, LookupError, ValueError, OSError) as exc:
        # Never the code or a token in the log: only what kind of failure it was.
        log.warning("Microsoft authorization failed", extra={"error": type(exc).__name__})
        return oauth_flow.frontend(error=AUTH_FAILED)
    _store_connection(user_id, email, token)
    return oauth_flow.frontend(success="true")


def _store_connection(user_id: uuid.UUID, email: str, token: dict) -> None:
    ensure_user(user_id)
    row = _integration(user_id, for_update=True)
    if row is None:
        row = Integration(id=uuid.uuid4(), user_id=user_id, provider=MICROSOFT_CALENDAR, sync_mode=ONE_WAY)
        db.session.add(row)
    if row.email != email:
        row.calendar_id = None  # another Microsoft account: its default calendar
    if row.channel_id or row.sync_token:  # reconnecting after a lapse: the old subscription goes
        two_way.stop(row)
    row.status, row.email = CONNECTED, email
    row.sync_mode = row.sync_mode or ONE_WAY
    store_tokens(row, token)
    if row.sync_mode == TWO_WAY:  # as for Google: a (re)connect in two-way takes a fresh baseline
        two_way.request_start(row)
    db.session.flush()
    sync.request_backfill(user_id)  # the next days' appointments, and whatever waited, go to Outlook


def disconnect(user_id: uuid.UUID) -> None:
    """Forget the connection and its tokens, and the busy copy of its calendars. (Microsoft has no
    endpoint for an app to revoke a user's refresh token: the user removes the app's consent at
    myapps.microsoft.com or account.live.com/consent/Manage.)"""
    row = _integration(user_id, for_update=True)
    if row is None:
        raise NotConnected()
    two_way.stop(row, disconnecting=True)  # the subscription is deleted at Graph by a job
    availability_busy.forget(user_id, BUSY_PROVIDER)
    sync.stop_syncing(user_id)
    db.session.delete(row)
    db.session.flush()


def update_sync_mode(user_id: uuid.UUID, sync_mode: str) -> str:
    if sync_mode not in SYNC_MODES:
        raise ValidationFailed("Invalid sync mode. Must be 'one-way' or 'two-way'",
                               details={"syncMode": ["Must be one of: one-way, two-way."]})
    row = _integration(user_id, for_update=True)
    if row is None or row.status != CONNECTED:
        raise NotConnected()
    old = row.sync_mode or ONE_WAY
    if sync_mode != old:
        row.sync_mode = sync_mode
        if sync_mode == TWO_WAY:
            two_way.request_start(row)  # a baseline, then a subscription, once the caller commits
        else:
            two_way.stop(row)
        db.session.flush()
    return row.sync_mode
