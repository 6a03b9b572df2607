"""Connecting Google Calendar through the sandbox over real HTTP: OAuth, state, scopes, storage, status."""

import base64
import hashlib
import json
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import select, text

from callnfy_integrations import create_app
from callnfy_integrations.extensions import db
from callnfy_integrations.google.oauth import BINDER_COOKIE
from callnfy_integrations.integrations.models import Integration
from callnfy_integrations.queues import redis_connection
from tests.google_fixtures import GoogleUser
from tests.support import make_config

FRONTEND = "https://app.callnfy.test/settings/integrations"


def test_connect_returns_a_pkce_consent_url(guser, sandbox):
    url = urlsplit(guser.auth_url())
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{sandbox.url}/o/oauth2/v2/auth"
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert query["response_type"] == "code" and query["client_id"].endswith(".apps.googleusercontent.com")
    assert query["redirect_uri"] == "https://api.callnfy.test/integrations/google/callback"
    assert query["scope"].split() == ["openid", "email", "https://www.googleapis.com/auth/calendar.events",
                                      "https://www.googleapis.com/auth/calendar.calendarlist.readonly"]
    assert (query["access_type"], query["prompt"], query["include_granted_scopes"]) == ("offline", "consent", "true")
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert len(query["state"]) >= 32
    assert redis_connection().ttl(f"callnfy:google:oauth-state:{query['state']}") in range(590, 601)


def test_full_connect_flow(guser):
    assert guser.connect() == {"success": "true"}
    assert guser.status() == {"connected": True, "email": "owner@example.com", "syncMode": "one-way",
                              "lastSyncAt": None, "syncError": None}


def test_callback_redirects_to_the_frontend(guser):
    response = guser.client.get(guser.consent(guser.auth_url()))
    assert response.status_code == 302 and response.headers["Location"] == f"{FRONTEND}?success=true"


def test_sandbox_checks_pkce(guser, sandbox):
    path = guser.consent(guser.auth_url())
    code = parse_qs(urlsplit(path).query)["code"][0]
    from callnfy_integrations.dev.google_sandbox import CLIENT_ID, CLIENT_SECRET

    wrong = requests.post(f"{sandbox.url}/token", timeout=5, data={
        "grant_type": "authorization_code", "code": code, "code_verifier": "x" * 64, "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET, "redirect_uri": "https://api.callnfy.test/integrations/google/callback"})
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"


def test_callback_with_a_tampered_verifier_fails(guser):
    path = guser.consent(guser.auth_url())
    state = parse_qs(urlsplit(path).query)["state"][0]
    key = f"callnfy:google:oauth-state:{state}"
    saved = redis_connection().get(key).decode().replace('"code_verifier": "', '"code_verifier": "tampered')
    redis_connection().set(key, saved, ex=600)
    assert guser.callback(path) == {"error": "google_auth_failed"}
    assert guser.status() == {"connected": False}


def test_callback_with_replayed_state_redirects_with_error(guser):
    path = guser.consent(guser.auth_url())
    assert guser.callback(path) == {"success": "true"}
    assert guser.callback(path) == {"error": "google_auth_failed"}


def test_callback_with_forged_state_redirects_with_error(guser):
    path = guser.consent(guser.auth_url())
    forged = path.replace("state=", "state=forged")
    assert guser.callback(forged) == {"error": "google_auth_failed"}
    assert guser.callback("/integrations/google/callback?code=abc") == {"error": "google_auth_failed"}
    assert guser.status() == {"connected": False}


def test_callback_with_expired_state_redirects_with_error(guser):
    path = guser.consent(guser.auth_url())
    state = parse_qs(urlsplit(path).query)["state"][0]
    redis_connection().pexpire(f"callnfy:google:oauth-state:{state}", 1)
    import time

    time.sleep(0.01)
    assert guser.callback(path) == {"error": "google_auth_failed"}


def test_declined_consent_redirects_with_access_denied(guser):
    assert guser.connect(decision="deny") == {"error": "access_denied"}
    assert guser.status() == {"connected": False}


def test_missing_calendar_scope_is_refused(guser):
    assert guser.connect(scopes="openid%20email") == {"error": "missing_scope"}
    assert guser.status() == {"connected": False}
    assert db.session.scalar(select(db.func.count()).select_from(Integration)) == 0


def test_no_token_is_stored_in_plaintext(guser, sandbox):
    def issued():
        with sandbox.state.lock:
            return set(sandbox.state.refresh_tokens) | set(sandbox.state.access_tokens)

    before = issued()
    guser.connect()
    tokens = issued() - before
    assert len(tokens) == 2  # this connection's refresh and access tokens
    columns = db.session.execute(text("""
        SELECT table_name, column_name, data_type FROM information_schema.columns
        WHERE table_schema = 'public' AND data_type IN ('text', 'character varying', 'bytea', 'jsonb')""")).all()
    for table, column, data_type in columns:
        cast = f"encode({column}, 'escape')" if data_type == "bytea" else f"{column}::text"
        for token in tokens:
            hits = db.session.scalar(text(f'SELECT count(*) FROM "{table}" WHERE {cast} LIKE :t'),
                                     {"t": f"%{token[5:]}%"})
            assert hits == 0, f"{table}.{column}"


@pytest.mark.shows_status(("POST", "/integrations/google/connect", "409"))
def test_connect_when_connected_is_409_and_after_lapse_is_allowed(guser):
    guser.connect()
    response = guser.client.post("/integrations/google/connect", headers=guser.headers)
    assert response.status_code == 409 and response.json["error"]["code"] == "ALREADY_CONNECTED"
    db.session.execute(text("UPDATE integrations SET status = 'reauthorization_required'"))
    db.session.commit()
    assert guser.status() == {"connected": False, "reauthorizationRequired": True, "email": "owner@example.com"}
    assert guser.connect() == {"success": "true"}
    assert guser.status()["connected"] is True


def test_connect_without_google_credentials_is_500_with_the_contract_message(database_url, servers, app, user_id):
    from tests.factories import auth_headers

    bare = create_app(make_config(database_url, servers["redis"]))  # no GOOGLE_CLIENT_ID
    response = bare.test_client().post("/integrations/google/connect", headers=auth_headers(user_id))
    assert response.status_code == 500
    assert response.json["error"]["message"] == "Failed to initiate Google OAuth"


def test_state_names_the_user_who_started(guser, google_app, sandbox):
    """Google's redirect carries no JWT: the state alone says whose connection the callback completes."""
    other = GoogleUser(google_app, sandbox)
    other.auth_url()  # another user's Connect, pending at the same time
    auth_url = guser.auth_url()
    state = parse_qs(urlsplit(auth_url).query)["state"][0]
    kept = json.loads(redis_connection().get(f"callnfy:google:oauth-state:{state}"))
    assert kept["user_id"] == str(guser.user_id)
    assert guser.callback(guser.consent(auth_url)) == {"success": "true"}  # the callback has no Authorization
    db.session.expire_all()
    assert db.session.scalars(select(Integration.user_id)).all() == [guser.user_id]
    assert guser.status()["connected"] is True and other.status() == {"connected": False}


def test_callback_from_another_browser_is_refused_and_stores_nothing(google_app, gctx, sandbox):
    """Account-linking CSRF: Mallory starts Connect for her account and sends the consent link to
    Alice; Alice consents in her own browser. Her browser lacks Mallory's binder cookie: refused."""
    mallory, alice = GoogleUser(google_app, sandbox), GoogleUser(google_app, sandbox)
    link = mallory.auth_url()
    callback = alice.consent(link, email="alice@example.com")  # Google redirects Alice's browser back
    assert alice.callback(callback) == {"error": "google_auth_failed"}
    assert mallory.status() == {"connected": False}
    assert db.session.scalar(select(db.func.count()).select_from(Integration)) == 0
    assert sandbox.calls("token:authorization_code") == 0  # the code was never even exchanged
    assert mallory.callback(callback) == {"error": "google_auth_failed"}  # and the state is spent


def test_callback_with_a_wrong_binder_is_refused(guser):
    path = guser.consent(guser.auth_url())
    guser.client.set_cookie(BINDER_COOKIE, "not-the-binder", path="/integrations/google/callback")
    assert guser.callback(path) == {"error": "google_auth_failed"}
    assert guser.status() == {"connected": False}


def test_connect_sets_an_httponly_lax_binder_cookie_for_the_callback_only(guser):
    response = guser.client.post("/integrations/google/connect", headers=guser.headers)
    [cookie] = response.headers.getlist("Set-Cookie")
    attributes = [part.strip() for part in cookie.split(";")]
    name, value = attributes[0].split("=", 1)
    assert name == BINDER_COOKIE and len(value) >= 43
    assert {"HttpOnly", "SameSite=Lax", "Secure", "Path=/integrations/google/callback", "Max-Age=600"} <= set(
        attributes)
    assert response.headers["Cache-Control"] == "no-store"
    state = parse_qs(urlsplit(response.json["data"]["authUrl"]).query)["state"][0]
    saved = redis_connection().get(f"callnfy:google:oauth-state:{state}").decode()
    assert value not in saved  # only its hash is kept with the state


def test_binder_cookie_is_not_secure_on_a_plain_http_api(database_url, servers, sandbox, app, user_id):
    from tests.factories import auth_headers
    from tests.google_fixtures import google_settings

    local = create_app(make_config(database_url, servers["redis"], PUBLIC_API_URL="http://localhost:5000",
                                   **google_settings(sandbox)))
    cookie = local.test_client().post("/integrations/google/connect", headers=auth_headers(user_id)).headers[
        "Set-Cookie"]
    assert "Secure" not in cookie and "HttpOnly" in cookie


def test_callback_clears_the_binder_cookie(guser):
    response = guser.client.get(guser.consent(guser.auth_url()))
    cleared = response.headers["Set-Cookie"]
    assert cleared.startswith(f"{BINDER_COOKIE}=;") and "Path=/integrations/google/callback" in cleared
    assert "Max-Age=0" in cleared or "Expires=Thu, 01 Jan 1970" in cleared
    assert guser.client.get_cookie(BINDER_COOKIE, path="/integrations/google/callback") is None


def test_cors_lets_the_spa_call_connect_with_credentials(guser):
    response = guser.client.options("/integrations/google/connect", headers={
        "Origin": "https://app.callnfy.test", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "Authorization"})
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.callnfy.test"
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    other = guser.client.options("/integrations/google/connect", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_code_challenge_is_s256_of_the_verifier(guser):
    url = guser.auth_url()
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    import json

    saved = json.loads(redis_connection().get(f"callnfy:google:oauth-state:{query['state']}"))
    expected = base64.urlsafe_b64encode(hashlib.sha256(saved["code_verifier"].encode()).digest()).rstrip(b"=")
    assert query["code_challenge"] == expected.decode()
