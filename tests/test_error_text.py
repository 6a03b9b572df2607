"""What a user is shown for a failure — `googleSync.error`, the status's `syncError`, a delivery's
`lastError`: a stable code and a sentence, never raw exception text (SQL, class names, urllib3's
internals); the detail goes to the logs."""

from __future__ import annotations

import logging
import re
import uuid

from sqlalchemy.exc import IntegrityError

from callnfy_integrations import create_app
from callnfy_integrations.extensions import db
from callnfy_integrations.google import sync_errors
from callnfy_integrations.worker import build_worker
from tests.google_fixtures import google_settings
from tests.support import make_config
from tests.zapier_fixtures import Account

RAW = ("Error", "Exception", "INSERT", "UPDATE", "SELECT", "psycopg2", "sqlalchemy", "HTTPSConnectionPool",
       "object at 0x", "Traceback", "Max retries")


def assert_stable_and_human(text: str, code: str) -> None:
    assert re.fullmatch(rf"{code}: [^:].*", text), text
    for raw in RAW:
        assert raw not in text, (raw, text)


def test_a_push_google_did_not_answer_shows_a_code_and_a_sentence(guser, database_url, servers, sandbox):
    assert guser.connect() == {"success": "true"}
    appointment = guser.create()
    unreachable = create_app(make_config(database_url, servers["redis"], **{
        **google_settings(sandbox), "GOOGLE_CALENDAR_API_URL": "http://127.0.0.1:9/calendar/v3/"}))
    build_worker(unreachable).work(burst=True)  # the push: connection refused
    shown = guser.appointment(appointment["id"])["googleSync"]
    assert shown["state"] == "failed"
    assert shown["error"] == "GOOGLE_UNAVAILABLE: Google Calendar did not answer; will retry"


def test_a_google_event_that_fails_on_our_side_shows_no_sql_and_logs_the_detail(tuser, caplog):
    tuser.enable_two_way()
    tuser.settle()
    long_email = "a" * 330 + "@example.com"  # longer than the customers.email column
    tuser.google_create(summary="Long address", attendees=[{"email": "owner@example.com", "self": True},
                                                           {"email": long_email, "displayName": "Long"}])
    with caplog.at_level(logging.WARNING, logger="callnfy_integrations.google.two_way_runs"):
        tuser.settle()
    sync_error = tuser.status()["syncError"]
    assert_stable_and_human(sync_error, "EVENT_NOT_APPLIED")
    assert long_email not in sync_error and "the details are in the service's logs" in sync_error
    [record] = [r for r in caplog.records if r.getMessage() == "a Google event could not be applied"]
    assert record.exc_info is not None and "value too long" in str(record.exc_info[1])  # the detail: logged


def test_a_delivery_that_got_no_answer_shows_a_code_not_urllib3_internals(hooks_app, receiver):
    with hooks_app.app_context():
        account = Account(hooks_app)
        account.subscribe("https://localhost:9/hooks/catch/123/zap-secret/", "call.received")  # nothing listens
        from tests.factories import call_body

        account.client.post("/calls", json=call_body(), headers=account.headers)
        build_worker(hooks_app).work(burst=True)
        [delivery] = account.client.get("/integrations/zapier/deliveries", headers=account.headers).json["data"]
        db.session.remove()
    assert delivery["status"] == "dead"
    assert_stable_and_human(delivery["lastError"], "CONNECTION_FAILED")
    assert "zap-secret" not in delivery["lastError"]  # the hook URL's path is a credential of the Zap


def test_an_integrity_error_is_described_without_its_sql(app_ctx):
    """The shape of SQLAlchemy's text, from a real one: a duplicate user."""
    user_id = uuid.uuid4()
    db.session.execute(db.text("INSERT INTO users (id) VALUES (:id)"), {"id": user_id})
    try:
        db.session.execute(db.text("INSERT INTO users (id) VALUES (:id)"), {"id": user_id})
    except IntegrityError as exc:
        error = exc
    db.session.rollback()
    assert "INSERT INTO users" in str(error)
    assert_stable_and_human(sync_errors.describe(error), "SYNC_FAILED")
    assert_stable_and_human(sync_errors.unapplied_event("evt123", error), "EVENT_NOT_APPLIED")
    assert_stable_and_human(sync_errors.will_retry(error), "SYNC_FAILED")
