"""A local emulator of the Google endpoints this service uses (OAuth 2.0 and a Calendar v3 subset).

Used by `make run` when no Google credentials are set, and by the tests over real HTTP. It follows
Google's documented behaviour where the service depends on it: PKCE S256, `invalid_grant` after
revocation, refresh tokens only with `access_type=offline`, Calendar's error JSON, client-supplied
base32hex event ids (409 `duplicate`), 410 `deleted`, sync tokens with 410 `fullSyncRequired`, and
`events.watch` channels that send a `sync` notification. State lives in memory, per process.

This module owns that state (`SandboxState`) and the app factory; `oauth` and `calendar` are the
Google endpoints, `control` the `/sandbox/*` endpoints tests use to count calls, read the request
log, script failures and change settings.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from flask import Flask

CLIENT_ID = "sandbox-client-id.apps.googleusercontent.com"
CLIENT_SECRET = "sandbox-client-secret"
DEFAULT_EMAIL = "owner@example.com"

# Names under which calls are counted, logged and scripted (Google's method names).
CALENDAR_ENDPOINTS = ("events.insert", "events.get", "events.update", "events.patch", "events.delete",
                      "events.list", "events.watch", "channels.stop")
SCRIPTABLE = CALENDAR_ENDPOINTS + ("revoke", "token:refresh_token", "token:authorization_code")
SCRIPTED_KEYS = {"status", "reason", "message", "retryAfter", "sleep"}


def _default_settings() -> dict:
    return {"access_token_lifetime": 3599, "rotate_refresh_tokens": False, "notify": True, "token_delay": 0,
            "write_delay": 0,  # seconds slept before each event write, to widen race windows in tests
            "time_zones": {}}  # calendar email -> IANA zone reported by events.list (default Europe/London)


@dataclass
class SandboxState:
    """Everything the sandbox knows. Handlers run in threads: mutate under `lock`, never sleep holding it."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    codes: dict = field(default_factory=dict)
    refresh_tokens: dict = field(default_factory=dict)
    access_tokens: dict = field(default_factory=dict)
    calendars: dict = field(default_factory=dict)  # email -> {"events": {id: event}, "sequence": int}
    sync_tokens: dict = field(default_factory=dict)  # token -> (email, sequence)
    channels: dict = field(default_factory=dict)
    calls: dict = field(default_factory=dict)  # endpoint -> count, for tests
    requests: list = field(default_factory=list)  # request log, for tests: see control.intercept
    failures: dict[str, list] = field(default_factory=dict)  # endpoint -> FIFO of scripted responses
    settings: dict = field(default_factory=_default_settings)

    def count(self, name: str) -> None:
        with self.lock:
            self.calls[name] = self.calls.get(name, 0) + 1

    def script(self, endpoint: str, *responses: dict | int) -> None:
        """Queue responses `endpoint` answers with instead of doing its work, one per call, in order.

        Each is a status code or a dict: `status` (4xx/5xx), optional `reason`, `message`, `retryAfter`
        (the Retry-After header) and `sleep` (seconds to stall before answering).
        """
        if endpoint not in SCRIPTABLE:
            raise ValueError(f"unknown endpoint {endpoint!r}; one of {', '.join(SCRIPTABLE)}")
        queued = []
        for response in responses:
            response = {"status": response} if isinstance(response, int) else dict(response)
            unknown = set(response) - SCRIPTED_KEYS
            if unknown:  # a misspelt key would otherwise be ignored silently
                raise ValueError(f"unknown keys {sorted(unknown)}; allowed: {sorted(SCRIPTED_KEYS)}")
            if not isinstance(response.get("status"), int) or not 400 <= response["status"] <= 599:
                raise ValueError("status must be an HTTP error code (400-599)")
            queued.append(response)
        with self.lock:
            self.failures.setdefault(endpoint, []).extend(queued)

    def next_scripted(self, endpoint: str) -> dict | None:
        with self.lock:
            queue = self.failures.get(endpoint)
            return queue.pop(0) if queue else None

    def reset(self) -> None:
        """Forget calendars, channels, sync tokens and test bookkeeping; tokens and codes stay valid."""
        with self.lock:
            for collection in (self.calls, self.requests, self.failures, self.calendars, self.channels,
                               self.sync_tokens):
                collection.clear()


def create_sandbox_app(client_id: str = CLIENT_ID, client_secret: str = CLIENT_SECRET) -> Flask:
    from . import calendar, control, oauth

    app = Flask(__name__)
    app.config.update(SANDBOX_CLIENT_ID=client_id, SANDBOX_CLIENT_SECRET=client_secret)
    app.extensions["google_sandbox"] = SandboxState()
    app.register_blueprint(oauth.blp)
    app.register_blueprint(calendar.blp, url_prefix="/calendar/v3")
    app.register_blueprint(control.blp, url_prefix="/sandbox")
    app.register_blueprint(calendar.user_blp, url_prefix="/sandbox/user")
    return app


def state(app: Flask | None = None) -> SandboxState:
    from flask import current_app

    return (app or current_app).extensions["google_sandbox"]
