"""The integrations console in a real browser (Debian's Chromium through Playwright): Connect through the
sandbox's consent page and back, a Zapier key read from the clipboard, revoked; appointments reaching the
sandbox calendar. A screenshot of each state goes to test-artifacts/dev-console/ (git-ignored);
UPDATE_DOCS_SCREENSHOT=1 also rewrites docs/dev-console.png, the README's picture of the console."""

import os
from types import SimpleNamespace

import pytest
import requests
from playwright.sync_api import Page, expect
from sqlalchemy import select

from callnfy_integrations import create_app
from callnfy_integrations.appointments.models import Appointment
from callnfy_integrations.auth import DEV_USER_ID
from callnfy_integrations.availability.models import Hold
from callnfy_integrations.extensions import db
from callnfy_integrations.timestamps import format_timestamp
from tests.browser import chromium
from tests.factories import auth_headers
from tests.google_fixtures import fresh_sandbox, google_settings, run_jobs
from tests.loopback import serve_wsgi
from tests.support import REPO_ROOT, make_config

pytestmark = pytest.mark.browser

ARTIFACTS = REPO_ROOT / "test-artifacts" / "dev-console"
DOCS_SCREENSHOT = REPO_ROOT / "docs" / "dev-console.png"
EMAIL = "owner@example.com"


@pytest.fixture
def served(database_url, servers, sandbox, app):
    """The app over real HTTP with the console on, FRONTEND_URL pointing at it as `make run` does."""
    fresh_sandbox(sandbox)
    server = serve_wsgi()
    url = server.url
    server.app = create_app(make_config(database_url, servers["redis"], DEV_CONSOLE="1", PUBLIC_API_URL=url,
                                           FRONTEND_URL=f"{url}/dev/integrations", **google_settings(sandbox)))
    yield SimpleNamespace(app=server.app, url=url, console=f"{url}/dev/integrations",
                          consent_url=f"{sandbox.url}/o/oauth2/v2/auth?")
    server.shutdown()


@pytest.fixture
def console(served):
    """A page on the console in a browser that lets pages use the clipboard."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 900},
                                      permissions=["clipboard-read", "clipboard-write"])
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.goto(served.console)
        yield page


def snapshot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def status(served) -> dict:
    response = served.app.test_client().get("/integrations/status", headers=auth_headers(DEV_USER_ID))
    return response.json["data"]


def sync_until(page: Page, served, row, text: str) -> None:
    """Run the queued jobs (outbox dispatch, the push to Google) until the row's Google cell says `text`."""
    cell = row.locator(".sync-google")
    for _ in range(20):
        run_jobs(served.app)
        page.click("#refresh")
        if cell.inner_text().startswith(text):
            return
        page.wait_for_timeout(100)
    expect(cell).to_have_text(text)


def test_connect_google_through_the_consent_page_and_back(console, served, sandbox):
    page = console
    expect(page.locator("#google-state")).to_have_text("Not connected")
    expect(page.locator("#google-disconnect")).to_be_disabled()
    snapshot(page, "1-not-connected")

    page.click("#google-connect")
    page.wait_for_url(lambda url: url.startswith(served.consent_url))
    assert "calendar.events" in page.inner_text("body")
    snapshot(page, "2-consent")
    page.click("#allow")

    # The callback redirects to FRONTEND_URL/settings/integrations?success=true: the console again.
    page.wait_for_url(served.console)
    expect(page.locator("#notice")).to_have_text("Google Calendar connected.")
    expect(page.locator("#google-state")).to_have_text("Connected")
    expect(page.locator("#google-email")).to_have_text(EMAIL)
    calendar = f"{sandbox.url}/sandbox/events/owner%40example.com"
    expect(page.locator("#sandbox-events")).to_have_attribute("href", calendar)
    assert status(served)["googleCalendar"]["email"] == EMAIL
    snapshot(page, "3-connected")

    page.check("#google-two-way")
    expect(page.locator("#notice")).to_have_text("Sync mode: two-way.")
    assert status(served)["googleCalendar"]["syncMode"] == "two-way"

    page.click("#google-disconnect")
    expect(page.locator("#notice")).to_have_text("Google Calendar disconnected successfully")
    expect(page.locator("#google-state")).to_have_text("Not connected")
    assert status(served)["googleCalendar"] == {"connected": False}


def test_declined_consent_is_shown_as_an_error(console, served):
    page = console
    page.click("#google-connect")
    page.wait_for_url(lambda url: url.startswith(served.consent_url))
    page.click("#deny")
    page.wait_for_url(served.console)
    expect(page.locator("#error")).to_contain_text("access was declined")
    expect(page.locator("#google-state")).to_have_text("Not connected")


def test_generate_copy_and_revoke_a_zapier_key(console, served):
    page = console
    expect(page.locator("#zapier-state")).to_have_text("No API key")
    page.click("#zapier-generate")
    expect(page.locator("#zapier-state")).to_have_text("API key active")
    zapier = status(served)["zapier"]
    expect(page.locator("#zapier-key")).to_have_text(zapier["apiKey"])
    expect(page.locator("#no-deliveries")).to_have_text("None yet.")  # the delivery log answered

    page.click("#copy-key")
    expect(page.locator("#notice")).to_have_text("API key copied to the clipboard.")
    assert page.evaluate("navigator.clipboard.readText()") == zapier["apiKey"]
    assert zapier["apiKey"].startswith("czp_")
    page.click("#copy-webhook-url")
    expect(page.locator("#notice")).to_have_text("Webhook URL copied to the clipboard.")
    assert page.evaluate("navigator.clipboard.readText()") == zapier["webhookUrl"]
    expect(page.locator("#no-subscriptions")).to_be_visible()  # read with the key from the REST hooks
    snapshot(page, "4-key-generated")

    page.click("#zapier-revoke")
    expect(page.locator("#notice")).to_have_text("Zapier API key revoked successfully")
    expect(page.locator("#zapier-state")).to_have_text("No API key")
    expect(page.locator("#zapier-key")).to_have_text("—")
    assert status(served)["zapier"] == {"connected": False}
    snapshot(page, "5-key-revoked")


def test_appointments_reach_the_sandbox_calendar(console, served, sandbox):
    page = console
    page.click("#google-connect")
    page.wait_for_url(lambda url: url.startswith(served.consent_url))
    page.click("#allow")
    page.wait_for_url(served.console)
    expect(page.locator("#google-email")).to_have_text(EMAIL)
    run_jobs(served.app)  # the connection's backfill learns the calendar's time zone

    page.fill("[name=customerPhone]", "12")  # too short for a phone number
    page.click("#appointment-create")
    expect(page.locator("#error")).to_contain_text("VALIDATION_ERROR")  # errors are shown, envelope and all

    page.fill("[name=customerPhone]", "+447700900123")
    page.fill("[name=scheduledAt]", "2030-06-03T10:00")
    page.click("#appointment-create")
    expect(page.locator("#notice")).to_have_text("Appointment created.")
    row = page.locator("#appointment-list tbody tr").first
    sync_until(page, served, row, "synced")
    [event] = sandbox.events(EMAIL)
    assert event["summary"] == "Appointment with Ann Example"

    row.get_by_role("button", name="+1 h").click()
    expect(page.locator("#notice")).to_have_text("Appointment moved one hour later.")
    sync_until(page, served, row, "synced")
    [moved] = sandbox.events(EMAIL)
    assert moved["start"]["dateTime"] != event["start"]["dateTime"]

    row.get_by_role("button", name="Complete").click()
    expect(row.locator("td").nth(3)).to_have_text("completed")
    sync_until(page, served, row, "synced")  # a completed appointment keeps its event
    assert [e["id"] for e in sandbox.events(EMAIL)] == [moved["id"]]
    page.click("#zapier-generate")
    expect(page.locator("#zapier-state")).to_have_text("API key active")
    # Two refreshes at once (a poll and a click can overlap) write the calendar list once, not twice.
    page.evaluate("() => Promise.all([refresh(), refresh()])")  # the console's own, run to the end
    expect(page.locator("#calendar-list li")).to_have_count(1)
    snapshot(page, "6-appointment-synced")
    if os.environ.get("UPDATE_DOCS_SCREENSHOT"):
        DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
        page.evaluate("document.getElementById('notice').hidden = true")
        page.screenshot(path=str(DOCS_SCREENSHOT), full_page=True)

    page.fill("[name=scheduledAt]", "2030-06-04T09:30")
    page.click("#appointment-create")
    second = page.locator("#appointment-list tbody tr").first  # newest first
    sync_until(page, served, second, "synced")
    second.get_by_role("button", name="Cancel").click()
    expect(second.locator("td").nth(3)).to_have_text("cancelled")
    sync_until(page, served, second, "synced")
    assert [e["id"] for e in sandbox.events(EMAIL)] == [moved["id"]]  # the cancelled one left the calendar


def test_availability_settings_free_slots_a_hold_and_a_booking_with_it(console, served):
    page = console
    expect(page.locator("#calendars-state")).to_have_text("Connect Google Calendar to choose calendars.")
    expect(page.locator("[name=timeZone]")).to_have_value("Europe/London")  # the default, no calendar
    expect(page.locator("[name=hours-mon]")).to_have_value("09:00-17:00")
    expect(page.locator("[name=hours-sun]")).to_have_value("")

    page.fill("[name=hours-wed]", "17:00-09:00")
    page.click("#availability-save")
    expect(page.locator("#error")).to_contain_text("workingHours")  # the API's 400, naming the field

    page.fill("[name=timeZone]", "UTC")
    for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"):  # open all day: slots whenever the test runs
        page.fill(f"[name=hours-{day}]", "00:00-24:00")
    page.fill("[name=bufferAfter]", "15")
    page.click("#availability-save")
    expect(page.locator("#notice")).to_have_text("Availability settings saved.")
    page.reload()
    expect(page.locator("[name=bufferAfter]")).to_have_value("15")
    expect(page.locator("[name=timeZone]")).to_have_value("UTC")
    for day in ("mon", "wed", "sat"):
        expect(page.locator(f"[name=hours-{day}]")).to_have_value("00:00-24:00")

    page.fill("#slots-form [name=duration]", "45")
    page.click("#slots-find")
    rows = page.locator("#slot-list tbody tr")
    expect(rows).to_have_count(10)
    first = rows.first
    start = first.get_attribute("data-start")
    first.get_by_role("button", name="Hold").click()
    expect(page.locator("#notice")).to_contain_text("Held until")
    held = page.locator(f"#slot-list tbody tr[data-start='{start}']")
    with served.app.app_context():
        [hold] = db.session.scalars(select(Hold).where(Hold.user_id == DEV_USER_ID)).all()
        assert hold.duration == 45 and hold.consumed_at is None
        db.session.remove()

    held.get_by_role("button", name="Book").click()
    expect(page.locator("#notice")).to_have_text("Appointment booked with its hold.")
    expect(page.locator("#appointment-list tbody tr")).to_have_count(1)
    with served.app.app_context():
        [appointment] = db.session.scalars(select(Appointment).where(Appointment.user_id == DEV_USER_ID)).all()
        assert format_timestamp(appointment.scheduled_at) == start and appointment.duration == 45
        assert db.session.get(Hold, hold.id).consumed_at is not None
        db.session.remove()
    expect(page.locator(f"#slot-list tbody tr[data-start='{start}']")).to_have_count(0)  # booked: not free
    snapshot(page, "7-availability")


def test_the_calendar_picker_chooses_which_google_calendars_count_as_busy(console, served, sandbox):
    page = console
    page.click("#google-connect")
    page.wait_for_url(lambda url: url.startswith(served.consent_url))
    page.click("#allow")
    page.wait_for_url(served.console)
    created = requests.post(f"{sandbox.url}/sandbox/user/{EMAIL}/calendars",
                            json={"summary": "Holidays", "timeZone": "Europe/Paris"}, timeout=5)
    assert created.status_code == 201, created.text
    holidays = created.json()["id"]
    page.click("#refresh")
    boxes = page.locator("#calendar-list input[type=checkbox]")
    expect(boxes).to_have_count(2)
    expect(page.locator("#calendar-list")).to_contain_text("(primary)")
    expect(page.locator(f"#calendar-list input[value='{EMAIL}']")).to_be_checked()  # the default: the connected one
    expect(page.locator(f"#calendar-list input[value='{holidays}']")).not_to_be_checked()

    page.locator(f"#calendar-list input[value='{holidays}']").check()
    page.click("#refresh")  # an unsaved choice survives a refresh
    expect(page.locator(f"#calendar-list input[value='{holidays}']")).to_be_checked()
    page.click("#calendars-save")
    expect(page.locator("#notice")).to_have_text("2 Google calendar(s) count as busy.")
    settings = served.app.test_client().get("/integrations/availability/settings",
                                            headers=auth_headers(DEV_USER_ID)).json["data"]
    assert sorted(c["calendarId"] for c in settings["busyCalendars"]) == sorted([EMAIL, holidays])
    snapshot(page, "8-calendar-picker")
