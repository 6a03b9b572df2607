"""A person connecting Google in a real browser: consent page → Allow → callback → the app's page."""

import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import sync_playwright
from werkzeug.serving import make_server

from callnfy_integrations import create_app
from tests.conftest import make_config
from tests.factories import auth_headers
from tests.google_fixtures import google_settings, sandbox  # noqa: F401

CHROMIUM = "/usr/bin/chromium"
# As the machine's notes advise: no background traffic to Google's hosts from the browser itself.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class Frontend(BaseHTTPRequestHandler):
    """A tiny stand-in for the SPA's settings page."""

    def do_GET(self):  # noqa: N802
        body = b"<!doctype html><title>Callnfy settings</title><h1 id='settings'>Integrations</h1>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def served(database_url, servers, sandbox, app):
    """The API over real HTTP (the browser follows Google's redirect to it) and the frontend page."""
    frontend = ThreadingHTTPServer(("127.0.0.1", 0), Frontend)
    threading.Thread(target=frontend.serve_forever, daemon=True).start()
    holder = {}
    api = make_server("127.0.0.1", 0, lambda environ, start: holder["app"](environ, start), threaded=True)
    holder["app"] = create_app(make_config(
        database_url, servers["redis"], PUBLIC_API_URL=f"http://127.0.0.1:{api.server_port}",
        FRONTEND_URL=f"http://127.0.0.1:{frontend.server_address[1]}", **google_settings(sandbox)))
    threading.Thread(target=api.serve_forever, daemon=True).start()
    yield holder["app"], frontend.server_address[1]
    api.shutdown()
    frontend.shutdown()


def consent_in_browser(auth_url: str, button: str, frontend_port: int) -> tuple[str, str]:
    """Open Google's consent page in headless Chromium, press a button, follow the redirects back
    to the frontend; returns (what the consent page showed, the URL the browser lands on)."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(auth_url)
            consent_text = page.inner_text("body")
            page.click(button)
            page.wait_for_url(f"http://127.0.0.1:{frontend_port}/settings/integrations?*")
            assert page.inner_text("#settings") == "Integrations"
            return consent_text, page.url
        finally:
            browser.close()


def start_connect(app) -> tuple:
    client, user_id = app.test_client(), uuid.uuid4()
    auth_url = client.post("/integrations/google/connect", headers=auth_headers(user_id)).json["data"]["authUrl"]
    return client, user_id, auth_url


def test_person_connects_google_in_a_real_browser(served, sandbox):
    sandbox.settings(notify=True, token_delay=0, rotate_refresh_tokens=False)
    app, frontend_port = served
    client, user_id, auth_url = start_connect(app)
    consent_text, landed = consent_in_browser(auth_url, "#allow", frontend_port)
    assert "wants to access your Google Account" in consent_text and "calendar.events" in consent_text
    assert landed == f"http://127.0.0.1:{frontend_port}/settings/integrations?success=true"
    status = client.get("/integrations/status", headers=auth_headers(user_id)).json["data"]["googleCalendar"]
    assert status == {"connected": True, "email": "owner@example.com", "syncMode": "one-way", "lastSyncAt": None}


def test_person_declines_in_a_real_browser(served, sandbox):
    app, frontend_port = served
    client, user_id, auth_url = start_connect(app)
    _, landed = consent_in_browser(auth_url, "#deny", frontend_port)
    assert landed == f"http://127.0.0.1:{frontend_port}/settings/integrations?error=access_denied"
    assert client.get("/integrations/status", headers=auth_headers(user_id)).json["data"]["googleCalendar"] == {
        "connected": False}
