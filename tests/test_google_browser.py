"""A person connecting Google in a real browser: the SPA calls connect (receiving the binder cookie) →
consent page → Allow → callback → the app's page; and a consent link finished in another browser."""

import uuid
from types import SimpleNamespace
from urllib.parse import urlencode, urlsplit

import pytest
from playwright.sync_api import BrowserContext, Page

from callnfy_integrations import create_app
from callnfy_integrations.google.oauth import BINDER_COOKIE
from tests.browser import chromium
from tests.factories import auth_headers, token
from tests.google_fixtures import google_settings
from tests.loopback import PageHandler, serve_wsgi, start
from tests.support import make_config

pytestmark = pytest.mark.browser

# What the SPA does on "Connect Google": call connect from the browser (so the binder cookie lands in
# it), then go to Google's consent page.
CONNECT_PAGE = b"""<!doctype html><title>Callnfy connect</title><p id="error"></p>
<script>
(async () => {
  const params = new URLSearchParams(location.search);
  try {
    const response = await fetch(params.get('api') + '/integrations/google/connect', {
      method: 'POST', credentials: 'include', headers: {Authorization: 'Bearer ' + params.get('jwt')}});
    const body = await response.json();
    if (!response.ok) throw new Error(response.status + ' ' + JSON.stringify(body));
    location.href = body.data.authUrl;
  } catch (error) {
    document.getElementById('error').textContent = 'connect failed: ' + error;
  }
})();
</script>"""
SETTINGS_PAGE = b"<!doctype html><title>Callnfy settings</title><h1 id='settings'>Integrations</h1>"


class Frontend(PageHandler):
    """A tiny stand-in for the SPA: its connect page and its settings page."""

    def page(self, path: str) -> bytes:
        return CONNECT_PAGE if urlsplit(path).path == "/connect.html" else SETTINGS_PAGE


@pytest.fixture
def served(database_url, servers, sandbox, app):
    """The API over real HTTP (the browser calls it and follows Google's redirect to it) and the frontend."""
    frontend = start(Frontend)
    api = serve_wsgi()
    api_url = api.url
    frontend_url = f"http://127.0.0.1:{frontend.server_address[1]}"
    api.app = create_app(make_config(database_url, servers["redis"], PUBLIC_API_URL=api_url,
                                           FRONTEND_URL=frontend_url, **google_settings(sandbox)))
    yield SimpleNamespace(app=api.app, api_url=api_url, frontend_url=frontend_url,
                          consent_url=f"{sandbox.url}/o/oauth2/v2/auth?")
    api.shutdown()
    frontend.shutdown()


def binder_cookies(context: BrowserContext) -> list[dict]:
    return [c for c in context.cookies() if c["name"] == BINDER_COOKIE]


def press_connect(context: BrowserContext, served, user_id: uuid.UUID) -> Page:
    """Open the frontend's connect page as `user_id`; returns the page once it shows Google's consent."""
    page = context.new_page()
    query = urlencode({"api": served.api_url, "jwt": token(user_id)})
    page.goto(f"{served.frontend_url}/connect.html?{query}")
    page.wait_for_url(lambda url: url.startswith(served.consent_url), timeout=10_000)
    return page


def consent(page: Page, button: str, served) -> str:
    """Press a button on the consent page, follow the redirects back to the frontend; the landing URL."""
    assert "wants to access your Google Account" in page.inner_text("body")
    page.click(button)
    page.wait_for_url(lambda url: url.startswith(f"{served.frontend_url}/settings/integrations?"))
    assert page.inner_text("#settings") == "Integrations"
    return page.url


def google_status(served, user_id: uuid.UUID) -> dict:
    response = served.app.test_client().get("/integrations/status", headers=auth_headers(user_id))
    return response.json["data"]["googleCalendar"]


def test_person_connects_google_in_a_real_browser(served, sandbox):
    sandbox.settings(notify=True, token_delay=0, rotate_refresh_tokens=False)
    user_id = uuid.uuid4()
    with chromium() as browser:
        context = browser.new_context()
        page = press_connect(context, served, user_id)
        assert "calendar.events" in page.inner_text("body")
        [cookie] = binder_cookies(context)
        assert (cookie["httpOnly"], cookie["sameSite"], cookie["secure"]) == (True, "Lax", False)
        assert cookie["path"] == "/integrations/google/callback"
        landed = consent(page, "#allow", served)
        assert binder_cookies(context) == []  # spent by the callback
    assert landed == f"{served.frontend_url}/settings/integrations?success=true"
    assert google_status(served, user_id) == {"connected": True, "email": "owner@example.com",
                                              "syncMode": "one-way", "lastSyncAt": None, "syncError": None}


def test_person_declines_in_a_real_browser(served, sandbox):
    user_id = uuid.uuid4()
    with chromium() as browser:
        landed = consent(press_connect(browser.new_context(), served, user_id), "#deny", served)
    assert landed == f"{served.frontend_url}/settings/integrations?error=access_denied"
    assert google_status(served, user_id) == {"connected": False}


def test_consent_link_completed_in_another_browser_is_refused(served, sandbox):
    """An attacker presses Connect, then gets a victim to finish the consent link in the victim's own
    browser: the callback arrives without the attacker's binder cookie, so nothing is linked."""
    attacker = uuid.uuid4()
    exchanges = sandbox.calls("token:authorization_code")
    with chromium() as browser:
        consent_url = press_connect(browser.new_context(), served, attacker).url
        victim = browser.new_context()
        page = victim.new_page()
        page.goto(consent_url)
        landed = consent(page, "#allow", served)
    assert landed == f"{served.frontend_url}/settings/integrations?error=google_auth_failed"
    assert sandbox.calls("token:authorization_code") == exchanges  # the victim's code was never exchanged
    assert google_status(served, attacker) == {"connected": False}
