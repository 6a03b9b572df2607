"""Connecting, disconnecting and configuring a user's Google Calendar.

Services only flush: the views commit (the callback too), so each step composes with others.
"""

from __future__ import annotations

import logging
import uuid

from authlib.integrations.base_client.errors import OAuthError
from sqlalchemy import select

from ..errors import ApiError, Conflict, NotFound, ValidationFailed
from ..events.outbox import record_event
from ..events.registry import GOOGLE_DISCONNECTED
from ..extensions import db
from ..integrations import oauth_flow
from ..integrations.models import CONNECTED, GOOGLE_CALENDAR, ONE_WAY, SYNC_MODES, TWO_WAY, Integration
from ..queues import CALENDAR, cancel_user_jobs
from ..transactions import after_commit
from ..users.service import ensure_user
from . import oauth, sync
from .revocation import connect_finished, disconnected_payload, note_connect_started
from .sync_mode import sync_mode_changed
from .tokens import store_tokens

log = logging.getLogger(__name__)


class OAuthInitFailed(ApiError):
    status = 500
    code = "GOOGLE_OAUTH_UNAVAILABLE"
    message = "Failed to initiate Google OAuth"


class NotConnected(NotFound):
    """The spec's own example error for a missing Google connection."""

    code = "INTEGRATION_NOT_FOUND"
    message = "Google Calendar not connected"

    def __init__(self):
        super().__init__(details="Please connect Google Calendar first")


def _integration(user_id: uuid.UUID, *, for_update: bool = False) -> Integration | None:
    statement = select(Integration).where(Integration.user_id == user_id, Integration.provider == GOOGLE_CALENDAR)
    return db.session.scalars(statement.with_for_update() if for_update else statement).one_or_none()


def connect(user_id: uuid.UUID) -> tuple[str, str]:
    """(consent URL, browser binder); 409 while a healthy connection exists that may list calendars (a
    lapsed one, or one connected before the calendar-list scope, may connect again).

    The binder goes to the browser as an HttpOnly cookie; only its hash is kept with the state.
    """
    existing = _integration(user_id)
    if existing is not None and existing.status == CONNECTED and oauth.may_list_calendars(existing.scopes):
        raise Conflict("Google Calendar is already connected", code="ALREADY_CONNECTED")
    binder = oauth_flow.new_binder()
    try:
        url = oauth.authorization_url(user_id, binder)
        note_connect_started(user_id)  # a revocation still pending for this user waits for the outcome
        return url, binder
    except Exception:
        log.exception("could not build the Google authorization URL")
        raise OAuthInitFailed() from None


_frontend = oauth_flow.frontend


def complete_authorization(state: str | None, code: str | None, error: str | None, binder: str | None) -> str:
    """Finish the OAuth dance; returns where to send the browser. Never raises for bad input."""
    saved, refused = oauth_flow.check_callback(oauth.PROVIDER, "google_auth_failed", state, code, error, binder, log)
    if saved is None:
        return refused
    user_id = uuid.UUID(saved["user_id"])
    try:
        token = oauth.exchange_code(code, saved["code_verifier"])
        if oauth.CALENDAR_SCOPE not in (token.get("scope") or "").split():
            oauth.revoke(token["access_token"])  # don't keep a grant we cannot use
            return _frontend(error="missing_scope")
        email = oauth.fetch_email(token["access_token"])
    except (OAuthError, oauth.GoogleUnavailable, LookupError, ValueError, OSError) as exc:
        # Never the code or a token in the log: only what kind of failure it was.
        log.warning("Google authorization failed", extra={"error": type(exc).__name__})
        return _frontend(error="google_auth_failed")
    _store_connection(user_id, email, token)
    return _frontend(success="true")


def _store_connection(user_id: uuid.UUID, email: str, token: dict) -> None:
    """Create or update the user's integration for a grant Google just gave."""
    ensure_user(user_id)
    row = _integration(user_id, for_update=True)
    if row is not None and row.status == CONNECTED and row.email == email:
        # The same healthy connection granting more (the calendar list): only its tokens and scopes
        # change; its sync mode, calendar, channels and the availability settings stay as they are.
        store_tokens(row, token)
        db.session.flush()
        after_commit(connect_finished, user_id)
        return
    if row is None:
        row = Integration(id=uuid.uuid4(), user_id=user_id, provider=GOOGLE_CALENDAR, sync_mode=ONE_WAY,
                          calendar_id="primary")
        db.session.add(row)
    if row.email != email:
        row.calendar_time_zone = None  # another Google account: learn its calendar's zone again
    row.status, row.email = CONNECTED, email
    row.sync_mode = row.sync_mode or ONE_WAY
    store_tokens(row, token)
    if row.sync_mode == TWO_WAY:  # a (re)connect in two-way mode takes a fresh baseline and channel
        from .two_way import request_start

        request_start(row)
    db.session.flush()
    sync.request_backfill(user_id)
    after_commit(connect_finished, user_id)  # not before: until the commit, a revocation must still wait


def disconnect(user_id: uuid.UUID) -> None:
    """Forget the connection now; revoking at Google and stopping the channel happen in a retried job,
    requested through the outbox in this same transaction (a Redis outage cannot lose it)."""
    row = _integration(user_id, for_update=True)
    if row is None:
        raise NotConnected()
    after_commit(_cancel_queued_jobs, user_id)  # before the revocation's own dispatch is rung
    record_event(user_id, GOOGLE_DISCONNECTED, disconnected_payload(row))
    sync.stop_syncing(user_id)
    db.session.delete(row)
    db.session.flush()


def _cancel_queued_jobs(user_ids: list[uuid.UUID]) -> None:
    for user_id in user_ids:
        cancel_user_jobs(CALENDAR, user_id)


def update_sync_mode(user_id: uuid.UUID, sync_mode: str) -> str:
    if sync_mode not in SYNC_MODES:
        raise ValidationFailed("Invalid sync mode. Must be 'one-way' or 'two-way'",
                               details={"syncMode": ["Must be one of: one-way, two-way."]})
    row = _integration(user_id, for_update=True)
    if row is None or row.status != CONNECTED:
        raise NotConnected()
    old, row.sync_mode = row.sync_mode, sync_mode
    if old != sync_mode:
        sync_mode_changed(row.id, old, sync_mode)
    db.session.flush()
    return sync_mode
