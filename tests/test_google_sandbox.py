"""The Google sandbox behaves as Google documents where the sync will depend on it."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from callnfy_integrations.google_sandbox import CLIENT_ID, CLIENT_SECRET
from tests.google_fixtures import sandbox  # noqa: F401


@pytest.fixture
def token(sandbox):
    sandbox.settings(notify=True, token_delay=0, rotate_refresh_tokens=False)
    """An access token with the calendar scope, obtained through the sandbox's own OAuth endpoints."""
    import base64
    import hashlib
    from urllib.parse import parse_qs, urlencode, urlsplit

    verifier = "v" * 64
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = urlencode({"client_id": CLIENT_ID, "response_type": "code", "redirect_uri": "http://localhost/cb",
                       "scope": "openid email https://www.googleapis.com/auth/calendar.events", "state": "s",
                       "code_challenge": challenge, "code_challenge_method": "S256", "sandbox_decision": "allow",
                       "sandbox_email": "cal@example.com"})
    redirect = requests.get(f"{sandbox.url}/o/oauth2/v2/auth?{query}", allow_redirects=False, timeout=5)
    code = parse_qs(urlsplit(redirect.headers["Location"]).query)["code"][0]
    response = requests.post(f"{sandbox.url}/token", timeout=5, data={
        "grant_type": "authorization_code", "code": code, "code_verifier": verifier,
        "redirect_uri": "http://localhost/cb"}, auth=(CLIENT_ID, CLIENT_SECRET))
    assert "refresh_token" not in response.json()  # no access_type=offline: no refresh token, as Google
    return response.json()["access_token"]


def api(sandbox, token, method, path, **kwargs):
    return requests.request(method, f"{sandbox.url}/calendar/v3{path}", timeout=5,
                            headers={"Authorization": f"Bearer {token}"}, **kwargs)


def test_insert_with_client_id_then_duplicate_is_409(sandbox, token):
    event = {"id": "ca11f0abc123", "summary": "Cleaning", "start": {"dateTime": "2026-12-01T10:00:00Z"},
             "end": {"dateTime": "2026-12-01T10:30:00Z"}}
    created = api(sandbox, token, "post", "/calendars/primary/events", json=event)
    assert created.status_code == 200 and created.json()["id"] == "ca11f0abc123" and created.json()["etag"]
    again = api(sandbox, token, "post", "/calendars/primary/events", json=event)
    assert again.status_code == 409 and again.json()["error"]["errors"][0]["reason"] == "duplicate"
    bad = api(sandbox, token, "post", "/calendars/primary/events", json={**event, "id": "UPPER-case"})
    assert bad.status_code == 400


def test_patch_changes_the_etag_and_delete_twice_is_410(sandbox, token):
    created = api(sandbox, token, "post", "/calendars/primary/events", json={"id": "evt00001", "summary": "a"}).json()
    patched = api(sandbox, token, "patch", "/calendars/primary/events/evt00001", json={"summary": "b"}).json()
    assert patched["summary"] == "b" and patched["etag"] != created["etag"]
    assert api(sandbox, token, "delete", "/calendars/primary/events/evt00001").status_code == 204
    gone = api(sandbox, token, "delete", "/calendars/primary/events/evt00001")
    assert gone.status_code == 410 and gone.json()["error"]["errors"][0]["reason"] == "deleted"
    assert api(sandbox, token, "get", "/calendars/primary/events/nothere1").status_code == 404


def test_list_pages_then_sync_token_returns_only_changes(sandbox, token):
    for n in range(5):
        api(sandbox, token, "post", "/calendars/primary/events", json={"id": f"page{n:04d}", "summary": str(n)})
    first = api(sandbox, token, "get", "/calendars/primary/events", params={"maxResults": 3}).json()
    assert len(first["items"]) == 3 and "nextPageToken" in first and "nextSyncToken" not in first
    rest = api(sandbox, token, "get", "/calendars/primary/events",
               params={"maxResults": 3, "pageToken": first["nextPageToken"]}).json()
    assert "nextSyncToken" in rest
    api(sandbox, token, "patch", "/calendars/primary/events/page0001", json={"summary": "changed"})
    api(sandbox, token, "delete", "/calendars/primary/events/page0002")
    changes = api(sandbox, token, "get", "/calendars/primary/events",
                  params={"syncToken": rest["nextSyncToken"]}).json()
    assert {(e["id"], e["status"]) for e in changes["items"]} == {("page0001", "confirmed"),
                                                                   ("page0002", "cancelled")}
    stale = api(sandbox, token, "get", "/calendars/primary/events", params={"syncToken": "bogus"})
    assert stale.status_code == 410 and stale.json()["error"]["errors"][0]["reason"] == "fullSyncRequired"


def test_watch_sends_sync_then_exists_notifications_and_stop_ends_them(sandbox, token):
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            received.append({k.lower(): v for k, v in self.headers.items()})
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        channel = api(sandbox, token, "post", "/calendars/primary/events/watch", json={
            "id": "chan-1", "type": "web_hook", "token": "secret-token",
            "address": f"http://127.0.0.1:{server.server_address[1]}/push"}).json()
        assert channel["id"] == "chan-1" and channel["resourceId"] and int(channel["expiration"]) > 0
        from tests.conftest import wait_for

        wait_for(lambda: len(received) == 1, timeout=5)
        assert received[0]["x-goog-resource-state"] == "sync" and received[0]["x-goog-channel-token"] == "secret-token"
        api(sandbox, token, "post", "/calendars/primary/events", json={"id": "abc00001"})
        wait_for(lambda: len(received) == 2, timeout=5)
        assert (received[1]["x-goog-resource-state"], received[1]["x-goog-message-number"]) == ("exists", "2")
        stop = api(sandbox, token, "post", "/channels/stop", json={"id": "chan-1", "resourceId": channel["resourceId"]})
        assert stop.status_code == 204
        assert api(sandbox, token, "post", "/channels/stop",
                   json={"id": "chan-1", "resourceId": channel["resourceId"]}).status_code == 404
    finally:
        server.shutdown()


def test_calendar_requires_a_bearer_with_the_calendar_scope(sandbox):
    response = requests.get(f"{sandbox.url}/calendar/v3/calendars/primary/events", timeout=5)
    assert response.status_code == 401 and response.json()["error"]["status"] == "UNAUTHENTICATED"
