"""A local emulator of the Microsoft endpoints a calendar provider uses: the identity platform v2
(authorize, token) and a Microsoft Graph v1.0 subset (me, mailboxSettings, calendars, events,
calendarView and its delta, subscriptions with the validation handshake and change and lifecycle
notifications).

It follows Microsoft's documented behaviour where a client depends on it: PKCE S256, single-use codes
(AADSTS54005), a refresh token rotated on every refresh, the identity platform's error JSON with
`error_codes`, Graph's error JSON, `transactionId` on create, 404 `ErrorItemNotFound`, delta pages and
links with 410 `syncStateNotFound`, and the 4,230-minute subscription limit. State lives in memory, per
process. The service's Microsoft provider is tested against it, and `make run` starts it when
MICROSOFT_CLIENT_ID is unset.

`store` owns the state, `mailbox` the events model, `times` time zones and recurrence; `oauth`,
`graph`, `views` (calendarView, delta) and `subscriptions` are the Microsoft endpoints (`common`:
what every Graph handler does); `control` the `/sandbox/*` endpoints for tests, `owner` the mailbox
owner acting in Outlook (`/sandbox/user/*`).
"""

from __future__ import annotations

from flask import Flask

from . import control, graph, oauth, owner, subscriptions, views
from .store import CLIENT_ID, CLIENT_SECRET, DEFAULT_EMAIL, TENANT_ID, MicrosoftState, state

__all__ = ["CLIENT_ID", "CLIENT_SECRET", "DEFAULT_EMAIL", "TENANT_ID", "MicrosoftState", "create_sandbox_app",
           "state"]


def create_sandbox_app(client_id: str = CLIENT_ID, client_secret: str = CLIENT_SECRET) -> Flask:
    app = Flask(__name__)
    app.config.update(SANDBOX_CLIENT_ID=client_id, SANDBOX_CLIENT_SECRET=client_secret)
    app.extensions["microsoft_sandbox"] = MicrosoftState()
    app.register_blueprint(oauth.blp)
    app.register_blueprint(graph.blp, url_prefix="/v1.0")
    app.register_blueprint(views.blp, url_prefix="/v1.0")
    app.register_blueprint(subscriptions.blp, url_prefix="/v1.0")
    app.register_blueprint(control.blp, url_prefix="/sandbox")
    app.register_blueprint(owner.blp, url_prefix="/sandbox/user")
    return app
