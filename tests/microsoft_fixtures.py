"""Fixtures for Microsoft tests: the Microsoft sandbox served over real HTTP, its OAuth done the way a
client does it, and a loopback receiver for Graph's validation requests and notifications."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from werkzeug.serving import make_server

from callnfy_integrations.dev.microsoft_sandbox import CLIENT_ID, CLIENT_SECRET, create_sandbox_app
from callnfy_integrations.dev.microsoft_sandbox import state as sandbox_state
from tests.google_fixtures import GoogleUser
from tests.loopback import QuietHandler, start

SCOPES = "openid email offline_access User.Read Calendars.ReadWrite"
DEFAULTS = {"access_token_lifetime": 3599, "refresh_token_grace": 0, "notify": True, "token_delay": 0,
            "write_delay": 0, "time_zones": {}, "max_subscription_minutes": 4230, "validation_timeout": 10,
            "delta_page_size": 10}


class MicrosoftSandbox:
    def __init__(self):
        import logging

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # request lines carry codes and tokens
        self.app = create_sandbox_app()
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.authority = f"{self.url}/common/oauth2/v2.0"
        self.graph = f"{self.url}/v1.0"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def state(self):
        return sandbox_state(self.app)

    def control(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(method, f"{self.url}/sandbox{path}", timeout=10, **kwargs)

    def calls(self, name: str) -> int:
        return self.control("get", "/calls").json().get(name, 0)

    def settings(self, **values):
        self.control("post", "/settings", json=values).raise_for_status()

    def fresh(self):
        """Default settings, no mailboxes, subscriptions, tokens of delta or counts: a new Microsoft."""
        self.settings(**DEFAULTS)
        self.control("post", "/reset").raise_for_status()

    def events(self, email: str = "owner@example.com") -> list[dict]:
        return self.control("get", f"/events/{email}").json()

    def deliveries(self, kind: str | None = None) -> list[dict]:
        return [d for d in self.control("get", "/deliveries").json() if kind is None or d["kind"] == kind]

    def authorize(self, *, email: str = "owner@example.com", scopes: str = SCOPES, verifier: str | None = None,
                  redirect_uri: str = "http://localhost/cb") -> tuple[str, str]:
        """(code, verifier) from the non-interactive consent."""
        verifier = verifier or secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        query = urlencode({"client_id": CLIENT_ID, "response_type": "code", "redirect_uri": redirect_uri,
                           "scope": scopes, "state": "st", "code_challenge": challenge,
                           "code_challenge_method": "S256", "sandbox_decision": "allow", "sandbox_email": email})
        redirect = requests.get(f"{self.authority}/authorize?{query}", allow_redirects=False, timeout=5)
        assert redirect.status_code == 302, redirect.text
        return parse_qs(urlsplit(redirect.headers["Location"]).query)["code"][0], verifier

    def token(self, **form) -> requests.Response:
        return requests.post(f"{self.authority}/token", timeout=10,
                             data={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, **form})

    def tokens(self, email: str = "owner@example.com", scopes: str = SCOPES) -> dict:
        code, verifier = self.authorize(email=email, scopes=scopes)
        response = self.token(grant_type="authorization_code", code=code, code_verifier=verifier,
                              redirect_uri="http://localhost/cb")
        assert response.status_code == 200, response.text
        return response.json()

    def api(self, token: str, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
        return requests.request(method, f"{self.graph}{path}", headers=headers, timeout=15, **kwargs)

    def close(self):
        self.server.shutdown()


@pytest.fixture(scope="session")
def ms_sandbox():
    server = MicrosoftSandbox()
    yield server
    server.close()


class Receiver:
    """A service's Graph webhook endpoints on loopback: answers validation requests as `mode` says
    (`echo`: 200 text/plain with the token, as required; `json`, `encoded`, `500`, `slow`) and keeps
    every notification (JSON body and query), answering `status` (202 by default)."""

    def __init__(self):
        self.mode, self.status, self.slow = "echo", 202, 2.0
        self.notifications: list[dict] = []
        self.validations: list[dict] = []
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                query = parse_qs(urlsplit(self.path).query)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if "validationToken" in query:
                    receiver.validations.append({"path": self.path, "contentType": self.headers.get("Content-Type"),
                                                 "token": query["validationToken"][0]})
                    self._validate(query["validationToken"][0])
                    return
                receiver.notifications.append({"path": urlsplit(self.path).path, "body": json.loads(body or b"{}")})
                self._answer(receiver.status, "text/plain", b"")

            def _validate(self, token: str):
                mode = receiver.mode
                if mode == "slow":
                    time.sleep(receiver.slow)
                if mode == "500":
                    self._answer(500, "text/plain", b"oops")
                elif mode == "json":
                    self._answer(200, "application/json", json.dumps({"token": token}).encode())
                elif mode == "encoded":
                    self._answer(200, "text/plain", urlencode({"t": token})[2:].encode())
                else:
                    self._answer(200, "text/plain; charset=utf-8", token.encode())

            def _answer(self, status: int, content_type: str, body: bytes):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = start(Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def of(self, path: str) -> list[dict]:
        return [n["body"] for n in self.notifications if n["path"] == path]

    def close(self):
        self.server.shutdown()


@pytest.fixture
def graph_receiver():
    server = Receiver()
    yield server
    server.close()


# -- the service pointed at the sandbox ------------------------------------------------------------------

def microsoft_settings(sandbox: MicrosoftSandbox) -> dict:
    return {"MICROSOFT_CLIENT_ID": CLIENT_ID, "MICROSOFT_CLIENT_SECRET": CLIENT_SECRET, "MICROSOFT_TENANT": "common",
            "MICROSOFT_AUTHORITY_URL": sandbox.url, "MICROSOFT_GRAPH_URL": sandbox.graph}


@pytest.fixture(scope="module")
def microsoft_app(database_url, servers, ms_sandbox, app):
    from callnfy_integrations import create_app
    from tests.support import make_config

    return create_app(make_config(database_url, servers["redis"], **microsoft_settings(ms_sandbox)))


@pytest.fixture
def mctx(microsoft_app, ms_sandbox):
    from callnfy_integrations.extensions import db

    ms_sandbox.fresh()
    with microsoft_app.app_context():
        yield microsoft_app
        db.session.remove()
    ms_sandbox.fresh()  # scripted failures left over must not reach other tests


class MicrosoftUser(GoogleUser):
    """A Callnfy user connecting Microsoft 365 through the sandbox, the way the SPA and a browser would."""

    provider, status_key = "microsoft", "microsoftCalendar"

    def integration(self):
        from sqlalchemy import select

        from callnfy_integrations.extensions import db
        from callnfy_integrations.integrations.models import MICROSOFT_CALENDAR, Integration

        db.session.expire_all()
        return db.session.scalars(select(Integration).where(Integration.user_id == self.user_id,
                                                            Integration.provider == MICROSOFT_CALENDAR)).one_or_none()


@pytest.fixture
def muser(microsoft_app, mctx, ms_sandbox):
    return MicrosoftUser(microsoft_app, ms_sandbox)
