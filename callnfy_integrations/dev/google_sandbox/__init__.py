"""A local emulator of the Google endpoints this service uses (OAuth 2.0 and a Calendar v3 subset).

Used by `make run` when no Google credentials are set, and by the tests over real HTTP. It follows
Google's documented behaviour where the service depends on it: PKCE S256, `invalid_grant` after
revocation, refresh tokens only with `access_type=offline`, Calendar's error JSON, client-supplied
base32hex event ids (409 `duplicate`), 410 `deleted`, sync tokens with 410 `fullSyncRequired`, and
`events.watch` channels that send a `sync` notification. State lives in memory, per process.

`store` owns that state (`SandboxState`), this module the app factory; `oauth` and `calendar` are the
Google endpoints, `control` the `/sandbox/*` endpoints tests use to count calls, read the request
log, script failures (in order, `/sandbox/fail`, or at random, `/sandbox/chaos`) and change settings.
"""

from __future__ import annotations

from flask import Flask

from . import calendar, control, oauth
from .store import CLIENT_ID, CLIENT_SECRET, DEFAULT_EMAIL, SandboxState, state

__all__ = ["CLIENT_ID", "CLIENT_SECRET", "DEFAULT_EMAIL", "SandboxState", "create_sandbox_app", "state"]


def create_sandbox_app(client_id: str = CLIENT_ID, client_secret: str = CLIENT_SECRET) -> Flask:
    app = Flask(__name__)
    app.config.update(SANDBOX_CLIENT_ID=client_id, SANDBOX_CLIENT_SECRET=client_secret)
    app.extensions["google_sandbox"] = SandboxState()
    app.register_blueprint(oauth.blp)
    app.register_blueprint(calendar.blp, url_prefix="/calendar/v3")
    app.register_blueprint(control.blp, url_prefix="/sandbox")
    app.register_blueprint(calendar.user_blp, url_prefix="/sandbox/user")
    return app
