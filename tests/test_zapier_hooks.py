"""Zapier's REST hooks: auth test, subscribe, list, unsubscribe, samples; key checks and hook URL rules."""


import pytest

from callnfy_integrations import create_app
from tests.zapier_fixtures import Account, hooks_config

EVENTS = ["appointment.created", "appointment.rescheduled", "appointment.cancelled", "appointment.completed",
          "call.received"]


def test_auth_test_returns_user_and_events(account):
    response = account.hook("get")
    assert response.status_code == 200
    assert response.json["data"] == {"userId": str(account.user_id), "events": EVENTS}


@pytest.mark.parametrize("headers", [{}, {"X-Callnfy-Key": ""}, {"X-Callnfy-Key": "czp_" + "A" * 40},
                                     {"X-Callnfy-Key": "not-a-key"}])
def test_wrong_or_missing_key_is_401(account, headers):
    response = account.client.get(f"/webhooks/zapier/{account.user_id}", headers=headers)
    assert response.status_code == 401 and response.json["error"]["code"] == "UNAUTHORIZED"


def test_another_users_key_is_401_and_changes_nothing(hooks_app, account, receiver):
    other = Account(hooks_app)
    response = account.client.post(f"/webhooks/zapier/{account.user_id}/subscriptions",
                                   headers={"X-Callnfy-Key": other.api_key},
                                   json={"hookUrl": receiver.url(), "event": "call.received"})
    assert response.status_code == 401
    assert account.hook("get", "/subscriptions").json["data"] == []
    assert other.hook("get", "/subscriptions").json["data"] == []


def test_revoked_key_is_401(account):
    account.client.delete("/integrations/zapier/revoke-key", headers=account.headers)
    assert account.hook("get").status_code == 401


def test_non_uuid_user_in_path_is_401(account):
    response = account.client.get("/webhooks/zapier/not-a-user", headers={"X-Callnfy-Key": account.api_key})
    assert response.status_code == 401


def test_subscribe_list_and_unsubscribe(account, receiver):
    created = account.hook("post", "/subscriptions", json={"hookUrl": receiver.url(), "event": "call.received"})
    assert created.status_code == 201
    subscription = created.json["data"]
    assert subscription["id"].startswith("sub_") and subscription["event"] == "call.received"
    assert subscription["hookUrl"] == receiver.url() and subscription["createdAt"].endswith("Z")
    assert account.hook("get", "/subscriptions").json["data"] == [subscription]
    deleted = account.hook("delete", f"/subscriptions/{subscription['id']}")
    assert deleted.status_code == 200 and deleted.json["success"] is True
    assert account.hook("get", "/subscriptions").json["data"] == []
    assert account.hook("delete", f"/subscriptions/{subscription['id']}").status_code == 404


def test_subscribing_twice_returns_the_existing_subscription(account, receiver):
    first = account.hook("post", "/subscriptions", json={"hookUrl": receiver.url(), "event": "call.received"})
    again = account.hook("post", "/subscriptions", json={"hookUrl": receiver.url(), "event": "call.received"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json["data"] == first.json["data"]
    assert len(account.hook("get", "/subscriptions").json["data"]) == 1


def test_other_accounts_subscription_cannot_be_deleted(hooks_app, account, receiver):
    other = Account(hooks_app)
    subscription = other.subscribe(receiver.url())
    assert account.hook("delete", f"/subscriptions/{subscription['id']}").status_code == 404
    assert other.hook("get", "/subscriptions").json["data"] == [subscription]


@pytest.mark.parametrize("body, reason", [
    ({"hookUrl": "http://localhost/hook", "event": "call.received"}, "https"),
    ({"hookUrl": "https://evil.example/hook", "event": "call.received"}, "not allowed"),
    ({"hookUrl": "not a url", "event": "call.received"}, "https"),
    ({"hookUrl": "https://user:pw@localhost/hook", "event": "call.received"}, "credentials"),
])
def test_bad_hook_urls_are_400_and_write_nothing(account, body, reason):
    response = account.hook("post", "/subscriptions", json=body)
    assert response.status_code == 400
    assert reason in " ".join(response.json["error"]["details"]["hookUrl"])
    assert account.hook("get", "/subscriptions").json["data"] == []


def test_unknown_event_is_400(account, receiver):
    response = account.hook("post", "/subscriptions", json={"hookUrl": receiver.url(), "event": "call.ended"})
    assert response.status_code == 400 and "event" in response.json["error"]["details"]


@pytest.fixture(scope="module")
def strict_app(database_url, servers, ca_bundle, app):
    """Production rules: public addresses only; any host allowed so the address check is what decides."""
    return create_app(hooks_config(database_url, servers, ca_bundle, WEBHOOK_ALLOWED_HOSTS="*",
                                   WEBHOOK_ALLOW_PRIVATE_NETWORKS="false", ZAPIER_AUTH_FAILURE_LIMIT="3 per minute"))


@pytest.mark.parametrize("url, reason", [
    ("https://10.1.2.3/hook", "non-public"), ("https://127.0.0.1/hook", "non-public"),
    ("https://169.254.169.254/latest/meta-data", "non-public"), ("https://[::1]/hook", "non-public"),
    ("https://localhost/hook", "non-public"),  # a name that resolves to loopback
])
def test_private_addresses_are_refused(strict_app, url, reason):
    with strict_app.app_context():
        account = Account(strict_app)
        response = account.hook("post", "/subscriptions", json={"hookUrl": url, "event": "call.received"})
    assert response.status_code == 400
    assert reason in " ".join(response.json["error"]["details"]["hookUrl"])


@pytest.mark.shows_status(*[(method, path, "429") for method, path in (
    ("GET", "/webhooks/zapier/{user_id}"), ("GET", "/webhooks/zapier/{user_id}/subscriptions"),
    ("POST", "/webhooks/zapier/{user_id}/subscriptions"),
    ("DELETE", "/webhooks/zapier/{user_id}/subscriptions/{subscription_id}"),
    ("GET", "/webhooks/zapier/{user_id}/samples/{event}"))])
def test_failed_key_checks_are_rate_limited_per_address_and_account(strict_app):
    with strict_app.app_context():
        victim, bystander = Account(strict_app), Account(strict_app)
    path = f"/webhooks/zapier/{victim.user_id}"
    statuses = [victim.client.get(path, headers={"X-Callnfy-Key": "czp_" + "B" * 40}).status_code for _ in range(5)]
    assert statuses == [401, 401, 401, 429, 429]
    limited = victim.client.get(path, headers={"X-Callnfy-Key": "czp_" + "B" * 40})
    assert limited.json["error"]["code"] == "TOO_MANY_REQUESTS" and "Retry-After" in limited.headers
    # Another account's hooks from the same address are not locked out by these failures.
    assert bystander.hook("get").status_code == 200


def test_samples_fall_back_to_a_realistic_example_with_the_live_keys(account, receiver):
    for event in EVENTS:
        [sample] = account.hook("get", f"/samples/{event}").json["data"]
        assert set(sample) == {"id", "event", "timestamp", "data"} and sample["event"] == event
    created_example = account.hook("get", "/samples/appointment.created").json["data"][0]
    live = account.book()
    [real] = account.hook("get", "/samples/appointment.created").json["data"]
    assert real["data"]["id"] == live["id"]
    assert set(real["data"]) == set(created_example["data"])


def test_samples_are_the_accounts_latest_payloads(hooks_app, account):
    for minute in range(5):
        account.book(scheduledAt=f"2026-12-01T10:0{minute}:00Z")
    samples = account.hook("get", "/samples/appointment.created").json["data"]
    assert [s["data"]["scheduledAt"] for s in samples] == [
        "2026-12-01T10:04:00.000Z", "2026-12-01T10:03:00.000Z", "2026-12-01T10:02:00.000Z"]
    assert Account(hooks_app).hook("get", "/samples/appointment.created").json["data"][0]["id"] == \
        "evt_" + "0" * 32  # another account sees only the example


def test_unknown_sample_event_is_400(account):
    assert account.hook("get", "/samples/call.ended").status_code == 400
