"""Fixtures for Google tests: the sandbox served over real HTTP, an app pointed at it, a connect helper."""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from callnfy_integrations import create_app
from callnfy_integrations.dev.google_sandbox import CLIENT_ID, CLIENT_SECRET, create_sandbox_app
from callnfy_integrations.dev.google_sandbox import state as sandbox_state
from callnfy_integrations.extensions import db
from tests.factories import auth_headers
from tests.loopback import serve_wsgi
from tests.support import make_config


class Sandbox:
    def __init__(self):
        import logging

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # request lines carry codes and tokens
        self.app = create_sandbox_app()
        self.server = serve_wsgi(self.app)
        self.url = self.server.url

    @property
    def state(self):
        return sandbox_state(self.app)

    def calls(self, name: str) -> int:
        return requests.get(f"{self.url}/sandbox/calls", timeout=5).json().get(name, 0)

    def settings(self, **values):
        requests.post(f"{self.url}/sandbox/settings", json=values, timeout=5).raise_for_status()

    def reset_counts(self):
        with self.state.lock:
            self.state.calls.clear()
            self.state.requests.clear()

    def writes(self) -> list[dict]:
        """The Calendar write requests received, in order."""
        with self.state.lock:
            return [dict(r) for r in self.state.requests
                    if r["endpoint"] in ("events.insert", "events.update", "events.patch", "events.delete")]

    def notified(self) -> bool:
        """Every push notification sent so far has been answered (the app has taken it in)."""
        with self.state.lock:
            return self.state.notifying == 0

    def calendar_calls(self) -> int:
        with self.state.lock:
            return sum(count for name, count in self.state.calls.items()
                       if name.startswith(("events.", "channels.")))

    def events(self, email: str = "owner@example.com", *, live_only: bool = True) -> list[dict]:
        events = requests.get(f"{self.url}/sandbox/events/{email}", timeout=5).json()
        return [e for e in events if e["status"] != "cancelled"] if live_only else events

    def close(self):
        self.server.shutdown()


@pytest.fixture(scope="session")
def sandbox():
    server = Sandbox()
    yield server
    server.close()


def google_settings(sandbox: Sandbox) -> dict:
    return {"GOOGLE_CLIENT_ID": CLIENT_ID, "GOOGLE_CLIENT_SECRET": CLIENT_SECRET,
            "GOOGLE_AUTHORIZE_URL": f"{sandbox.url}/o/oauth2/v2/auth", "GOOGLE_TOKEN_URL": f"{sandbox.url}/token",
            "GOOGLE_USERINFO_URL": f"{sandbox.url}/v1/userinfo", "GOOGLE_REVOKE_URL": f"{sandbox.url}/revoke",
            "GOOGLE_CALENDAR_API_URL": f"{sandbox.url}/calendar/v3/"}


@pytest.fixture(scope="module")
def google_app(database_url, servers, sandbox, app):
    return create_app(make_config(database_url, servers["redis"], **google_settings(sandbox)))


def fresh_sandbox(sandbox: Sandbox) -> None:
    """Default settings, no calendars, channels or counts: each test starts from a new Google."""
    sandbox.settings(access_token_lifetime=3599, rotate_refresh_tokens=False, notify=True, token_delay=0,
                     write_delay=0, time_zones={})
    requests.post(f"{sandbox.url}/sandbox/reset", timeout=5).raise_for_status()


@pytest.fixture
def gctx(google_app, sandbox):
    fresh_sandbox(sandbox)
    with google_app.app_context():
        yield google_app
        db.session.remove()


class GoogleUser:
    """A Callnfy user connecting Google through the sandbox, the way the SPA and a browser would
    (MicrosoftUser is the same with another `provider`)."""

    provider, status_key = "google", "googleCalendar"

    def __init__(self, app, sandbox):
        self.client = app.test_client()
        self.user_id = uuid.uuid4()
        self.headers = auth_headers(self.user_id)
        self.sandbox = sandbox

    def auth_url(self) -> str:
        db.session.expire_all()  # requests share the test's app context, and so its session
        response = self.client.post(f"/integrations/{self.provider}/connect", headers=self.headers)
        assert response.status_code == 200, response.json
        return response.json["data"]["authUrl"]

    def consent(self, auth_url: str, decision: str = "allow", **extra) -> str:
        """The provider's redirect back to us (non-interactive sandbox mode): the callback path and query."""
        params = "&" + urlencode({f"sandbox_{k}": v for k, v in {"decision": decision, **extra}.items()})
        response = requests.get(auth_url + params, allow_redirects=False, timeout=5)
        assert response.status_code == 302, response.text
        location = urlsplit(response.headers["Location"])
        assert location.path == f"/integrations/{self.provider}/callback"
        return f"{location.path}?{location.query}"

    def callback(self, path: str) -> dict:
        response = self.client.get(path)
        assert response.status_code == 302
        return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["Location"]).query).items()}

    def connect(self, **consent) -> dict:
        return self.callback(self.consent(self.auth_url(), **consent))

    def create(self, **overrides) -> dict:
        from tests.factories import appointment_body

        response = self.client.post("/appointments", json=appointment_body(**overrides), headers=self.headers)
        assert response.status_code == 201, response.json
        return response.json["data"]

    def appointment(self, appointment_id: str) -> dict:
        db.session.expire_all()  # requests share the test's app context, and so its session
        return self.client.get(f"/appointments/{appointment_id}", headers=self.headers).json["data"]

    def status(self) -> dict:
        return self.client.get("/integrations/status", headers=self.headers).json["data"][self.status_key]


@pytest.fixture
def guser(google_app, gctx, sandbox):
    return GoogleUser(google_app, sandbox)


def run_jobs(app) -> None:
    """Run every queued job (outbox dispatch, pushes, backfill) on a real RQ worker until none is left."""
    from callnfy_integrations.worker import build_worker

    build_worker(app).work(burst=True)


def worker_env(config: dict, sandbox: Sandbox, **overrides) -> dict:
    """Environment of a real `flask worker` / `flask scheduler` process against the test servers and the sandbox."""
    import os

    from tests.support import REPO_ROOT

    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "DATABASE_", "REDIS_", "GOOGLE_"))}
    env.update({"APP_ENV": "testing", "DATABASE_URL": config["SQLALCHEMY_DATABASE_URI"],
                "REDIS_URL": config["REDIS_URL"], "FLASK_APP": "wsgi", "LOG_LEVEL": "INFO",
                "PYTHONPATH": str(REPO_ROOT), **google_settings(sandbox)})
    env.update({k: str(v) for k, v in overrides.items()})
    return env
