"""Connecting Microsoft 365 in a real browser (Debian's Chromium through Playwright), from the integrations
console as `make run` serves it: Connect → the Microsoft sandbox's consent page → Accept → the callback →
back on the frontend with success; the console's Microsoft card and `/integrations/status` show the
connection; two-way is switched on and off again; disconnect. A declined consent, a grant
Microsoft stopped accepting (reconnect), and a test appointment reaching the sandbox's Outlook
calendar too. Screenshots go to test-artifacts/dev-console/."""

from types import SimpleNamespace

import pytest
import requests
from playwright.sync_api import Page, expect

from callnfy_integrations import create_app
from callnfy_integrations.auth import DEV_USER_ID
from callnfy_integrations.microsoft.oauth import BINDER_COOKIE
from tests.browser import chromium
from tests.factories import auth_headers
from tests.google_fixtures import fresh_sandbox, google_settings, run_jobs
from tests.loopback import serve_wsgi
from tests.microsoft_fixtures import microsoft_settings
from tests.support import REPO_ROOT, make_config

pytestmark = pytest.mark.browser

ARTIFACTS = REPO_ROOT / "test-artifacts" / "dev-console"
EMAIL = "owner@example.com"
MICROSOFT_DEFAULT = {"provider": "microsoft", "calendarId": "default"}


@pytest.fixture
def served(database_url, servers, sandbox, ms_sandbox, app):
    """The app over real HTTP with the console on and both sandboxes standing in, as `make run` has it."""
    fresh_sandbox(sandbox)
    ms_sandbox.fresh()
    server = serve_wsgi()
    url = server.url
    server.app = create_app(make_config(database_url, servers["redis"], DEV_CONSOLE="1", PUBLIC_API_URL=url,
                                        FRONTEND_URL=f"{url}/dev/integrations", **google_settings(sandbox),
                                        **microsoft_settings(ms_sandbox)))
    yield SimpleNamespace(app=server.app, url=url, console=f"{url}/dev/integrations",
                          consent_url=f"{ms_sandbox.url}/common/oauth2/v2.0/authorize?")
    server.shutdown()
    ms_sandbox.fresh()


@pytest.fixture
def browser_page(served):
    """A console page, and every URL the browser was sent to under FRONTEND_URL/settings/integrations."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.landings = []
        page.on("request", lambda request: page.landings.append(request.url)
                if request.url.startswith(f"{served.console}/settings/integrations") else None)
        page.goto(served.console)
        yield page


def status(served) -> dict:
    response = served.app.test_client().get("/integrations/status", headers=auth_headers(DEV_USER_ID))
    return response.json["data"]


def busy_calendars(served) -> list[dict]:
    response = served.app.test_client().get("/integrations/availability/settings", headers=auth_headers(DEV_USER_ID))
    return response.json["data"]["busyCalendars"]


def connect(page: Page, served, button: str = "#allow") -> None:
    """Connect on the Microsoft card, press `button` on the sandbox's consent page, come back to the console."""
    page.click("#microsoft-connect")
    page.wait_for_url(lambda url: url.startswith(served.consent_url))
    assert "Calendars.ReadWrite" in page.inner_text("body")
    [cookie] = [c for c in page.context.cookies() if c["name"] == BINDER_COOKIE]
    assert (cookie["path"], cookie["httpOnly"], cookie["sameSite"]) == ("/integrations/microsoft/callback", True, "Lax")
    page.click(button)
    page.wait_for_url(served.console)  # the landing, its query removed by the console


def test_connect_microsoft_through_the_sandbox_consent_page_and_disconnect(browser_page, served):
    page = browser_page
    card = page.locator("#microsoft")
    expect(page.locator("#microsoft-state")).to_have_text("Not connected")
    expect(page.locator("#microsoft-disconnect")).to_be_disabled()
    expect(page.locator("#microsoft-sandbox-events")).to_be_hidden()

    connect(page, served)
    assert page.landings == [f"{served.console}/settings/integrations?success=true"]
    expect(page.locator("#notice")).to_have_text("Microsoft 365 connected.")
    expect(page.locator("#microsoft-state")).to_have_text("Connected")
    expect(page.locator("#microsoft-email")).to_have_text(EMAIL)
    expect(page.locator("#microsoft-sync-mode")).to_have_text("Callnfy → Outlook")
    expect(page.locator("#microsoft-busy")).to_be_checked()  # each connected calendar counts by default
    expect(page.locator("#google-state")).to_have_text("Not connected")  # the other provider is untouched
    mailbox = f"{served.consent_url.split('/common/')[0]}/sandbox/events/owner%40example.com"
    expect(page.locator("#microsoft-sandbox-events")).to_have_attribute("href", mailbox)
    assert status(served)["microsoftCalendar"] == {"connected": True, "email": EMAIL, "syncMode": "one-way",
                                                   "lastSyncAt": None, "syncError": None}
    assert [c for c in page.context.cookies() if c["name"] == BINDER_COOKIE] == []  # spent by the callback
    card.screenshot(path=str(ARTIFACTS / "9-microsoft-connected.png"))

    page.check("#microsoft-two-way")
    expect(page.locator("#notice")).to_have_text("Microsoft sync mode: two-way.")
    assert status(served)["microsoftCalendar"]["syncMode"] == "two-way"
    page.uncheck("#microsoft-two-way")
    expect(page.locator("#notice")).to_have_text("Microsoft sync mode: one-way.")
    assert status(served)["microsoftCalendar"]["syncMode"] == "one-way"

    page.uncheck("#microsoft-busy")
    expect(page.locator("#notice")).to_have_text("Microsoft 365 does not count as busy.")
    assert MICROSOFT_DEFAULT not in busy_calendars(served)
    page.check("#microsoft-busy")
    expect(page.locator("#notice")).to_have_text("Microsoft 365's default calendar counts as busy.")
    assert busy_calendars(served) == [MICROSOFT_DEFAULT]

    page.click("#microsoft-disconnect")
    expect(page.locator("#notice")).to_have_text("Microsoft Calendar disconnected successfully")
    expect(page.locator("#microsoft-state")).to_have_text("Not connected")
    expect(page.locator("#microsoft-email")).to_have_text("—")
    expect(page.locator("#microsoft-connect")).to_be_enabled()
    assert status(served)["microsoftCalendar"] == {"connected": False}


def test_declined_microsoft_consent_is_shown_as_an_error(browser_page, served):
    page = browser_page
    connect(page, served, "#deny")
    assert page.landings == [f"{served.console}/settings/integrations?error=access_denied"]
    expect(page.locator("#error")).to_contain_text("Microsoft 365 was not connected: access was declined")
    expect(page.locator("#microsoft-state")).to_have_text("Not connected")
    assert status(served)["microsoftCalendar"] == {"connected": False}


def test_a_grant_microsoft_no_longer_accepts_asks_for_a_reconnect(browser_page, served, ms_sandbox):
    page = browser_page
    connect(page, served)
    expect(page.locator("#microsoft-state")).to_have_text("Connected")
    # The owner withdraws consent; the next read of the calendar (free slots) finds the grant refused.
    requests.post(f"{ms_sandbox.url}/sandbox/revoke/{EMAIL}", timeout=5).raise_for_status()
    page.click("#slots-find")
    expect(page.locator("#microsoft-state")).to_have_text("Reconnect needed")
    expect(page.locator("#microsoft-reauth")).to_be_visible()
    expect(page.locator("#microsoft-connect")).to_have_text("Reconnect Microsoft 365")
    assert status(served)["microsoftCalendar"] == {"connected": False, "reauthorizationRequired": True,
                                                   "email": EMAIL}

    connect(page, served)
    expect(page.locator("#notice")).to_have_text("Microsoft 365 connected.")
    expect(page.locator("#microsoft-state")).to_have_text("Connected")
    expect(page.locator("#microsoft-reauth")).to_be_hidden()
    assert status(served)["microsoftCalendar"]["connected"] is True


def test_a_test_appointment_reaches_the_outlook_calendar(browser_page, served, ms_sandbox):
    page = browser_page
    connect(page, served)
    expect(page.locator("#microsoft-state")).to_have_text("Connected")
    page.fill("[name=scheduledAt]", "2030-06-03T10:00")
    page.click("#appointment-create")
    expect(page.locator("#notice")).to_have_text("Appointment created.")
    outlook = page.locator("#appointment-list tbody tr").first.locator(".sync-microsoft")
    for _ in range(20):  # the outbox dispatch, then the push to Outlook
        run_jobs(served.app)
        page.click("#refresh")
        if outlook.inner_text().startswith("synced"):
            break
        page.wait_for_timeout(100)
    expect(outlook).to_have_text("synced")
    expect(page.locator("#appointment-list tbody tr").first.locator(".sync-google")).to_have_text("off")
    [event] = ms_sandbox.events(EMAIL)
    assert "Ann Example" in event["subject"]
    page.screenshot(path=str(ARTIFACTS / "10-outlook-synced.png"), full_page=True)
