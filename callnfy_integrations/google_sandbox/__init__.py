"""A local emulator of the Google endpoints this service uses (OAuth 2.0 and a Calendar v3 subset).

Used by `make run` when no Google credentials are set, and by the tests over real HTTP. It follows
Google's documented behaviour where the service depends on it: PKCE S256, `invalid_grant` after
revocation, refresh tokens only with `access_type=offline`, Calendar's error JSON, client-supplied
base32hex event ids (409 `duplicate`), 410 `deleted`, sync tokens with 410 `fullSyncRequired`, and
`events.watch` channels that send a `sync` notification. State lives in memory, per process.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from flask import Flask, jsonify, request

CLIENT_ID = "sandbox-client-id.apps.googleusercontent.com"
CLIENT_SECRET = "sandbox-client-secret"
DEFAULT_EMAIL = "owner@example.com"


@dataclass
class SandboxState:
    lock: threading.RLock = field(default_factory=threading.RLock)
    codes: dict = field(default_factory=dict)
    refresh_tokens: dict = field(default_factory=dict)
    access_tokens: dict = field(default_factory=dict)
    calendars: dict = field(default_factory=dict)  # email -> {"events": {id: event}, "sequence": int}
    sync_tokens: dict = field(default_factory=dict)  # token -> (email, sequence)
    channels: dict = field(default_factory=dict)
    calls: dict = field(default_factory=dict)  # endpoint -> count, for tests
    settings: dict = field(default_factory=lambda: {"access_token_lifetime": 3599, "rotate_refresh_tokens": False,
                                                    "notify": True, "token_delay": 0})

    def count(self, name: str) -> None:
        with self.lock:
            self.calls[name] = self.calls.get(name, 0) + 1


def create_sandbox_app(client_id: str = CLIENT_ID, client_secret: str = CLIENT_SECRET) -> Flask:
    from . import calendar, oauth

    app = Flask(__name__)
    app.config.update(SANDBOX_CLIENT_ID=client_id, SANDBOX_CLIENT_SECRET=client_secret)
    app.extensions["google_sandbox"] = SandboxState()
    app.register_blueprint(oauth.blp)
    app.register_blueprint(calendar.blp, url_prefix="/calendar/v3")

    @app.get("/sandbox/calls")
    def calls():
        return jsonify(state(app).calls)

    @app.post("/sandbox/settings")
    def settings():
        with state(app).lock:
            state(app).settings.update(request.get_json(force=True))
            return jsonify(state(app).settings)

    @app.get("/sandbox/channels")
    def channels():
        return jsonify(sorted(state(app).channels))

    return app


def state(app: Flask | None = None) -> SandboxState:
    from flask import current_app

    return (app or current_app).extensions["google_sandbox"]
