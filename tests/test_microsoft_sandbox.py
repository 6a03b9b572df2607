"""The Microsoft sandbox behaves as the identity platform and Graph document it where a provider will
depend on it: OAuth with PKCE and refresh-token rotation, transactionId, calendarView expansion, delta
links, subscriptions with the validation handshake, notifications and lifecycle events, failures."""

from datetime import UTC, datetime, timedelta

import pytest
import requests

from callnfy_integrations.dev.microsoft_sandbox import CLIENT_ID
from tests.microsoft_fixtures import SCOPES
from tests.support import wait_for

EMAIL = "owner@example.com"
EVENT = {"subject": "Cleaning", "body": {"contentType": "text", "content": "Booked by phone"},
         "start": {"dateTime": "2026-12-01T10:00:00", "timeZone": "Eastern Standard Time"},
         "end": {"dateTime": "2026-12-01T10:30:00", "timeZone": "Eastern Standard Time"},
         "attendees": [{"emailAddress": {"address": "guest@example.com", "name": "Guest"}, "type": "required"}]}


@pytest.fixture
def sandbox(ms_sandbox):
    ms_sandbox.fresh()
    yield ms_sandbox
    ms_sandbox.fresh()  # scripted failures left over must not reach other tests


@pytest.fixture
def token(sandbox):
    return sandbox.tokens()["access_token"]


def in_minutes(minutes: float) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# -- identity platform ---------------------------------------------------------------------------------

def test_code_flow_checks_pkce_redeems_a_code_once_and_answers_in_entra_s_shape(sandbox):
    code, verifier = sandbox.authorize()
    wrong = sandbox.token(grant_type="authorization_code", code=code, code_verifier="x" * 43,
                          redirect_uri="http://localhost/cb")
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    assert wrong.json()["error_codes"] == [501481] and wrong.json()["error_description"].startswith("AADSTS501481:")
    assert {"timestamp", "trace_id", "correlation_id", "error_uri"} <= set(wrong.json())

    granted = sandbox.token(grant_type="authorization_code", code=code, code_verifier=verifier,
                            redirect_uri="http://localhost/cb")
    body = granted.json()
    assert granted.status_code == 200 and body["token_type"] == "Bearer" and body["refresh_token"]
    assert body["scope"].split() == ["openid", "email", "User.Read", "Calendars.ReadWrite"]  # no offline_access
    assert body["expires_in"] == 3599 and granted.headers["Cache-Control"].startswith("no-store")

    again = sandbox.token(grant_type="authorization_code", code=code, code_verifier=verifier,
                          redirect_uri="http://localhost/cb")
    assert again.json()["error"] == "invalid_grant" and again.json()["error_codes"] == [54005]
    bad_client = sandbox.token(grant_type="refresh_token", refresh_token=body["refresh_token"], client_secret="no")
    assert bad_client.status_code == 401 and bad_client.json()["error"] == "invalid_client"
    online = sandbox.tokens(scopes="openid User.Read Calendars.ReadWrite")
    assert "refresh_token" not in online  # no offline_access, no refresh token


def test_consent_page_allows_or_denies_back_to_the_redirect_uri(sandbox):
    code, _ = sandbox.authorize()  # the query mode; the page posts the same decision
    assert code
    params = {"client_id": CLIENT_ID, "response_type": "code",
              "redirect_uri": "http://localhost/cb", "scope": SCOPES, "state": "st-1", "code_challenge": "c" * 43,
              "code_challenge_method": "S256"}
    page = requests.get(f"{sandbox.authority}/authorize", params=params, timeout=5)
    assert page.status_code == 200 and 'id="allow"' in page.text and 'id="deny"' in page.text
    denied = requests.post(f"{sandbox.authority}/authorize/decision", data={**params, "sandbox_decision": "deny"},
                           allow_redirects=False, timeout=5)
    location = denied.headers["Location"]
    assert location.startswith("http://localhost/cb?") and "error=access_denied" in location
    assert "state=st-1" in location and "AADSTS65004" in requests.utils.unquote(location)
    no_pkce = requests.get(f"{sandbox.authority}/authorize", timeout=5,
                           params={**params, "code_challenge_method": "plain"})
    assert no_pkce.status_code == 400


def test_refresh_rotates_the_refresh_token_and_the_old_one_stops_working(sandbox):
    first = sandbox.tokens()
    second = sandbox.token(grant_type="refresh_token", refresh_token=first["refresh_token"]).json()
    assert second["refresh_token"] != first["refresh_token"] and second["access_token"] != first["access_token"]
    stale = sandbox.token(grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert stale.status_code == 400 and stale.json()["error"] == "invalid_grant"
    assert stale.json()["error_codes"] == [70000]
    third = sandbox.token(grant_type="refresh_token", refresh_token=second["refresh_token"])
    assert third.status_code == 200 and third.json()["refresh_token"] not in (first["refresh_token"],
                                                                               second["refresh_token"])
    sandbox.settings(refresh_token_grace=30)  # a grace: the replaced token still works for a while
    fourth = sandbox.token(grant_type="refresh_token", refresh_token=third.json()["refresh_token"])
    assert sandbox.token(grant_type="refresh_token", refresh_token=third.json()["refresh_token"]).status_code == 200
    assert fourth.status_code == 200


def test_revoked_consent_is_invalid_grant_50173_and_graph_401(sandbox):
    tokens = sandbox.tokens()
    assert sandbox.api(tokens["access_token"], "get", "/me").status_code == 200
    assert sandbox.control("post", f"/revoke/{EMAIL}").status_code == 204
    refused = sandbox.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert refused.json()["error"] == "invalid_grant" and refused.json()["error_codes"] == [50173]
    unauthorized = sandbox.api(tokens["access_token"], "get", "/me/events")
    assert unauthorized.status_code == 401
    assert unauthorized.json()["error"]["code"] == "InvalidAuthenticationToken"


# -- Graph: user, settings, calendars -------------------------------------------------------------------

def test_me_calendars_and_mailbox_settings_need_their_scopes(sandbox, token):
    me = sandbox.api(token, "get", "/me").json()
    assert me["mail"] == me["userPrincipalName"] == EMAIL and me["id"] and me["displayName"] == "Owner"
    calendars = sandbox.api(token, "get", "/me/calendars").json()["value"]
    assert [(c["name"], c["isDefaultCalendar"], c["canEdit"]) for c in calendars] == [("Calendar", True, True)]
    assert calendars[0]["owner"] == {"name": "Owner", "address": EMAIL}
    denied = sandbox.api(token, "get", "/me/mailboxSettings")  # MailboxSettings.Read is not in SCOPES
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "ErrorAccessDenied"
    sandbox.settings(time_zones={EMAIL: "Pacific Standard Time"})
    allowed = sandbox.tokens(scopes=SCOPES + " MailboxSettings.Read")["access_token"]
    assert sandbox.api(allowed, "get", "/me/mailboxSettings").json()["timeZone"] == "Pacific Standard Time"
    assert sandbox.api(allowed, "get", "/me/mailboxSettings/timeZone").json()["value"] == "Pacific Standard Time"
    assert requests.get(f"{sandbox.graph}/me", timeout=5).status_code == 401
    assert sandbox.calls("me.get") == 2  # counted before authentication


# -- events ---------------------------------------------------------------------------------------------

def test_a_retried_create_with_the_same_transaction_id_returns_the_first_event(sandbox, token):
    body = {**EVENT, "transactionId": "callnfy-appt-1-v1"}
    first = sandbox.api(token, "post", "/me/events", json=body)
    retried = sandbox.api(token, "post", "/me/events", json=body)
    assert first.status_code == retried.status_code == 201
    assert retried.json()["id"] == first.json()["id"] and first.json()["transactionId"] == "callnfy-appt-1-v1"
    other = sandbox.api(token, "post", "/me/events", json={**body, "transactionId": "callnfy-appt-2-v1"})
    assert other.json()["id"] != first.json()["id"]
    plain = [sandbox.api(token, "post", "/me/events", json=EVENT).json()["id"] for _ in range(2)]
    assert plain[0] != plain[1]  # without a transactionId, a retry is a second event
    assert len(sandbox.events()) == 4


def test_events_are_answered_in_utc_or_the_preferred_zone_and_patch_delete_404(sandbox, token):
    created = sandbox.api(token, "post", "/me/events", json=EVENT).json()
    assert created["start"] == {"dateTime": "2026-12-01T15:00:00.0000000", "timeZone": "UTC"}
    assert created["originalStartTimeZone"] == "Eastern Standard Time" and created["type"] == "singleInstance"
    assert created["showAs"] == "busy" and created["isOrganizer"] and not created["isCancelled"]
    assert created["attendees"][0]["status"] == {"response": "none", "time": "0001-01-01T00:00:00Z"}
    assert created["organizer"]["emailAddress"]["address"] == EMAIL and created["bodyPreview"] == "Booked by phone"
    one = f"/me/events/{created['id']}"
    local = sandbox.api(token, "get", one, headers={"Prefer": 'outlook.timezone="Pacific Standard Time"'})
    assert local.json()["start"] == {"dateTime": "2026-12-01T07:00:00.0000000", "timeZone": "Pacific Standard Time"}
    assert local.headers["Preference-Applied"] == 'outlook.timezone="Pacific Standard Time"'

    patched = sandbox.api(token, "patch", one, json={"subject": "Moved", "showAs": "tentative",
                                                     "start": {"dateTime": "2026-12-01T11:00:00", "timeZone": "UTC"}})
    assert patched.status_code == 200 and patched.json()["subject"] == "Moved"
    assert patched.json()["changeKey"] != created["changeKey"] and patched.json()["showAs"] == "tentative"
    assert patched.json()["end"] == created["end"]  # only what the PATCH names changes
    inverted = sandbox.api(token, "patch", one, json={"start": {"dateTime": "2026-12-02T11:00:00", "timeZone": "UTC"}})
    assert inverted.status_code == 400 and sandbox.api(token, "get", one).json()["subject"] == "Moved"
    backwards = sandbox.api(token, "post", "/me/events", json={**EVENT, "end": EVENT["start"] | {
        "dateTime": "2026-12-01T09:00:00"}})
    assert backwards.status_code == 400
    assert backwards.json()["error"]["code"] == "ErrorCalendarEndDateIsEarlierThanStartDate"
    bad_zone = sandbox.api(token, "post", "/me/events", json={**EVENT, "start": {"dateTime": "2026-12-01T09:00:00",
                                                                                 "timeZone": "Mars/Base"}})
    assert bad_zone.status_code == 400 and bad_zone.json()["error"]["code"] == "TimeZoneNotSupportedException"

    assert sandbox.api(token, "delete", one).status_code == 204
    gone = sandbox.api(token, "delete", one)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "ErrorItemNotFound"
    assert set(gone.json()["error"]["innerError"]) == {"date", "request-id", "client-request-id"}
    assert sandbox.api(token, "get", one).status_code == 404
    assert sandbox.api(token, "post", "/me/calendars/nope/events", json=EVENT).status_code == 404


def test_extended_properties_are_returned_only_when_expanded(sandbox, token):
    prop = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name callnfyAppointmentId"
    created = sandbox.api(token, "post", "/me/events", json={
        **EVENT, "singleValueExtendedProperties": [{"id": prop, "value": "appt-1"}]}).json()
    assert "singleValueExtendedProperties" not in created
    expanded = sandbox.api(token, "get", f"/me/events/{created['id']}",
                           params={"$expand": f"singleValueExtendedProperties($filter=id eq '{prop}')"}).json()
    assert expanded["singleValueExtendedProperties"] == [{"id": prop, "value": "appt-1"}]
    sandbox.api(token, "patch", f"/me/events/{created['id']}", json={"subject": "x"})
    assert sandbox.events()[0]["singleValueExtendedProperties"] == [{"id": prop, "value": "appt-1"}]  # PATCH kept it


# -- calendarView and delta -----------------------------------------------------------------------------

WEEKLY = {"subject": "Standup", "start": {"dateTime": "2026-11-02T09:00:00", "timeZone": "GMT Standard Time"},
          "end": {"dateTime": "2026-11-02T09:15:00", "timeZone": "GMT Standard Time"},
          "recurrence": {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday", "wednesday"]},
                         "range": {"type": "endDate", "startDate": "2026-11-02", "endDate": "2026-11-30"}}}


def view(sandbox, token, path="/me/calendarView", start="2026-11-01T00:00:00Z", end="2026-12-01T00:00:00Z",
         **kwargs):
    return sandbox.api(token, "get", path, params={"startDateTime": start, "endDateTime": end, "$top": 100}, **kwargs)


def test_calendar_view_expands_a_series_with_its_exception_and_removed_occurrence(sandbox, token):
    master = sandbox.api(token, "post", "/me/events", json=WEEKLY).json()
    assert master["type"] == "seriesMaster"
    single = sandbox.api(token, "post", "/me/events", json={**EVENT, "start": {
        "dateTime": "2026-11-03T12:00:00", "timeZone": "UTC"}, "end": {"dateTime": "2026-11-03T13:00:00",
                                                                     "timeZone": "UTC"}}).json()
    items = view(sandbox, token).json()["value"]
    occurrences = [i for i in items if i["type"] == "occurrence"]
    assert len(occurrences) == 9 and all(o["seriesMasterId"] == master["id"] for o in occurrences)  # Mon+Wed
    assert single["id"] in [i["id"] for i in items] and master["id"] not in [i["id"] for i in items]
    assert items[0]["start"]["dateTime"] == "2026-11-02T09:00:00.0000000"  # GMT in winter: UTC

    second, third = occurrences[1], occurrences[2]
    moved = sandbox.api(token, "patch", f"/me/events/{second['id']}", json={"subject": "Standup (late)"}).json()
    assert moved["type"] == "exception" and moved["subject"] == "Standup (late)"
    assert sandbox.api(token, "delete", f"/me/events/{third['id']}").status_code == 204
    after = view(sandbox, token).json()["value"]
    assert len([i for i in after if i.get("seriesMasterId")]) == 8 and third["id"] not in [i["id"] for i in after]
    assert [i["type"] for i in after if i["id"] == second["id"]] == ["exception"]
    assert view(sandbox, token, end="2026-11-01T01:00:00Z").json()["value"] == []
    first = sandbox.api(token, "get", "/me/calendarView", params={"startDateTime": "2026-11-01T00:00:00+00:00",
                                                                   "endDateTime": "2026-12-01T00:00:00+00:00",
                                                                   "$top": 5}).json()
    rest = sandbox.api(token, "get", first["@odata.nextLink"].split("/v1.0", 1)[1]).json()
    assert [i["id"] for i in first["value"] + rest["value"]] == [i["id"] for i in after]
    assert "@odata.nextLink" not in rest
    missing = sandbox.api(token, "get", "/me/calendarView")
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "ErrorInvalidParameter"


def delta_round(sandbox, token, url=None, page_size=2, end="2026-12-01T00:00:00Z"):
    """Follow nextLinks to the deltaLink: (items, deltaLink, pages)."""
    items, pages = [], 0
    prefer = {"Prefer": f"odata.maxpagesize={page_size}"}
    response = requests.get(url, headers={"Authorization": f"Bearer {token}", **prefer}, timeout=10) if url else \
        view(sandbox, token, path="/me/calendarView/delta", end=end, headers=prefer)
    while True:
        assert response.status_code == 200, response.text
        body, pages = response.json(), pages + 1
        items += body["value"]
        if "@odata.deltaLink" in body:
            assert "@odata.nextLink" not in body
            return items, body["@odata.deltaLink"], pages
        assert "$skiptoken=" in body["@odata.nextLink"]
        response = requests.get(body["@odata.nextLink"], headers={"Authorization": f"Bearer {token}", **prefer},
                                timeout=10)


def test_delta_pages_to_a_delta_link_that_then_reports_changes_and_removals(sandbox, token):
    created = [sandbox.api(token, "post", "/me/events", json={**EVENT, "subject": f"e{n}", "start": {
        "dateTime": f"2026-11-1{n}T10:00:00", "timeZone": "UTC"}, "end": {"dateTime": f"2026-11-1{n}T11:00:00",
                                                                         "timeZone": "UTC"}}).json()
               for n in range(5)]
    items, delta_link, pages = delta_round(sandbox, token)
    assert pages == 3 and sorted(i["id"] for i in items) == sorted(e["id"] for e in created)
    assert "$deltatoken=" in delta_link

    quiet, delta_link, _ = delta_round(sandbox, token, delta_link)
    assert quiet == []
    sandbox.api(token, "patch", f"/me/events/{created[0]['id']}", json={"subject": "changed"})
    sandbox.api(token, "delete", f"/me/events/{created[1]['id']}")
    sandbox.api(token, "patch", f"/me/events/{created[2]['id']}", json={  # moved out of the window
        "start": {"dateTime": "2027-03-01T10:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2027-03-01T11:00:00", "timeZone": "UTC"}})
    added = sandbox.api(token, "post", "/me/events", json={**EVENT, "start": {
        "dateTime": "2026-11-20T10:00:00", "timeZone": "UTC"}, "end": {"dateTime": "2026-11-20T11:00:00",
                                                                     "timeZone": "UTC"}}).json()
    changes, _, _ = delta_round(sandbox, token, delta_link)
    by_id = {i["id"]: i for i in changes}
    assert set(by_id) == {created[0]["id"], created[1]["id"], created[2]["id"], added["id"]}
    assert by_id[created[0]["id"]]["subject"] == "changed"
    assert by_id[created[1]["id"]]["@removed"] == {"reason": "deleted"}
    assert by_id[created[2]["id"]]["@removed"] == {"reason": "deleted"}
    replay, _, _ = delta_round(sandbox, token, delta_link)  # a deltaLink may be followed again
    assert {i["id"] for i in replay} == set(by_id)

    assert sandbox.control("post", "/delta/expire").status_code == 204
    expired = requests.get(delta_link, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert expired.status_code == 410 and expired.json()["error"]["code"] == "syncStateNotFound"
    assert expired.headers["Location"].endswith("/v1.0/me/calendarView/delta")
    lower = sandbox.api(token, "get", "/me/calendarView/delta", params={  # as in Graph's own example
        "startdatetime": "2026-11-01T00:00:00Z", "enddatetime": "2026-12-01T00:00:00Z"}).json()
    assert lower["@odata.context"].endswith("#Collection(event)") and "@odata.deltaLink" in lower
    assert {i["@odata.type"] for i in lower["value"]} == {"#microsoft.graph.event"} and len(lower["value"]) == 4


# -- subscriptions -------------------------------------------------------------------------------------

def subscribe(sandbox, token, graph_receiver, **overrides):
    return sandbox.api(token, "post", "/subscriptions", json={
        "changeType": "created,updated,deleted", "notificationUrl": f"{graph_receiver.url}/notify?tenant=1",
        "lifecycleNotificationUrl": f"{graph_receiver.url}/lifecycle", "resource": "me/events",
        "expirationDateTime": in_minutes(4000), "clientState": "secret-state", **overrides})


def test_a_subscription_is_created_after_both_urls_answer_the_handshake_then_notifies(sandbox, token, graph_receiver):
    created = subscribe(sandbox, token, graph_receiver)
    assert created.status_code == 201, created.text
    subscription = created.json()
    assert subscription["clientState"] == "secret-state" and subscription["resource"] == "me/events"
    paths = [v["path"].split("?")[0] for v in graph_receiver.validations]
    assert paths == ["/notify", "/lifecycle"]
    assert graph_receiver.validations[0]["contentType"].startswith("text/plain")
    assert " " in graph_receiver.validations[0]["token"]  # the token needs decoding from the query

    event = sandbox.api(token, "post", "/me/events", json=EVENT).json()
    sandbox.api(token, "patch", f"/me/events/{event['id']}", json={"subject": "x"})
    sandbox.api(token, "delete", f"/me/events/{event['id']}")
    wait_for(lambda: len(graph_receiver.of("/notify")) == 3, timeout=5)
    notes = sorted((n["value"][0] for n in graph_receiver.of("/notify")), key=lambda n: ["created", "updated",
                                                                                   "deleted"].index(n["changeType"]))
    assert [n["changeType"] for n in notes] == ["created", "updated", "deleted"]
    first = notes[0]
    assert first["subscriptionId"] == subscription["id"] and first["clientState"] == "secret-state"
    assert first["resourceData"]["id"] == event["id"]
    assert first["resourceData"]["@odata.type"] == "#Microsoft.Graph.Event"
    assert first["resource"].endswith(f"/Events/{event['id']}") and first["tenantId"]
    assert first["subscriptionExpirationDateTime"] == subscription["expirationDateTime"]
    assert [d["status"] for d in sandbox.deliveries("change")] == [202, 202, 202]


@pytest.mark.parametrize(("mode", "message"), [
    ("json", "Response must exactly match validationToken"),
    ("encoded", "Response must exactly match validationToken"),
    ("500", "must respond with 200 OK"),
    ("slow", "timed out"),
])
def test_a_failed_handshake_is_400_and_no_subscription(sandbox, token, graph_receiver, mode, message):
    sandbox.settings(validation_timeout=0.5)
    graph_receiver.mode, graph_receiver.slow = mode, 1.5
    refused = subscribe(sandbox, token, graph_receiver)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "InvalidRequest"
    assert message in refused.json()["error"]["message"]
    assert sandbox.control("get", "/subscriptions").json() == []


def test_the_expiry_is_capped_at_4230_minutes_on_create_and_renewal(sandbox, token, graph_receiver):
    too_long = subscribe(sandbox, token, graph_receiver, expirationDateTime=in_minutes(4231))
    assert too_long.status_code == 400 and "4230 minutes" in too_long.json()["error"]["message"]
    assert graph_receiver.validations == []  # refused before the handshake
    past = subscribe(sandbox, token, graph_receiver, expirationDateTime=in_minutes(-1))
    assert past.status_code == 400
    subscription = subscribe(sandbox, token, graph_receiver, expirationDateTime=in_minutes(60)).json()
    path = f"/subscriptions/{subscription['id']}"
    renewed = sandbox.api(token, "patch", path, json={"expirationDateTime": in_minutes(4229)})
    assert renewed.status_code == 200 and renewed.json()["expirationDateTime"] > subscription["expirationDateTime"]
    assert sandbox.api(token, "patch", path, json={"expirationDateTime": in_minutes(4300)}).status_code == 400
    assert sandbox.api(token, "delete", path).status_code == 204
    missing = sandbox.api(token, "patch", path, json={"expirationDateTime": in_minutes(60)})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "ResourceNotFound"


def test_lifecycle_notifications_and_a_removed_subscription(sandbox, token, graph_receiver):
    subscription = subscribe(sandbox, token, graph_receiver).json()
    lifecycle = f"/subscriptions/{subscription['id']}/lifecycle"
    for event in ("reauthorizationRequired", "missed"):
        delivered = sandbox.control("post", lifecycle, json={"lifecycleEvent": event}).json()
        assert delivered["status"] == 202
    received = [n["value"][0] for n in graph_receiver.of("/lifecycle")]
    assert [n["lifecycleEvent"] for n in received] == ["reauthorizationRequired", "missed"]
    assert received[0]["subscriptionId"] == subscription["id"] and received[0]["clientState"] == "secret-state"
    path = f"/subscriptions/{subscription['id']}"
    sandbox.control("post", lifecycle, json={"lifecycleEvent": "reauthorizationRequired", "pause": True})
    sandbox.api(token, "post", "/me/events", json=EVENT)  # unanswered challenge: this notification is lost
    assert sandbox.api(token, "post", f"{path}/reauthorize").status_code == 204
    sandbox.api(token, "post", "/me/events", json={**EVENT, "subject": "after"})
    wait_for(lambda: len(graph_receiver.of("/notify")) == 1, timeout=5)
    assert sandbox.control("post", lifecycle, json={"lifecycleEvent": "bogus"}).status_code == 400

    sandbox.control("post", lifecycle, json={"lifecycleEvent": "subscriptionRemoved"})
    assert graph_receiver.of("/lifecycle")[-1]["value"][0]["lifecycleEvent"] == "subscriptionRemoved"
    assert sandbox.api(token, "patch", path, json={"expirationDateTime": in_minutes(60)}).status_code == 404

    silent = subscribe(sandbox, token, graph_receiver).json()  # removed without a word: no more notifications
    assert sandbox.control("delete", f"/subscriptions/{silent['id']}").status_code == 204
    sandbox.api(token, "post", "/me/events", json=EVENT)
    assert sandbox.api(token, "get", f"/subscriptions/{silent['id']}").status_code == 404
    assert len(graph_receiver.of("/notify")) == 1 and len(sandbox.deliveries("change")) == 1


# -- failures and the owner -----------------------------------------------------------------------------

def test_scripted_failures_answer_in_graph_s_shape_in_order_then_the_endpoint_works(sandbox, token):
    response = sandbox.control("post", "/fail", json={"endpoint": "events.create", "responses": [
        {"status": 429, "retryAfter": 3}, {"status": 503}]})
    assert response.json() == {"endpoint": "events.create", "pending": 2}
    throttled = sandbox.api(token, "post", "/me/events", json=EVENT)
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "3"
    assert throttled.json()["error"]["code"] == "ApplicationThrottled"
    unavailable = sandbox.api(token, "post", "/me/events", json=EVENT)
    assert unavailable.status_code == 503 and unavailable.json()["error"]["code"] == "ServiceUnavailable"
    assert sandbox.events() == []  # failures did no work
    assert sandbox.api(token, "post", "/me/events", json=EVENT).status_code == 201

    sandbox.state.script("calendarView.delta", 410)
    expired = view(sandbox, token, path="/me/calendarView/delta")
    assert expired.status_code == 410 and expired.json()["error"]["code"] == "syncStateNotFound"
    assert "Location" in expired.headers
    sandbox.state.script("events.get", 404)
    scripted = sandbox.api(token, "get", "/me/events/whatever")
    real = sandbox.api(token, "get", "/me/events/nothing")
    assert scripted.json()["error"]["code"] == real.json()["error"]["code"] == "ErrorItemNotFound"
    log = sandbox.control("get", "/requests").json()
    assert log[0]["endpoint"] == "events.create" and log[0]["body"] == EVENT


def test_a_scripted_invalid_grant_looks_like_a_real_one(sandbox):
    tokens = sandbox.tokens()
    sandbox.control("post", "/fail", json={"endpoint": "token:refresh_token",
                                           "responses": [{"status": 400, "reason": "invalid_grant"}]})
    scripted = sandbox.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    real = sandbox.token(grant_type="refresh_token", refresh_token="1.Anonsense")
    assert scripted.status_code == real.status_code == 400
    assert set(scripted.json()) == set(real.json()) and scripted.json()["error_codes"] == real.json()["error_codes"]
    assert sandbox.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"]).status_code == 200
    assert sandbox.control("post", "/fail", json={"endpoint": "events.nope", "responses": [503]}).status_code == 400


def test_the_owner_edits_in_outlook_and_a_stranger_invites(sandbox, token, graph_receiver):
    subscribe(sandbox, token, graph_receiver)
    invited = sandbox.control("post", f"/user/{EMAIL}/invitations", json={**EVENT, "subject": "Their meeting"})
    invitation = invited.json()
    assert invited.status_code == 201 and not invitation["isOrganizer"]
    assert invitation["organizer"]["emailAddress"]["address"] == "stranger@example.net"
    assert invitation["responseStatus"]["response"] == "notResponded"
    accepted = sandbox.control("post", f"/user/{EMAIL}/events/{invitation['id']}/respond",
                               json={"response": "accepted"}).json()
    assert accepted["responseStatus"]["response"] == "accepted"
    assert accepted["attendees"][-1]["status"]["response"] == "accepted"
    cancelled = sandbox.control("post", f"/user/{EMAIL}/events/{invitation['id']}/cancel").json()
    assert cancelled["isCancelled"] and sandbox.api(token, "get", f"/me/events/{invitation['id']}").json()[
        "isCancelled"]

    own = sandbox.control("post", f"/user/{EMAIL}/events", json={**EVENT, "showAs": "oof"}).json()
    assert own["isOrganizer"] and own["showAs"] == "oof"
    sandbox.control("patch", f"/user/{EMAIL}/events/{own['id']}", json={"subject": "Holiday"})
    assert sandbox.api(token, "get", f"/me/events/{own['id']}").json()["subject"] == "Holiday"
    assert sandbox.control("delete", f"/user/{EMAIL}/events/{own['id']}").status_code == 204
    wait_for(lambda: len(graph_receiver.of("/notify")) == 6, timeout=5)
    family = sandbox.control("post", f"/user/{EMAIL}/calendars", json={"name": "Family", "canEdit": False}).json()
    assert sandbox.api(token, "post", f"/me/calendars/{family['id']}/events", json=EVENT).status_code == 403
    theirs = sandbox.control("post", f"/user/{EMAIL}/events", json={**EVENT, "calendarId": family["id"]}).json()
    assert sandbox.api(token, "patch", f"/me/events/{theirs['id']}", json={"subject": "x"}).status_code == 403
    assert sandbox.api(token, "delete", f"/me/events/{theirs['id']}").status_code == 403
    assert len(sandbox.api(token, "get", "/me/calendars").json()["value"]) == 2


def test_reset_forgets_mailboxes_subscriptions_and_bookkeeping_but_not_tokens(sandbox, token, graph_receiver):
    sandbox.api(token, "post", "/me/events", json=EVENT)
    subscribe(sandbox, token, graph_receiver)
    _, delta_link, _ = delta_round(sandbox, token)
    assert sandbox.control("post", "/reset").status_code == 204
    assert sandbox.control("get", "/calls").json() == {} and sandbox.control("get", "/deliveries").json() == []
    assert sandbox.events() == [] and sandbox.control("get", "/subscriptions").json() == []
    assert requests.get(delta_link, headers={"Authorization": f"Bearer {token}"}, timeout=5).status_code == 410
    assert sandbox.api(token, "get", "/me").status_code == 200


def test_chaos_holds_and_write_delay_work_on_graph_endpoints(sandbox, token):
    import threading
    import time

    assert sandbox.control("post", "/chaos", json={"rate": 1, "faults": [{"status": 503}],
                                                  "endpoints": ["events.get"], "seed": 1}).status_code == 200
    assert sandbox.api(token, "get", "/me/events/any").json()["error"]["code"] == "ServiceUnavailable"
    assert sandbox.control("get", "/chaos").json()["injected"] == {"events.get": 1}
    sandbox.control("post", "/chaos", json={"rate": 0})

    assert sandbox.control("post", "/hold", json={"endpoint": "events.create"}).status_code == 200
    writer = threading.Thread(target=sandbox.api, args=(token, "post", "/me/events"), kwargs={"json": EVENT})
    writer.start()
    wait_for(lambda: sandbox.control("get", "/hold").json() == {"events.create": 1}, timeout=5)
    assert sandbox.events() == []  # held before its work
    sandbox.control("delete", "/hold")
    writer.join(5)
    assert len(sandbox.events()) == 1

    sandbox.settings(write_delay=0.5)
    started = time.monotonic()
    slow = threading.Thread(target=sandbox.api, args=(token, "post", "/me/events"), kwargs={"json": EVENT})
    slow.start()
    assert sandbox.api(token, "get", "/me/events").status_code == 200 and time.monotonic() - started < 0.4
    slow.join(5)
    assert len(sandbox.events()) == 2


def test_an_expired_access_token_is_401_and_a_refresh_brings_a_working_one(sandbox):
    sandbox.settings(access_token_lifetime=0)
    tokens = sandbox.tokens()
    expired = sandbox.api(tokens["access_token"], "get", "/me/events")
    assert expired.status_code == 401 and expired.json()["error"]["code"] == "InvalidAuthenticationToken"
    sandbox.settings(access_token_lifetime=3599)
    fresh = sandbox.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"]).json()
    assert sandbox.api(fresh["access_token"], "get", "/me/events").status_code == 200


def test_a_calendar_subscription_and_delta_see_only_that_calendar(sandbox, token, graph_receiver):
    family = sandbox.control("post", f"/user/{EMAIL}/calendars", json={"name": "Family"}).json()
    other = f"/me/calendars/{family['id']}"
    created = subscribe(sandbox, token, graph_receiver, resource=f"me/calendars/{family['id']}/events")
    assert created.status_code == 201
    assert subscribe(sandbox, token, graph_receiver, resource="me/calendars/nope/events").status_code == 400
    sandbox.api(token, "post", "/me/events", json=EVENT)  # the default calendar: not this subscription's
    mine = sandbox.api(token, "post", f"{other}/events", json=EVENT).json()
    wait_for(lambda: len(graph_receiver.of("/notify")) == 1, timeout=5)
    assert graph_receiver.of("/notify")[0]["value"][0]["resourceData"]["id"] == mine["id"]

    items, delta_link, _ = delta_round(sandbox, token, end="2026-12-31T00:00:00Z")
    assert len(items) == 1 and items[0]["id"] != mine["id"]  # /me/calendarView/delta: the default calendar
    family_items = sandbox.api(token, "get", f"{other}/calendarView/delta", params={
        "startDateTime": "2026-11-01T00:00:00Z", "endDateTime": "2026-12-31T00:00:00Z"}).json()
    assert [i["id"] for i in family_items["value"]] == [mine["id"]]
    crossed = requests.get(delta_link.replace("/me/calendarView", f"{other}/calendarView"), timeout=5,
                           headers={"Authorization": f"Bearer {token}"})
    assert crossed.status_code == 410  # a token belongs to its calendar


def test_the_sandbox_runs_standalone(tmp_path):
    import socket
    import subprocess
    import sys

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "callnfy_integrations.dev.microsoft_sandbox", "--port",
                                str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert "Microsoft sandbox on" in process.stdout.readline()

        def answers():
            try:
                return requests.get(f"http://127.0.0.1:{port}/v1.0/me", timeout=1).status_code == 401
            except requests.ConnectionError:
                return False

        wait_for(answers, timeout=10)
    finally:
        process.terminate()
        process.wait(10)


def test_events_are_found_by_a_single_value_extended_property_and_other_filters_are_400(sandbox, token):
    prop = "String {00020329-0000-0000-C000-000000000046} Name callnfyAppointmentId"
    times = {"start": {"dateTime": "2026-12-10T10:00:00", "timeZone": "UTC"},
             "end": {"dateTime": "2026-12-10T10:30:00", "timeZone": "UTC"}}
    tagged = sandbox.api(token, "POST", "/me/events", json={
        "subject": "Tagged", **times, "singleValueExtendedProperties": [{"id": prop, "value": "appt_abc"}]}).json()
    sandbox.api(token, "POST", "/me/events", json={"subject": "Plain", **times}).raise_for_status()
    query = f"singleValueExtendedProperties/Any(ep: ep/id eq '{prop}' and ep/value eq 'APPT_ABC')"
    found = sandbox.api(token, "GET", "/me/events", params={"$filter": query})
    assert found.status_code == 200 and [e["id"] for e in found.json()["value"]] == [tagged["id"]]
    assert sandbox.api(token, "GET", "/me/events", params={"$filter": "subject eq 'Plain'"}).status_code == 400
