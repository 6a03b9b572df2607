"""Connecting Microsoft 365 against the Microsoft sandbox over real HTTP: PKCE, the single-use state and
the browser binder, the stored (encrypted) tokens, refresh-token rotation, invalid_grant, disconnect and
the sync-mode setting."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from callnfy_integrations.extensions import db
from callnfy_integrations.integrations.models import CONNECTED, REAUTHORIZATION_REQUIRED
from callnfy_integrations.microsoft import tokens
from tests.microsoft_fixtures import SCOPES

EMAIL = "owner@example.com"


@pytest.mark.shows_status(("POST", "/integrations/microsoft/connect", "200"))
def test_connect_sends_the_browser_to_consent_with_pkce_and_stores_the_grant_encrypted(muser, ms_sandbox):
    response = muser.client.post("/integrations/microsoft/connect", headers=muser.headers)
    assert response.status_code == 200
    url = urlsplit(response.json["data"]["authUrl"])
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{ms_sandbox.url}/common/oauth2/v2.0/authorize"
    assert query["scope"] == SCOPES == "openid email offline_access User.Read Calendars.ReadWrite"
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert query["redirect_uri"] == "https://api.callnfy.test/integrations/microsoft/callback"
    assert query["response_type"] == "code" and query["state"]
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("callnfy_microsoft_oauth=") and "HttpOnly" in cookie
    assert "Path=/integrations/microsoft/callback" in cookie and "SameSite=Lax" in cookie

    assert muser.callback(muser.consent(response.json["data"]["authUrl"])) == {"success": "true"}
    assert muser.status() == {"connected": True, "email": EMAIL, "syncMode": "one-way", "lastSyncAt": None,
                              "syncError": None}
    row = muser.integration()
    assert row.status == CONNECTED and "Calendars.ReadWrite" in row.scopes.split()
    access, refresh = tokens.decrypt(row, tokens.ACCESS_FIELD), tokens.decrypt(row, tokens.REFRESH_FIELD)
    assert access.encode() not in bytes(row.access_token_encrypted)  # stored encrypted
    assert refresh.startswith("1.A") and refresh.encode() not in bytes(row.refresh_token_encrypted)
    assert ms_sandbox.api(access, "get", "/me").json()["mail"] == EMAIL  # the stored token works


def test_the_code_is_redeemed_with_the_verifier_of_the_urls_challenge(muser, ms_sandbox):
    auth_url = muser.auth_url()
    challenge = parse_qs(urlsplit(auth_url).query)["code_challenge"][0]
    assert muser.callback(muser.consent(auth_url)) == {"success": "true"}
    with ms_sandbox.state.lock:
        issued = [c for c in ms_sandbox.state.codes.values() if c["challenge"] == challenge]
    assert len(issued) == 1 and issued[0]["redeemed"]  # the sandbox checks S256(verifier) == challenge


def test_declining_consent_redirects_with_access_denied_and_stores_nothing(muser):
    assert muser.connect(decision="deny") == {"error": "access_denied"}
    assert muser.integration() is None
    assert muser.status() == {"connected": False}


def test_a_replayed_or_forged_state_is_refused(muser):
    path = muser.consent(muser.auth_url())
    assert muser.callback(path) == {"success": "true"}
    assert muser.callback(path) == {"error": "microsoft_auth_failed"}  # single use
    forged = path.replace("state=", "state=x", 1)
    assert muser.callback(forged) == {"error": "microsoft_auth_failed"}


def test_a_callback_in_a_browser_without_the_binder_cookie_is_refused(muser, microsoft_app):
    path = muser.consent(muser.auth_url())
    other_browser = microsoft_app.test_client()  # the victim's browser: no binder cookie
    response = other_browser.get(path)
    assert response.status_code == 302
    assert parse_qs(urlsplit(response.headers["Location"]).query) == {"error": ["microsoft_auth_failed"]}
    assert muser.integration() is None
    assert muser.callback(path) == {"error": "microsoft_auth_failed"}  # and the state is spent


@pytest.mark.shows_status(("POST", "/integrations/microsoft/connect", "409"))
def test_connect_when_connected_is_409_and_after_lapse_is_allowed(muser):
    assert muser.connect() == {"success": "true"}
    again = muser.client.post("/integrations/microsoft/connect", headers=muser.headers)
    assert again.status_code == 409 and again.json["error"]["code"] == "ALREADY_CONNECTED"
    row = muser.integration()
    row.status = REAUTHORIZATION_REQUIRED
    db.session.commit()
    assert muser.connect() == {"success": "true"}
    assert muser.status()["connected"] is True


def test_each_refresh_stores_the_rotated_refresh_token(muser, ms_sandbox):
    ms_sandbox.settings(access_token_lifetime=60)  # inside the 5-minute margin: every use refreshes
    assert muser.connect() == {"success": "true"}
    row = muser.integration()
    first_refresh = tokens.decrypt(row, tokens.REFRESH_FIELD)

    access = tokens.access_token(row.id)
    second_refresh = tokens.decrypt(muser.integration(), tokens.REFRESH_FIELD)
    assert second_refresh != first_refresh
    assert access == tokens.decrypt(muser.integration(), tokens.ACCESS_FIELD)
    assert ms_sandbox.api(access, "get", "/me").status_code == 200
    old = ms_sandbox.token(grant_type="refresh_token", refresh_token=first_refresh)
    assert old.status_code == 400 and old.json()["error"] == "invalid_grant"  # the old one is retired

    tokens.access_token(row.id)  # refreshing again uses the stored (rotated) one
    assert tokens.decrypt(muser.integration(), tokens.REFRESH_FIELD) not in (first_refresh, second_refresh)
    assert muser.status()["connected"] is True


def test_a_401_refreshes_once_and_asks_again(muser, ms_sandbox):
    assert muser.connect() == {"success": "true"}
    row = muser.integration()
    stale = tokens.decrypt(row, tokens.ACCESS_FIELD)
    with ms_sandbox.state.lock:
        ms_sandbox.state.access_tokens[stale]["revoked"] = True  # Graph now answers 401 to it
    seen = []

    def me(token):
        seen.append(token)
        from callnfy_integrations.microsoft import graph_api

        return graph_api.get(token, "/me")

    assert tokens.call(row.id, me)["mail"] == EMAIL
    assert seen[0] == stale and seen[1] != stale and len(seen) == 2


def test_invalid_grant_marks_the_connection_for_reauthorization(muser, ms_sandbox):
    ms_sandbox.settings(access_token_lifetime=60)
    assert muser.connect() == {"success": "true"}
    ms_sandbox.control("post", f"/revoke/{EMAIL}").raise_for_status()
    row = muser.integration()
    with pytest.raises(tokens.ReauthorizationRequired):
        tokens.access_token(row.id)
    assert muser.integration().status == REAUTHORIZATION_REQUIRED
    assert muser.status() == {"connected": False, "reauthorizationRequired": True, "email": EMAIL}
    calls = ms_sandbox.calls("token:refresh_token")
    with pytest.raises(tokens.ReauthorizationRequired):  # no further calls to Microsoft
        tokens.access_token(row.id)
    assert ms_sandbox.calls("token:refresh_token") == calls


@pytest.mark.shows_status(("DELETE", "/integrations/microsoft/disconnect", "200"))
def test_disconnect_forgets_the_connection_and_a_second_is_404(muser):
    assert muser.connect() == {"success": "true"}
    response = muser.client.delete("/integrations/microsoft/disconnect", headers=muser.headers)
    assert response.status_code == 200
    assert response.json == {"success": True, "message": "Microsoft Calendar disconnected successfully"}
    assert muser.integration() is None and muser.status() == {"connected": False}
    again = muser.client.delete("/integrations/microsoft/disconnect", headers=muser.headers)
    assert again.status_code == 404 and again.json["error"]["message"] == "Microsoft Calendar not connected"


@pytest.mark.shows_status(("PUT", "/integrations/microsoft/settings", "200"))
def test_settings_accept_one_way_and_two_way_and_refuse_anything_else(muser):
    put = lambda mode: muser.client.put("/integrations/microsoft/settings", json={"syncMode": mode},  # noqa: E731
                                        headers=muser.headers)
    assert put("one-way").status_code == 404  # not connected
    assert muser.connect() == {"success": "true"}
    assert put("one-way").json == {"success": True, "data": {"syncMode": "one-way"}}
    assert put("two-way").json == {"success": True, "data": {"syncMode": "two-way"}}  # a start is queued
    assert muser.status()["syncMode"] == "two-way"
    bad = put("sometimes")
    assert bad.status_code == 400
    assert bad.json["error"]["message"] == "Invalid sync mode. Must be 'one-way' or 'two-way'"
    assert put("one-way").json == {"success": True, "data": {"syncMode": "one-way"}}
    assert muser.status()["syncMode"] == "one-way"


def test_connect_without_credentials_is_500_with_the_contracts_message(muser, microsoft_app, monkeypatch):
    monkeypatch.setitem(microsoft_app.config, "MICROSOFT_CLIENT_ID", None)
    response = muser.client.post("/integrations/microsoft/connect", headers=muser.headers)
    assert response.status_code == 500 and response.json["error"]["message"] == "Failed to initiate Microsoft OAuth"


def test_a_token_endpoint_failure_redirects_with_microsoft_auth_failed(muser, ms_sandbox):
    path = muser.consent(muser.auth_url())
    ms_sandbox.control("post", "/fail", json={"endpoint": "token:authorization_code", "responses": [503]})
    assert muser.callback(path) == {"error": "microsoft_auth_failed"}
    assert muser.integration() is None


def test_a_grant_without_the_calendar_permission_is_not_stored(muser):
    assert muser.connect(scopes="openid email offline_access User.Read") == {"error": "missing_scope"}
    assert muser.integration() is None


