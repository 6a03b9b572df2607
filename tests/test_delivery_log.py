"""What the SPA shows support: the delivery log with retry, and calendar sync failures."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import update

from callnfy_integrations.extensions import db
from callnfy_integrations.zapier.models import WebhookDelivery, ZapierSubscription
from tests.factories import auth_headers, call_body
from tests.google_fixtures import run_jobs
from tests.zapier_fixtures import run_worker


def log(account, **query):
    return account.client.get("/integrations/zapier/deliveries", query_string=query, headers=account.headers)


def test_the_delivery_log_lists_filters_and_pages_the_accounts_deliveries(hooks_app, account, receiver):
    account.subscribe(receiver.url(), "call.received")
    receiver.answer(*[500] * 4)  # the first call's delivery dies (1 + 3 retries)
    account.client.post("/calls", json=call_body(), headers=account.headers)
    run_worker(hooks_app)
    account.client.post("/calls", json=call_body(), headers=account.headers)
    run_worker(hooks_app)

    answer = log(account)
    assert answer.status_code == 200
    newest, oldest = answer.json["data"]
    assert (newest["status"], oldest["status"]) == ("delivered", "dead")
    assert oldest["id"].startswith("dlv_") and oldest["eventId"].startswith("evt_")
    assert oldest["event"] == "call.received" and oldest["hookUrl"] == receiver.url()
    assert (oldest["attempts"], oldest["lastStatusCode"], oldest["nextAttemptAt"]) == (4, 500, None)
    assert oldest["lastError"].startswith("HTTP 500") and newest["deliveredAt"]
    assert json.loads(answer.headers["X-Pagination"])["total"] == 2

    assert [d["status"] for d in log(account, status="dead").json["data"]] == ["dead"]
    page = log(account, page=2, page_size=1)
    assert [d["id"] for d in page.json["data"]] == [oldest["id"]]
    bad = log(account, status="lost")
    assert bad.status_code == 400 and bad.json["error"]["code"] == "VALIDATION_ERROR"
    stranger = account.client.get("/integrations/zapier/deliveries", headers=auth_headers(uuid.uuid4()))
    assert stranger.json["data"] == []


@pytest.mark.shows_status(("POST", "/integrations/zapier/deliveries/{delivery_id}/retry", "200"),
                           ("POST", "/integrations/zapier/deliveries/{delivery_id}/retry", "409"))
def test_retrying_a_dead_delivery_sends_it_again_and_other_states_are_refused(hooks_app, account, receiver):
    account.subscribe(receiver.url(), "call.received")
    receiver.answer(*[500] * 4)
    account.client.post("/calls", json=call_body(), headers=account.headers)
    run_worker(hooks_app)
    [dead] = log(account).json["data"]
    assert dead["status"] == "dead"

    retried = account.client.post(f"/integrations/zapier/deliveries/{dead['id']}/retry", headers=account.headers)
    assert retried.status_code == 200
    assert (retried.json["data"]["status"], retried.json["data"]["attempts"]) == ("pending", 0)
    run_worker(hooks_app)
    [delivered] = log(account).json["data"]
    assert (delivered["status"], delivered["attempts"]) == ("delivered", 1)
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1  # the same event, again

    again = account.client.post(f"/integrations/zapier/deliveries/{dead['id']}/retry", headers=account.headers)
    assert again.status_code == 409 and again.json["error"]["code"] == "NOT_RETRYABLE"
    other = account.client.post(f"/integrations/zapier/deliveries/{dead['id']}/retry",
                                headers=auth_headers(uuid.uuid4()))
    assert other.status_code == 404
    nonsense = account.client.post("/integrations/zapier/deliveries/dlv_nope/retry", headers=account.headers)
    assert nonsense.status_code == 404 and nonsense.json["success"] is False


def test_retrying_a_delivery_cancelled_by_disabling_enables_its_subscription(hooks_app, account, receiver):
    account.subscribe(receiver.url(), "call.received")
    account.client.post("/calls", json=call_body(), headers=account.headers)
    from tests.test_webhook_delivery import run_worker_dispatch_only

    run_worker_dispatch_only(hooks_app)  # the delivery exists; now its subscription is disabled
    db.session.execute(update(ZapierSubscription).values(disabled_at=db.func.now(), disabled_reason="failing"))
    db.session.execute(update(WebhookDelivery).values(status="cancelled", cancel_reason="subscription_disabled",
                                                      last_error="subscription disabled: every delivery failed"))
    db.session.commit()
    [cancelled] = log(account).json["data"]
    retried = account.client.post(f"/integrations/zapier/deliveries/{cancelled['id']}/retry",
                                  headers=account.headers)
    assert retried.status_code == 200
    assert account.hook("get", "/subscriptions").json["data"][0]["status"] == "active"
    run_worker(hooks_app)
    assert log(account).json["data"][0]["status"] == "delivered" and len(receiver.requests) == 1


def test_only_a_delivery_cancelled_by_a_disabled_subscription_is_retryable_whatever_its_message(
        hooks_app, account, receiver):
    """The reason is a code (`cancel_reason`), not the start of a message a later change could reword."""
    account.subscribe(receiver.url(), "call.received")
    account.client.post("/calls", json=call_body(), headers=account.headers)
    from tests.test_webhook_delivery import run_worker_dispatch_only

    run_worker_dispatch_only(hooks_app)
    db.session.execute(update(WebhookDelivery).values(status="cancelled", cancel_reason="key_revoked",
                                                      last_error="subscription disabled, then the key revoked"))
    db.session.commit()
    [cancelled] = log(account).json["data"]
    refused = account.client.post(f"/integrations/zapier/deliveries/{cancelled['id']}/retry", headers=account.headers)
    assert refused.status_code == 409 and refused.json["error"]["code"] == "NOT_RETRYABLE"
    assert log(account).json["data"][0]["status"] == "cancelled"


def test_calendar_sync_errors_list_the_failed_pushes(guser, sandbox):
    assert guser.connect() == {"success": "true"}
    run_jobs(guser.client.application)
    sandbox.state.script("events.insert", {"status": 400, "reason": "invalid", "message": "Bad start time"})
    failed = guser.create()
    fine = guser.create(scheduledAt="2026-12-09T10:00:00Z")
    run_jobs(guser.client.application)
    answer = guser.client.get("/integrations/google/sync-errors", headers=guser.headers)
    assert answer.status_code == 200
    [item] = answer.json["data"]
    assert item["appointmentId"] in (failed["id"], fine["id"])
    assert item["state"] == "failed" and "Bad start time" in item["error"] and item["nextAttemptAt"] is None
    assert guser.client.get("/integrations/google/sync-errors", headers=auth_headers(uuid.uuid4())).json["data"] == []
