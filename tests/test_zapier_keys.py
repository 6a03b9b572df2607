"""Zapier API keys: format, idempotency, concurrency, hash-only storage, status, revocation, failures."""

import hashlib
import re
import threading
import uuid
from contextlib import contextmanager

import pytest
from sqlalchemy import text

from callnfy_integrations.extensions import db
from tests.factories import auth_headers, row_counts
from tests.zapier_fixtures import Account, hooks_config

KEY = re.compile(r"^czp_[A-Za-z0-9]{40}$")


def generate(client, user_id):
    response = client.post("/integrations/zapier/generate-key", headers=auth_headers(user_id))
    assert response.status_code == 200, response.json
    return response.json["data"]


def test_generate_key_returns_key_webhook_url_and_created_at(client, user_id):
    data = generate(client, user_id)
    assert KEY.match(data["apiKey"])
    assert data["webhookUrl"] == f"https://api.callnfy.test/webhooks/zapier/{user_id}"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", data["createdAt"])


def test_keys_differ_between_users(client):
    assert generate(client, uuid.uuid4())["apiKey"] != generate(client, uuid.uuid4())["apiKey"]


def test_generate_key_returns_existing_key(client, user_id):
    assert generate(client, user_id) == generate(client, user_id)


def test_concurrent_generate_calls_yield_one_key(app, user_id):
    keys, errors = [], []

    def call():
        try:
            keys.append(generate(app.test_client(), user_id)["apiKey"])
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(keys) == 8 and len(set(keys)) == 1
    with app.app_context():
        assert db.session.scalar(text("SELECT count(*) FROM integrations WHERE provider = 'zapier'")) == 1


def test_plaintext_key_is_in_no_column(client, app_ctx, user_id):
    api_key = generate(client, user_id)["apiKey"]
    columns = db.session.execute(text("""
        SELECT table_name, column_name, data_type FROM information_schema.columns
        WHERE table_schema = 'public' AND data_type IN ('text', 'character varying', 'bytea', 'jsonb')
    """)).all()
    assert columns
    for table, column, data_type in columns:
        cast = f"encode({column}, 'escape')" if data_type == "bytea" else f"{column}::text"
        hits = db.session.scalar(text(f'SELECT count(*) FROM "{table}" WHERE {cast} LIKE :needle'),
                                 {"needle": f"%{api_key[4:]}%"})
        assert hits == 0, f"{table}.{column} holds the key"
    stored = db.session.scalar(text("SELECT api_key_hash FROM integrations WHERE provider = 'zapier'"))
    assert stored == hashlib.sha256(api_key.encode()).hexdigest()


def test_status_shows_connected_zapier(client, user_id):
    data = generate(client, user_id)
    status = client.get("/integrations/status", headers=auth_headers(user_id)).json["data"]["zapier"]
    assert status == {"connected": True, **data}


def test_revoke_key_then_status_not_connected_and_new_key_differs(client, user_id):
    first = generate(client, user_id)["apiKey"]
    response = client.delete("/integrations/zapier/revoke-key", headers=auth_headers(user_id))
    assert response.json == {"success": True, "message": "Zapier API key revoked successfully"}
    status = client.get("/integrations/status", headers=auth_headers(user_id)).json["data"]["zapier"]
    assert status == {"connected": False}
    assert generate(client, user_id)["apiKey"] != first


def test_revoke_without_key_still_succeeds(client, user_id):
    response = client.delete("/integrations/zapier/revoke-key", headers=auth_headers(user_id))
    assert response.status_code == 200 and response.json["message"] == "Zapier API key revoked successfully"


def test_key_endpoints_require_a_token(client):
    assert client.post("/integrations/zapier/generate-key").status_code == 401
    assert client.delete("/integrations/zapier/revoke-key").status_code == 401


def test_responses_holding_the_key_are_not_cached(client, user_id):
    generated = client.post("/integrations/zapier/generate-key", headers=auth_headers(user_id))
    assert generated.headers["Cache-Control"] == "no-store"
    status = client.get("/integrations/status", headers=auth_headers(user_id))
    assert status.json["data"]["zapier"]["apiKey"] == generated.json["data"]["apiKey"]
    assert status.headers["Cache-Control"] == "no-store"


@contextmanager
def database_refusing(operation, table):
    """PostgreSQL itself fails every `operation` on `table` (a trigger raising disk_full) until the block ends."""
    with db.engine.begin() as conn:
        conn.exec_driver_sql("CREATE FUNCTION refuse_statement() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                             "RAISE EXCEPTION 'could not extend file' USING ERRCODE = 'disk_full'; END $$")
        conn.exec_driver_sql(f"CREATE TRIGGER refuse_statement BEFORE {operation} ON {table} "
                             "FOR EACH ROW EXECUTE FUNCTION refuse_statement()")
    try:
        yield
    finally:
        with db.engine.begin() as conn:
            conn.exec_driver_sql(f"DROP TRIGGER refuse_statement ON {table}")
            conn.exec_driver_sql("DROP FUNCTION refuse_statement()")


def assert_failed_with(response, message):
    assert response.status_code == 500
    assert response.json["success"] is False
    assert response.json["error"]["code"] == "INTERNAL_ERROR" and response.json["error"]["message"] == message
    assert "could not extend" not in response.get_data(as_text=True)  # the cause is logged, not shown


@pytest.mark.shows_status(("POST", "/integrations/zapier/generate-key", "500"))
def test_generate_key_failure_answers_the_specs_message_and_writes_nothing(client, app_ctx, user_id):
    before = row_counts()
    with database_refusing("INSERT", "integrations"):
        response = client.post("/integrations/zapier/generate-key", headers=auth_headers(user_id))
    assert_failed_with(response, "Failed to generate API key")
    assert row_counts() == before  # the user row written before the refused insert is rolled back too
    assert KEY.match(generate(client, user_id)["apiKey"])  # and the next call succeeds


@pytest.mark.shows_status(("DELETE", "/integrations/zapier/revoke-key", "500"))
def test_revoke_key_failure_answers_the_specs_message_and_keeps_key_and_subscriptions(hooks_app, receiver):
    with hooks_app.app_context():
        account = Account(hooks_app)
        subscription = account.subscribe(receiver.url())
        # The key's own row is the statement refused: whatever revoke_key did before it must be undone.
        with database_refusing("DELETE", "integrations"):
            response = account.client.delete("/integrations/zapier/revoke-key", headers=account.headers)
        assert_failed_with(response, "Failed to revoke API key")
        assert account.hook("get").status_code == 200  # the key still works
        assert account.hook("get", "/subscriptions").json["data"] == [subscription]  # rolled back
        revoked = account.client.delete("/integrations/zapier/revoke-key", headers=account.headers)
        assert revoked.status_code == 200 and account.hook("get").status_code == 401
        db.session.remove()


# -- failed key checks --------------------------------------------------------------------------------

WRONG_KEY = {"X-Callnfy-Key": "czp_" + "B" * 40}


@pytest.fixture(scope="module")
def guarded_app(database_url, servers, ca_bundle, app):
    from callnfy_integrations import create_app

    return create_app(hooks_config(database_url, servers, ca_bundle, ZAPIER_AUTH_FAILURE_LIMIT="3 per minute",
                                   ZAPIER_AUTH_ADDRESS_FAILURE_LIMIT="6 per minute"))


def test_rotating_the_user_id_in_the_path_buys_no_more_guesses(guarded_app):
    """The account is the user id in the path, which the caller picks: failures also count per address."""
    with guarded_app.app_context():
        victim = Account(guarded_app)
        db.session.remove()
    client, attacker = guarded_app.test_client(), {"REMOTE_ADDR": "203.0.113.9"}
    guesses = [client.get(f"/webhooks/zapier/{uuid.uuid4()}", headers=WRONG_KEY, environ_base=attacker).status_code
               for _ in range(8)]
    assert guesses == [401] * 6 + [429] * 2  # 6 per address, though no account saw more than one
    limited = client.get(f"/webhooks/zapier/{victim.user_id}", headers={"X-Callnfy-Key": victim.api_key},
                         environ_base=attacker)
    assert limited.status_code == 429 and limited.json["error"]["code"] == "TOO_MANY_REQUESTS"
    assert 1 <= int(limited.headers["Retry-After"]) <= 61
    assert victim.hook("get").status_code == 200  # the account's own Zapier, from its address, goes on


def test_one_tenants_failures_on_a_shared_address_stop_below_the_address_limit(guarded_app):
    """Zapier's addresses are shared: a tenant's broken Zap hits its own, lower, limit first."""
    with guarded_app.app_context():
        broken, healthy = Account(guarded_app), Account(guarded_app)
        db.session.remove()
    client = guarded_app.test_client()
    statuses = [client.get(f"/webhooks/zapier/{broken.user_id}", headers=WRONG_KEY).status_code for _ in range(5)]
    assert statuses == [401, 401, 401, 429, 429]  # refused requests are not failed checks: 3 counted
    assert healthy.hook("get").status_code == 200
