"""Fixtures for two-way sync tests: the app served over HTTP on loopback (the sandbox's notifications
reach it), and a user driving both sides, Callnfy's API and the owner's edits in Google Calendar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests
from sqlalchemy import select

from callnfy_integrations import create_app
from callnfy_integrations.appointments.models import Appointment
from callnfy_integrations.extensions import db
from callnfy_integrations.google.two_way import pending_key
from callnfy_integrations.integrations.models import GOOGLE_CALENDAR, Integration
from callnfy_integrations.queues import CALENDAR, get_queue, redis_connection
from tests.google_fixtures import GoogleUser, fresh_sandbox, google_settings, run_jobs
from tests.loopback import serve_wsgi
from tests.support import make_config, wait_for

OWNER = "owner@example.com"


@pytest.fixture(scope="module")
def two_way_app(database_url, servers, sandbox, ca_bundle, app):
    """The app, served over HTTP for the sandbox's notifications, delivering webhooks to loopback."""
    server = serve_wsgi()
    url = server.url
    application = create_app(make_config(
        database_url, servers["redis"], PUBLIC_API_URL=url, WEBHOOK_ALLOWED_HOSTS="localhost",
        WEBHOOK_ALLOW_PRIVATE_NETWORKS="true", WEBHOOK_CA_BUNDLE=ca_bundle, WEBHOOK_RETRY_SCHEDULE="0",
        OUTBOX_GRACE_SECONDS="0", GOOGLE_SYNC_GRACE_SECONDS="0", ZAPIER_AUTH_FAILURE_LIMIT="1000 per minute",
        GOOGLE_SYNC_DEBOUNCE_SECONDS="0",  # burst workers run no scheduler; the debounce has its own test
        **google_settings(sandbox)))
    server.app = application
    application.config["LIVE_URL"] = url
    yield application
    server.shutdown()


@pytest.fixture
def two_way_ctx(two_way_app, sandbox):
    fresh_sandbox(sandbox)
    with two_way_app.app_context():
        yield two_way_app
        db.session.remove()


class TwoWayUser(GoogleUser):
    def __init__(self, app, sandbox):
        super().__init__(app, sandbox)
        self.app = app

    def set_mode(self, mode: str) -> None:
        response = self.client.put("/integrations/google/settings", json={"syncMode": mode}, headers=self.headers)
        assert response.status_code == 200, response.json

    def enable_two_way(self) -> None:
        assert self.connect() == {"success": "true"}
        run_jobs(self.app)  # the backfill
        self.set_mode("two-way")
        run_jobs(self.app)  # the baseline and the channel
        wait_for(lambda: self.integration().channel_id)

    def integration(self) -> Integration:
        db.session.expire_all()
        return db.session.scalars(select(Integration).where(Integration.user_id == self.user_id,
                                                            Integration.provider == GOOGLE_CALENDAR)).one_or_none()

    def appointments(self) -> list[Appointment]:
        db.session.expire_all()
        return db.session.scalars(select(Appointment).where(Appointment.user_id == self.user_id)
                                  .order_by(Appointment.created_at)).all()

    # -- the owner, in Google Calendar
    def google_create(self, **body) -> dict:
        start = body.pop("start_at", datetime(2026, 12, 10, 15, 0, tzinfo=UTC))
        minutes = body.pop("minutes", 45)
        event = {"summary": "Consultation", "start": {"dateTime": start.isoformat()},
                 "end": {"dateTime": (start + timedelta(minutes=minutes)).isoformat()},
                 "attendees": [{"email": OWNER, "self": True},
                               {"email": "jane@example.com", "displayName": "Jane Smith"}], **body}
        response = requests.post(f"{self.sandbox.url}/sandbox/user/{OWNER}/events", json=event, timeout=5)
        assert response.status_code == 201
        return response.json()

    def google_patch(self, event_id: str, **body) -> dict:
        response = requests.patch(f"{self.sandbox.url}/sandbox/user/{OWNER}/events/{event_id}", json=body, timeout=5)
        assert response.status_code == 200
        return response.json()

    def google_delete(self, event_id: str) -> None:
        assert requests.delete(f"{self.sandbox.url}/sandbox/user/{OWNER}/events/{event_id}",
                               timeout=5).status_code == 204

    def settle(self) -> None:
        """Wait until the app has answered every notification the sandbox sent (50 ms after each write),
        and run the workers until no sync is pending and no write of theirs is notifying any more."""
        for _ in range(20):
            wait_for(self.sandbox.notified, timeout=10, interval=0.01)
            if not redis_connection().exists(pending_key(self.integration().id)) and not get_queue(CALENDAR).count:
                return
            run_jobs(self.app)
        raise AssertionError("syncs kept coming")


@pytest.fixture
def tuser(two_way_app, two_way_ctx, sandbox):
    return TwoWayUser(two_way_app, sandbox)
