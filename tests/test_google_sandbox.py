"""The Google sandbox behaves as Google documents where the sync will depend on it."""

import threading

import pytest
import requests

from callnfy_integrations.dev.google_sandbox import CLIENT_ID, CLIENT_SECRET
from tests.loopback import QuietHandler, start
from tests.support import wait_for

DEFAULTS = {"notify": True, "token_delay": 0, "rotate_refresh_tokens": False, "write_delay": 0,
            "time_zones": {}}


EVENTS_SCOPE = "https://www.googleapis.com/auth/calendar.events"
LIST_SCOPE = "https://www.googleapis.com/auth/calendar.calendarlist.readonly"


def authorize(sandbox, offline: bool = False, email: str = "cal@example.com",
              scope: str = f"openid email {EVENTS_SCOPE}") -> dict:
    """The token response for `email`, obtained through the sandbox's own OAuth endpoints."""
    import base64
    import hashlib
    from urllib.parse import parse_qs, urlencode, urlsplit

    verifier = "v" * 64
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = urlencode({"client_id": CLIENT_ID, "response_type": "code", "redirect_uri": "http://localhost/cb",
                       "scope": scope, "state": "s",
                       "code_challenge": challenge, "code_challenge_method": "S256", "sandbox_decision": "allow",
                       "sandbox_email": email, **({"access_type": "offline"} if offline else {})})
    redirect = requests.get(f"{sandbox.url}/o/oauth2/v2/auth?{query}", allow_redirects=False, timeout=5)
    code = parse_qs(urlsplit(redirect.headers["Location"]).query)["code"][0]
    response = requests.post(f"{sandbox.url}/token", timeout=5, data={
        "grant_type": "authorization_code", "code": code, "code_verifier": verifier,
        "redirect_uri": "http://localhost/cb"}, auth=(CLIENT_ID, CLIENT_SECRET))
    return response.json()


def control(sandbox, method, path, **kwargs):
    return requests.request(method, f"{sandbox.url}/sandbox{path}", timeout=5, **kwargs)


@pytest.fixture
def token(sandbox):
    """An access token with the calendar scope; the (shared) sandbox is reset before and after."""
    control(sandbox, "post", "/reset")
    sandbox.settings(**DEFAULTS)
    body = authorize(sandbox)
    assert "refresh_token" not in body  # no access_type=offline: no refresh token, as Google
    yield body["access_token"]
    control(sandbox, "post", "/reset")  # scripted failures left over must not reach other modules' tests
    sandbox.settings(**DEFAULTS)


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

    class Handler(QuietHandler):
        def do_POST(self):  # noqa: N802
            received.append({k.lower(): v for k, v in self.headers.items()})
            self.send_response(200)
            self.end_headers()

    server = start(Handler)
    try:
        channel = api(sandbox, token, "post", "/calendars/primary/events/watch", json={
            "id": "chan-1", "type": "web_hook", "token": "secret-token",
            "address": f"http://127.0.0.1:{server.server_address[1]}/push"}).json()
        assert channel["id"] == "chan-1" and channel["resourceId"] and int(channel["expiration"]) > 0
        from tests.support import wait_for

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


def test_calendar_requires_a_bearer_with_the_calendar_scope(sandbox, token):
    response = requests.get(f"{sandbox.url}/calendar/v3/calendars/primary/events", timeout=5)
    assert response.status_code == 401 and response.json()["error"]["status"] == "UNAUTHENTICATED"
    assert sandbox.calls("events.list") == 1  # counted before authentication


EVENT = {"id": "booking01", "summary": "Cleaning", "description": "Booked by phone",
         "start": {"dateTime": "2026-12-01T10:00:00-05:00", "timeZone": "America/New_York"},
         "end": {"dateTime": "2026-12-01T10:30:00-05:00", "timeZone": "America/New_York"},
         "attendees": [{"email": "guest@example.com"}], "reminders": {"useDefault": False, "overrides": []},
         "extendedProperties": {"private": {"callnfyBookingId": "b-1", "source": "callnfy"}}}


def test_every_calendar_endpoint_is_counted_and_logged_with_its_query_and_body(sandbox, token):
    sandbox.settings(notify=False)  # the watch address below does not exist
    path, one = "/calendars/primary/events", "/calendars/primary/events/booking01"
    assert api(sandbox, token, "post", path, json=EVENT, params={"sendUpdates": "all"}).status_code == 200
    assert api(sandbox, token, "get", one).json()["extendedProperties"] == EVENT["extendedProperties"]
    assert api(sandbox, token, "put", one, json={**EVENT, "summary": "Moved"}).status_code == 200
    assert api(sandbox, token, "patch", one, json={"description": "x"}, params={"sendUpdates": "none"}).ok
    assert api(sandbox, token, "get", path, params={"maxResults": 10}).status_code == 200
    channel = api(sandbox, token, "post", f"{path}/watch",
                  json={"id": "chan-log", "type": "web_hook", "address": "http://127.0.0.1:9/push"}).json()
    assert api(sandbox, token, "post", "/channels/stop",
               json={"id": "chan-log", "resourceId": channel["resourceId"]}).status_code == 204
    assert api(sandbox, token, "delete", one, params={"sendUpdates": "all"}).status_code == 204

    names = ["events.insert", "events.get", "events.update", "events.patch", "events.list", "events.watch",
             "channels.stop", "events.delete"]
    assert control(sandbox, "get", "/calls").json() == {"token:authorization_code": 1,  # the token fixture
                                                        **{name: 1 for name in names}}
    log = control(sandbox, "get", "/requests").json()
    assert [entry["endpoint"] for entry in log] == names
    assert log[0] == {"endpoint": "events.insert", "method": "POST", "query": {"sendUpdates": "all"},
                      "path": "/calendar/v3/calendars/primary/events", "body": EVENT}
    assert (log[2]["method"], log[3]["method"], log[3]["query"]) == ("PUT", "PATCH", {"sendUpdates": "none"})
    assert log[4]["query"] == {"maxResults": "10"} and log[4]["body"] is None
    assert log[7]["query"] == {"sendUpdates": "all"} and log[7]["path"].endswith("/events/booking01")


def test_insert_update_and_patch_keep_fields_as_sent_and_update_restores_a_cancelled_event(sandbox, token):
    path = "/calendars/primary/events/booking01"
    created = api(sandbox, token, "post", "/calendars/primary/events", json=EVENT).json()
    assert {k: created[k] for k in EVENT} == EVENT and created["status"] == "confirmed"
    assert api(sandbox, token, "delete", path).status_code == 204
    assert api(sandbox, token, "delete", path).status_code == 410
    restored = api(sandbox, token, "put", path, json={**EVENT, "summary": "Back"}).json()
    assert restored["status"] == "confirmed" and restored["summary"] == "Back"  # update defaults to confirmed
    assert {k: restored[k] for k in EVENT} == {**EVENT, "summary": "Back"}
    # Patch semantics: objects merge, null removes a field, arrays replace.
    patched = api(sandbox, token, "patch", path, json={
        "extendedProperties": {"private": {"source": None, "syncedAt": "1"}}, "attendees": [],
        "description": None}).json()
    assert patched["extendedProperties"] == {"private": {"callnfyBookingId": "b-1", "syncedAt": "1"}}
    assert patched["attendees"] == [] and "description" not in patched and patched["start"] == EVENT["start"]
    kept_cancelled = api(sandbox, token, "put", path, json={**EVENT, "status": "cancelled"}).json()
    assert kept_cancelled["status"] == "cancelled"  # unless the body says otherwise

    stored = control(sandbox, "get", "/events/cal@example.com").json()
    assert [(e["id"], e["status"]) for e in stored] == [("booking01", "cancelled")]
    assert stored[0]["etag"] == kept_cancelled["etag"] and not any(k.startswith("_") for k in stored[0])
    assert control(sandbox, "get", "/events/nobody@example.com").json() == []
    assert api(sandbox, token, "delete", "/calendars/primary/events/unknown01").json()["error"]["errors"][0][
        "reason"] == "notFound"


def test_scripted_failures_answer_in_order_in_google_s_shape_then_the_endpoint_works(sandbox, token):
    response = control(sandbox, "post", "/fail", json={"endpoint": "events.insert", "responses": [
        {"status": 429, "reason": "rateLimitExceeded", "retryAfter": 2}, {"status": 503}], "delay": 0})
    assert response.json() == {"endpoint": "events.insert", "pending": 2}
    limited = api(sandbox, token, "post", "/calendars/primary/events", json=EVENT)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "2"
    assert limited.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert limited.json()["error"]["errors"][0] == {"domain": "usageLimits", "reason": "rateLimitExceeded",
                                                    "message": "Rate Limit Exceeded"}
    unavailable = api(sandbox, token, "post", "/calendars/primary/events", json=EVENT)
    assert unavailable.status_code == 503 and "Retry-After" not in unavailable.headers
    assert unavailable.json()["error"]["errors"][0]["reason"] == "backendError"
    assert control(sandbox, "get", "/events/cal@example.com").json() == []  # failures did no work
    assert api(sandbox, token, "post", "/calendars/primary/events", json=EVENT).status_code == 200
    assert sandbox.calls("events.insert") == 3 and len(control(sandbox, "get", "/requests").json()) == 3

    # The Python helper; a scripted 404 is the real 404, byte for byte.
    sandbox.state.script("events.get", 404)
    scripted = api(sandbox, token, "get", "/calendars/primary/events/booking01")
    real = api(sandbox, token, "get", "/calendars/primary/events/nothere01")
    assert (scripted.status_code, scripted.json()) == (real.status_code, real.json()) == (404, real.json())
    assert sandbox.state.failures == {"events.insert": [], "events.get": []}


def test_a_held_call_times_the_client_out_without_blocking_other_requests(sandbox, token):
    """No clock: the held call is still waiting in the sandbox (it says so) while another is answered."""
    control(sandbox, "post", "/hold", json={"endpoint": "events.get"}).raise_for_status()
    try:
        with pytest.raises(requests.Timeout):
            requests.get(f"{sandbox.url}/calendar/v3/calendars/primary/events/abcde01", timeout=0.3,
                         headers={"Authorization": f"Bearer {token}"})
        assert api(sandbox, token, "get", "/calendars/primary/events").status_code == 200
        assert control(sandbox, "get", "/hold").json() == {"events.get": 1}  # still waiting meanwhile
    finally:
        control(sandbox, "delete", "/hold")


def test_a_scripted_sleep_stalls_the_answer_until_the_client_gives_up(sandbox, token):
    sandbox.state.script("events.get", {"status": 503, "sleep": 3})
    with pytest.raises(requests.Timeout):
        requests.get(f"{sandbox.url}/calendar/v3/calendars/primary/events/abcde01", timeout=0.3,
                     headers={"Authorization": f"Bearer {token}"})
    assert sandbox.calls("events.get") == 1


@pytest.mark.slow
def test_write_delay_is_slept_outside_the_lock(sandbox, token):
    """The write waits 3 s before it writes; meanwhile a read (allowed 2 s) answers without it. Were the
    delay slept holding the lock, the read would time out."""
    sandbox.settings(write_delay=3)
    writer = threading.Thread(target=api, args=(sandbox, token, "post", "/calendars/primary/events"),
                              kwargs={"json": {"id": "late00001"}})
    writer.start()
    wait_for(lambda: sandbox.calls("events.insert") == 1)  # counted on arrival, before the delay
    read = requests.get(f"{sandbox.url}/calendar/v3/calendars/primary/events", timeout=2,
                        headers={"Authorization": f"Bearer {token}"})
    assert read.json()["items"] == []  # not written yet
    writer.join()
    assert [e["id"] for e in control(sandbox, "get", "/events/cal@example.com").json()] == ["late00001"]


def test_token_responses_are_not_cached(sandbox, token):
    tokens = authorize(sandbox, offline=True)
    response = requests.post(f"{sandbox.url}/token", auth=(CLIENT_ID, CLIENT_SECRET), timeout=5,
                             data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert response.status_code == 200 and response.json()["access_token"]
    assert (response.headers["Cache-Control"], response.headers["Pragma"]) == ("no-store", "no-cache")


def test_scripted_oauth_failures_look_exactly_like_real_ones(sandbox, token):
    tokens = authorize(sandbox, offline=True)
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}

    def post_refresh():
        return requests.post(f"{sandbox.url}/token", data=refresh, auth=(CLIENT_ID, CLIENT_SECRET), timeout=5)

    def post_revoke():
        return requests.post(f"{sandbox.url}/revoke", data={"token": tokens["refresh_token"]}, timeout=5)

    control(sandbox, "post", "/fail", json={"endpoint": "token:refresh_token",
                                            "responses": [{"status": 400, "reason": "invalid_grant"}]})
    scripted_grant = post_refresh()
    assert post_refresh().status_code == 200  # the refresh token was never revoked

    sandbox.state.script("revoke", {"status": 503, "retryAfter": "30"})
    unavailable = post_revoke()
    assert unavailable.status_code == 503 and unavailable.headers["Retry-After"] == "30"
    assert unavailable.json() == {"error": "server_error", "error_description": "Internal error"}
    assert post_refresh().status_code == 200  # still valid: the scripted revoke did nothing
    assert post_revoke().status_code == 200

    real_grant = post_refresh()
    assert (scripted_grant.status_code, scripted_grant.json(), scripted_grant.headers["Content-Type"]) == \
        (real_grant.status_code, real_grant.json(), real_grant.headers["Content-Type"])
    assert real_grant.json() == {"error": "invalid_grant",
                                 "error_description": "Token has been expired or revoked."}
    assert sandbox.calls("token:refresh_token") == 4 and sandbox.calls("revoke") == 2
    log = control(sandbox, "get", "/requests").json()
    assert [(e["endpoint"], e["form"]) for e in log] == [("revoke", {"token": tokens["refresh_token"]})] * 2
    assert log[0]["body"] is None and log[0]["method"] == "POST"


def test_fail_rejects_unknown_endpoints_and_non_error_statuses(sandbox, token):
    def fail(endpoint, *responses):
        return control(sandbox, "post", "/fail", json={"endpoint": endpoint, "responses": list(responses)})

    assert fail("events.instert", 503).status_code == 400
    assert fail("events.insert", 200).status_code == 400
    bad_key = fail("revoke", {"status": 503, "retry_after": 1})
    assert bad_key.status_code == 400 and "retry_after" in bad_key.json()["error"]
    assert sandbox.state.failures == {}


def test_events_list_reports_the_calendar_time_zone(sandbox, token):
    assert api(sandbox, token, "get", "/calendars/primary/events").json()["timeZone"] == "Europe/London"
    sandbox.settings(time_zones={"cal@example.com": "America/New_York"})
    assert api(sandbox, token, "get", "/calendars/primary/events").json()["timeZone"] == "America/New_York"


def test_reset_forgets_calendars_and_test_bookkeeping_but_not_tokens(sandbox, token):
    sandbox.settings(notify=False)
    api(sandbox, token, "post", "/calendars/primary/events", json={"id": "reset0001"})
    api(sandbox, token, "post", "/calendars/primary/events/watch",
        json={"id": "chan-reset", "type": "web_hook", "address": "http://127.0.0.1:9/push"})
    sync_token = api(sandbox, token, "get", "/calendars/primary/events").json()["nextSyncToken"]
    sandbox.state.script("events.delete", 500)
    assert control(sandbox, "post", "/reset").status_code == 204

    assert control(sandbox, "get", "/calls").json() == {}
    assert control(sandbox, "get", "/requests").json() == []
    assert control(sandbox, "get", "/channels").json() == [] and sandbox.state.failures == {}
    assert control(sandbox, "get", "/events/cal@example.com").json() == []
    stale = api(sandbox, token, "get", "/calendars/primary/events", params={"syncToken": sync_token})
    assert stale.status_code == 410  # the token still authenticates; the sync token is gone
    assert api(sandbox, token, "delete", "/calendars/primary/events/reset0001").status_code == 404


def test_revoking_one_token_ends_every_token_of_that_account_and_client(sandbox, token):
    """Google revokes per account and client: a second consent is the same grant, and ends with the first."""
    def refresh(refresh_token):
        return requests.post(f"{sandbox.url}/token", timeout=5, auth=(CLIENT_ID, CLIENT_SECRET), data={
            "grant_type": "refresh_token", "refresh_token": refresh_token})

    first, second = authorize(sandbox, offline=True), authorize(sandbox, offline=True)
    other = authorize(sandbox, offline=True, email="someone@example.com")
    assert requests.post(f"{sandbox.url}/revoke", data={"token": first["refresh_token"]}, timeout=5).status_code == 200
    for grant in (first, second):
        assert refresh(grant["refresh_token"]).json()["error"] == "invalid_grant"
        assert api(sandbox, grant["access_token"], "get", "/calendars/primary/events").status_code == 401
    assert refresh(other["refresh_token"]).status_code == 200  # another account's grant lives on
    assert api(sandbox, other["access_token"], "get", "/calendars/primary/events").status_code == 200
    again = authorize(sandbox, offline=True)  # a consent after the revocation is a new grant
    assert refresh(again["refresh_token"]).status_code == 200


def new_calendar(sandbox, email: str, summary: str, zone: str) -> str:
    created = control(sandbox, "post", f"/user/{email}/calendars", json={"summary": summary, "timeZone": zone})
    assert created.status_code == 201, created.text
    assert created.json()["id"].endswith("@group.calendar.google.com")
    return created.json()["id"]


def test_calendar_list_names_the_owner_s_calendars_in_pages(sandbox, token):
    lister = authorize(sandbox, scope=f"openid email {EVENTS_SCOPE} {LIST_SCOPE}")["access_token"]
    work = new_calendar(sandbox, "cal@example.com", "Work", "America/New_York")
    clinic = new_calendar(sandbox, "cal@example.com", "Clinic", "Europe/Paris")
    new_calendar(sandbox, "someone@example.com", "Not yours", "Europe/London")
    sandbox.settings(time_zones={"cal@example.com": "Europe/Berlin"})

    first = api(sandbox, lister, "get", "/users/me/calendarList", params={"maxResults": 2})
    assert first.status_code == 200 and first.json()["kind"] == "calendar#calendarList"
    assert "nextSyncToken" not in first.json()
    second = api(sandbox, lister, "get", "/users/me/calendarList",
                 params={"maxResults": 2, "pageToken": first.json()["nextPageToken"]}).json()
    assert "nextPageToken" not in second and second["nextSyncToken"]
    items = first.json()["items"] + second["items"]
    assert [(i["id"], i["summary"], i["timeZone"], i.get("primary", False)) for i in items] == [
        ("cal@example.com", "cal@example.com", "Europe/Berlin", True), (work, "Work", "America/New_York", False),
        (clinic, "Clinic", "Europe/Paris", False)]
    assert all(i["accessRole"] == "owner" and i["selected"] is True and i["kind"] == "calendar#calendarListEntry"
               for i in items)
    assert control(sandbox, "get", "/calls").json()["calendarList.list"] == 2
    assert api(sandbox, lister, "get", "/users/me/calendarList", params={"maxResults": 251}).status_code == 400


def test_calendar_list_needs_its_scope_and_answers_google_s_403_without_it(sandbox, token):
    refused = api(sandbox, token, "get", "/users/me/calendarList")  # granted calendar.events only
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert (error["code"], error["message"], error["status"]) == (
        403, "Request had insufficient authentication scopes.", "PERMISSION_DENIED")
    assert error["errors"] == [{"message": "Insufficient Permission", "domain": "global",
                                "reason": "insufficientPermissions"}]
    assert 'error="insufficient_scope"' in refused.headers["WWW-Authenticate"]
    assert api(sandbox, "ya29.unknown", "get", "/users/me/calendarList").status_code == 401
    for scope in ("https://www.googleapis.com/auth/calendar.readonly", "https://www.googleapis.com/auth/calendar"):
        broader = authorize(sandbox, scope=f"openid email {scope}")["access_token"]
        assert api(sandbox, broader, "get", "/users/me/calendarList").status_code == 200


def test_a_secondary_calendar_has_its_own_events_zone_and_owner(sandbox, token):
    work = new_calendar(sandbox, "cal@example.com", "Work", "America/New_York")
    path = f"/user/cal@example.com/calendars/{work}/events"
    event = control(sandbox, "post", path, json={
        "summary": "Standup", "start": {"dateTime": "2026-12-01T09:00:00-05:00"},
        "end": {"dateTime": "2026-12-01T09:30:00-05:00"}, "recurrence": ["RRULE:FREQ=DAILY;COUNT=3"]}).json()
    control(sandbox, "post", "/user/cal@example.com/events", json={  # on the primary calendar
        "summary": "Dentist", "start": {"dateTime": "2026-12-01T12:00:00Z"},
        "end": {"dateTime": "2026-12-01T13:00:00Z"}})

    window = {"timeMin": "2026-12-01T00:00:00Z", "timeMax": "2026-12-02T23:59:00Z", "singleEvents": "true"}
    listed = api(sandbox, token, "get", f"/calendars/{work}/events", params=window).json()
    assert listed["timeZone"] == "America/New_York"
    assert [i["recurringEventId"] for i in listed["items"]] == [event["id"], event["id"]]  # two of three days
    primary = api(sandbox, token, "get", "/calendars/primary/events", params=window).json()["items"]
    assert [i["summary"] for i in primary] == ["Dentist"]

    inserted = api(sandbox, token, "post", f"/calendars/{work}/events", json={
        "summary": "Booked", "start": {"dateTime": "2026-12-03T15:00:00Z"},
        "end": {"dateTime": "2026-12-03T15:30:00Z"}})
    assert inserted.status_code == 200
    assert control(sandbox, "patch", f"{path}/{inserted.json()['id']}", json={"summary": "Moved"}).status_code == 200
    assert control(sandbox, "get", f"/events/{work}").json()[-1]["summary"] == "Moved"
    assert control(sandbox, "delete", f"{path}/{event['id']}").status_code == 204

    other = authorize(sandbox, email="someone@example.com")["access_token"]
    assert api(sandbox, other, "get", f"/calendars/{work}/events").status_code == 404
    assert api(sandbox, other, "post", f"/calendars/{work}/events", json={"summary": "x"}).status_code == 404
    assert control(sandbox, "post", f"/user/someone@example.com/calendars/{work}/events", json={}).status_code == 404
    assert api(sandbox, token, "get", "/calendars/nope@group.calendar.google.com/events").status_code == 404
