"""Microsoft's half of two-way sync against the Microsoft sandbox over real HTTP: the validation
handshake, the subscription (its clientState, expiry and renewal), notifications and lifecycle
notifications, the delta baseline and its expiry, and deleting the subscription on one-way and
disconnect.

The app is served over HTTP on loopback (PUBLIC_API_URL points at it), so the sandbox's validation
requests and notifications reach this app's `/webhooks/microsoft/*`. Applying Outlook's changes is the
engine's (`calendar_sync.apply`, tested with Google's events in its own tests); here, that Outlook's
changes reach it and come out as the engine's rules say.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from urllib.parse import quote

import pytest
import requests
from sqlalchemy import func, select, update

from callnfy_integrations import create_app
from callnfy_integrations.appointments.models import Appointment
from callnfy_integrations.config import ConfigError, load_config
from callnfy_integrations.extensions import db
from callnfy_integrations.integrations.models import Integration
from callnfy_integrations.microsoft import two_way, two_way_runs
from callnfy_integrations.queues import CALENDAR, get_queue, redis_connection
from tests.google_fixtures import run_jobs
from tests.loopback import serve_wsgi
from tests.microsoft_fixtures import MicrosoftUser, microsoft_settings
from tests.support import make_config, wait_for

pytestmark = pytest.mark.slow  # live-server tests

OWNER = "owner@example.com"
TOKEN = "Validation: Testing client application reachability for subscription Request-Id: 4f1c-é&x=1 +"


@pytest.fixture(scope="module")
def live_app(database_url, servers, ms_sandbox, app):
    """The app served over HTTP, so Graph's (the sandbox's) POSTs reach it; delta pages of 3 events."""
    server = serve_wsgi()
    application = create_app(make_config(
        database_url, servers["redis"], PUBLIC_API_URL=server.url, MICROSOFT_SYNC_DEBOUNCE_SECONDS="0",
        MICROSOFT_DELTA_PAGE_SIZE="3", **microsoft_settings(ms_sandbox)))
    server.app = application
    application.config["LIVE_URL"] = server.url
    yield application
    server.shutdown()


class Owner(MicrosoftUser):
    def __init__(self, app, sandbox):
        super().__init__(app, sandbox)
        self.app = app

    def set_mode(self, mode: str) -> None:
        response = self.client.put("/integrations/microsoft/settings", json={"syncMode": mode}, headers=self.headers)
        assert response.status_code == 200, response.json

    def enable_two_way(self) -> SimpleNamespace:
        """Connect and switch to two-way; the connection's two-way columns as they are then (a copy: the
        session's row changes as the test goes on)."""
        assert self.connect() == {"success": "true"}
        self.set_mode("two-way")
        run_jobs(self.app)  # the baseline and the subscription
        row = wait_for(lambda: self.integration().channel_id and self.integration())
        return SimpleNamespace(**{column: getattr(row, column) for column in (
            "id", "channel_id", "channel_token_hash", "channel_expires_at", "sync_token", "two_way_since",
            "last_sync_at")})

    def outlook(self, subject: str, start: datetime, **extra) -> dict:
        body = {"subject": subject, "start": {"dateTime": f"{start:%Y-%m-%dT%H:%M:%S}", "timeZone": "UTC"},
                "end": {"dateTime": f"{start + timedelta(minutes=45):%Y-%m-%dT%H:%M:%S}", "timeZone": "UTC"},
                **extra}
        response = self.sandbox.control("post", f"/user/{OWNER}/events", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    def settle(self) -> None:
        """Run the workers until every notification the sandbox sent (50 ms after each change) has been
        answered and no sync is pending or queued."""
        seen = -1
        for _ in range(30):
            time.sleep(0.2)
            count = len(self.sandbox.deliveries())
            pending = redis_connection().exists(two_way.pending_key(self.integration().id))
            if count == seen and not pending and not get_queue(CALENDAR).count:
                return
            seen = count
            run_jobs(self.app)
        raise AssertionError("syncs kept coming")

    def appointments(self) -> list[Appointment]:
        db.session.expire_all()
        return db.session.scalars(select(Appointment).where(Appointment.user_id == self.user_id)
                                  .order_by(Appointment.created_at)).all()

    def subscriptions(self) -> list[dict]:
        return self.sandbox.control("get", "/subscriptions").json()

    def notify(self, path: str, notifications: list[dict]) -> requests.Response:
        return requests.post(f"{self.app.config['LIVE_URL']}/webhooks/microsoft/{path}",
                             json={"value": notifications}, timeout=5)


@pytest.fixture
def owner(live_app, ms_sandbox):
    ms_sandbox.fresh()
    with live_app.app_context():
        yield Owner(live_app, ms_sandbox)
        db.session.remove()
    ms_sandbox.fresh()


def change(subscription: dict, client_state: str | None = None, **extra) -> dict:
    """A change notification as Graph sends it for `subscription`."""
    return {"subscriptionId": subscription["id"], "subscriptionExpirationDateTime": subscription["expirationDateTime"],
            "changeType": "updated", "resource": "Users/x/Events/AAMk=", "tenantId": "t",
            "clientState": subscription["clientState"] if client_state is None else client_state,
            "resourceData": {"@odata.type": "#Microsoft.Graph.Event", "id": "AAMk="}, **extra}


def queued_jobs() -> list[str]:
    return [job.func_name for job in get_queue(CALENDAR).jobs]


def parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


# -- the handshake -----------------------------------------------------------------------------------

@pytest.mark.shows_status(*[("POST", f"/webhooks/microsoft/{path}", "200") for path in ("calendar", "lifecycle")])
@pytest.mark.parametrize("path", ["calendar", "lifecycle"])
def test_the_validation_handshake_answers_the_decoded_token_as_plain_text_without_the_database(path):
    # No database, no Redis: the handshake touches neither.
    offline = create_app(make_config("postgresql://nobody@127.0.0.1:1/none", "redis://127.0.0.1:1/0"))
    client = offline.test_client()
    started = time.monotonic()
    answer = client.post(f"/webhooks/microsoft/{path}?validationToken={quote(TOKEN, safe='')}",
                         data="", content_type="text/plain; charset=utf-8")
    assert time.monotonic() - started < 1
    assert answer.status_code == 200 and answer.mimetype == "text/plain"
    assert answer.get_data(as_text=True) == TOKEN  # decoded, exactly
    absurd = client.post(f"/webhooks/microsoft/{path}?validationToken={'x' * 5000}", content_type="text/plain")
    assert absurd.status_code == 400 and absurd.json["error"]["code"] == "BAD_REQUEST"
    empty = client.post(f"/webhooks/microsoft/{path}?validationToken=", content_type="text/plain")
    assert empty.status_code == 400


def test_config_refuses_a_subscription_lifetime_graph_would_refuse():
    base = {"APP_ENV": "testing"}
    assert load_config(base)["MICROSOFT_SUBSCRIPTION_MINUTES"] == 4200
    assert load_config({**base, "MICROSOFT_SUBSCRIPTION_MINUTES": "4229"})["MICROSOFT_SUBSCRIPTION_MINUTES"] == 4229
    for bad in ("4230", "10000", "0", "soon"):
        with pytest.raises(ConfigError, match="MICROSOFT_SUBSCRIPTION_MINUTES"):
            load_config({**base, "MICROSOFT_SUBSCRIPTION_MINUTES": bad})


# -- switching on --------------------------------------------------------------------------------------

@pytest.mark.shows_status(("PUT", "/integrations/microsoft/settings", "200"))
def test_two_way_takes_a_baseline_without_importing_and_subscribes_with_a_hashed_client_state(owner, ms_sandbox):
    assert owner.connect() == {"success": "true"}
    day = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0) + timedelta(days=3)
    for n in range(7):  # 3 pages of 3
        owner.outlook(f"Before the baseline {n}", day + timedelta(hours=n))
    before = datetime.now(UTC)
    owner.set_mode("two-way")
    integration = owner.integration()
    assert integration.sync_mode == "two-way" and integration.channel_id is None  # the start is a job
    run_jobs(owner.app)

    integration = owner.integration()
    assert integration.sync_token.startswith(f"{ms_sandbox.graph}/me/calendar/calendarView/delta?$deltatoken=")
    assert before <= integration.two_way_since <= datetime.now(UTC) and integration.last_sync_at
    assert ms_sandbox.calls("calendarView.delta") == 3  # every page of the baseline, nothing more
    assert db.session.scalar(select(func.count()).select_from(Appointment)) == 0  # nothing imported
    [subscription] = owner.subscriptions()
    live = owner.app.config["LIVE_URL"]
    assert subscription["id"] == integration.channel_id
    assert subscription["changeType"] == "created,updated,deleted" and subscription["resource"] == "me/events"
    assert subscription["notificationUrl"] == f"{live}/webhooks/microsoft/calendar"
    assert subscription["lifecycleNotificationUrl"] == f"{live}/webhooks/microsoft/lifecycle"
    secret = subscription["clientState"]
    assert len(secret) >= 32 and integration.channel_token_hash == hashlib.sha256(secret.encode()).hexdigest()
    expires = parse(subscription["expirationDateTime"])
    assert expires < datetime.now(UTC) + timedelta(minutes=4230)
    assert abs(integration.channel_expires_at - expires) < timedelta(seconds=1)
    assert expires > datetime.now(UTC) + timedelta(minutes=4190)  # MICROSOFT_SUBSCRIPTION_MINUTES, 4200
    validations = ms_sandbox.deliveries("validation")
    assert {v["url"] for v in validations} == {subscription["notificationUrl"],
                                               subscription["lifecycleNotificationUrl"]}
    assert all(v["problem"] is None and v["status"] == 200 for v in validations)


def test_a_selected_calendar_is_subscribed_by_its_own_events(owner, ms_sandbox):
    assert owner.connect() == {"success": "true"}
    other = ms_sandbox.control("post", f"/user/{OWNER}/calendars", json={"name": "Work"}).json()
    db.session.execute(update(Integration).where(Integration.id == owner.integration().id)
                       .values(calendar_id=other["id"]))
    db.session.commit()
    owner.set_mode("two-way")
    run_jobs(owner.app)
    [subscription] = owner.subscriptions()
    assert subscription["resource"] == f"me/calendars/{other['id']}/events"
    assert owner.integration().sync_token.startswith(f"{ms_sandbox.graph}/me/calendars/")


# -- notifications -------------------------------------------------------------------------------------

@pytest.mark.shows_status(("POST", "/webhooks/microsoft/calendar", "202"))
def test_a_valid_batch_is_answered_202_at_once_and_requests_one_sync(owner, ms_sandbox):
    integration = owner.enable_two_way()
    [subscription] = owner.subscriptions()
    link = integration.sync_token
    started = time.monotonic()
    answer = owner.notify("calendar", [change(subscription), change(subscription), change(subscription)])
    assert time.monotonic() - started < 3 and answer.status_code == 202
    assert ms_sandbox.calls("calendarView.delta") == 1  # the baseline's; nothing was asked of Graph inline
    assert redis_connection().exists(two_way.pending_key(integration.id))
    assert queued_jobs() == ["jobs.microsoft.sync_calendar"]  # coalesced
    assert owner.notify("calendar", [change(subscription)]).status_code == 202
    assert queued_jobs() == ["jobs.microsoft.sync_calendar"]  # still one pending

    run_jobs(owner.app)
    synced = owner.integration()
    assert ms_sandbox.calls("calendarView.delta") == 2  # the stored deltaLink, followed
    assert synced.sync_token != link and synced.sync_token.startswith(link.split("$deltatoken=")[0])
    assert synced.last_sync_at > integration.last_sync_at and synced.sync_error is None


@pytest.mark.shows_status(*[("POST", f"/webhooks/microsoft/{path}", "404") for path in ("calendar", "lifecycle")])
def test_a_forged_client_state_or_unknown_subscription_is_404_and_nothing_is_enqueued(owner, ms_sandbox):
    owner.enable_two_way()
    [subscription] = owner.subscriptions()
    forged = change(subscription, client_state="guessed-" + subscription["clientState"][8:])
    unknown = {**change(subscription), "subscriptionId": "5a4db0c5-0000-4000-8000-0000000000ff"}
    for path in ("calendar", "lifecycle"):
        for batch in ([forged], [change(subscription), forged], [unknown], [change(subscription), unknown],
                      [{**change(subscription), "clientState": None}], [7]):
            answer = owner.notify(path, batch)
            assert answer.status_code == 404 and answer.json()["error"]["code"] == "NOT_FOUND", batch
    assert queued_jobs() == [] and not redis_connection().exists(two_way.pending_key(owner.integration().id))


@pytest.mark.shows_status(*[("POST", f"/webhooks/microsoft/{path}", "400") for path in ("calendar", "lifecycle")])
def test_what_is_not_a_notification_batch_is_400_never_500(owner):
    url = f"{owner.app.config['LIVE_URL']}/webhooks/microsoft"
    for path in ("calendar", "lifecycle"):
        for body in (b"{not json", b"[]", b'{"value": {}}', b'"value"', b'{"value": null}'):
            answer = requests.post(f"{url}/{path}", data=body, headers={"Content-Type": "application/json"}, timeout=5)
            assert answer.status_code == 400 and answer.json()["error"]["code"] == "BAD_REQUEST", body
        too_many = requests.post(f"{url}/{path}", json={"value": [{}] * 1001}, timeout=5)
        assert too_many.status_code == 400
    assert queued_jobs() == []


@pytest.mark.shows_status(*[("POST", f"/webhooks/microsoft/{path}", "429") for path in ("calendar", "lifecycle")])
def test_notifications_are_rate_limited_per_client_address(database_url, servers, app):
    limited = create_app(make_config(database_url, servers["redis"], MICROSOFT_NOTIFICATION_RATE_LIMIT="3 per minute"))
    client = limited.test_client()
    body = {"value": [{"subscriptionId": "5a4db0c5-0000-4000-8000-0000000000ff", "clientState": "x"}]}
    answers = [client.post(f"/webhooks/microsoft/{path}", json=body) for path in ("calendar", "lifecycle") * 2]
    assert [a.status_code for a in answers] == [404, 404, 404, 429]
    assert answers[-1].json["error"]["code"] == "TOO_MANY_REQUESTS" and int(answers[-1].headers["Retry-After"]) >= 1
    handshake = client.post(f"/webhooks/microsoft/calendar?validationToken={quote(TOKEN)}")
    assert handshake.status_code == 200  # Graph's handshake is never refused


# -- lifecycle notifications -------------------------------------------------------------------------

def lifecycle(ms_sandbox, subscription_id: str, event: str, **extra) -> dict:
    delivery = ms_sandbox.control("post", f"/subscriptions/{subscription_id}/lifecycle",
                                  json={"lifecycleEvent": event, **extra})
    assert delivery.status_code == 200, delivery.text
    return delivery.json()


@pytest.mark.shows_status(("POST", "/webhooks/microsoft/lifecycle", "202"))
def test_reauthorization_required_renews_the_subscription_with_a_patch(owner, ms_sandbox):
    integration = owner.enable_two_way()
    assert lifecycle(ms_sandbox, integration.channel_id, "reauthorizationRequired", pause=True)["status"] == 202
    assert queued_jobs() == ["jobs.microsoft.renew_subscription"]
    run_jobs(owner.app)
    assert ms_sandbox.calls("subscriptions.update") == 1 and ms_sandbox.calls("subscriptions.create") == 1
    with ms_sandbox.state.lock:
        assert "_paused" not in ms_sandbox.state.subscriptions[integration.channel_id]  # notifications flow again
    assert owner.integration().channel_expires_at >= integration.channel_expires_at


def test_subscription_removed_creates_a_new_subscription_then_syncs(owner, ms_sandbox):
    integration = owner.enable_two_way()
    assert lifecycle(ms_sandbox, integration.channel_id, "subscriptionRemoved")["status"] == 202
    assert owner.subscriptions() == []  # Graph dropped it
    run_jobs(owner.app)
    [subscription] = owner.subscriptions()
    renewed = owner.integration()
    assert renewed.channel_id == subscription["id"] != integration.channel_id
    assert renewed.channel_token_hash == hashlib.sha256(subscription["clientState"].encode()).hexdigest()
    assert ms_sandbox.calls("calendarView.delta") == 2  # and what changed meanwhile was synced
    assert renewed.last_sync_at > integration.last_sync_at and renewed.sync_token != integration.sync_token


def test_missed_notifications_request_a_sync(owner, ms_sandbox):
    integration = owner.enable_two_way()
    assert lifecycle(ms_sandbox, integration.channel_id, "missed")["status"] == 202
    assert queued_jobs() == ["jobs.microsoft.sync_calendar"]
    run_jobs(owner.app)
    assert ms_sandbox.calls("calendarView.delta") == 2 and owner.integration().channel_id == integration.channel_id


# -- renewal -----------------------------------------------------------------------------------------

def expire_soon(owner, hours: float) -> None:
    db.session.execute(update(Integration).where(Integration.id == owner.integration().id).values(
        channel_expires_at=datetime.now(UTC) + timedelta(hours=hours)))
    db.session.commit()


def test_subscriptions_are_renewed_early_by_patch_and_recreated_when_graph_lost_them(owner, ms_sandbox):
    from jobs.microsoft import sweep_subscriptions

    integration = owner.enable_two_way()
    assert sweep_subscriptions() == {"renewing": 0}  # three days to go
    expire_soon(owner, 23)
    assert sweep_subscriptions() == {"renewing": 1}
    run_jobs(owner.app)
    [patch] = [r for r in ms_sandbox.control("get", "/requests").json() if r["endpoint"] == "subscriptions.update"]
    asked = parse(patch["body"]["expirationDateTime"])
    assert datetime.now(UTC) + timedelta(minutes=4190) < asked < datetime.now(UTC) + timedelta(minutes=4230)
    renewed = owner.integration()
    assert renewed.channel_id == integration.channel_id and renewed.channel_expires_at > asked - timedelta(seconds=1)
    assert ms_sandbox.calls("subscriptions.create") == 1

    ms_sandbox.control("delete", f"/subscriptions/{integration.channel_id}")  # Graph dropped it silently
    expire_soon(owner, 1)
    assert sweep_subscriptions() == {"renewing": 1}
    run_jobs(owner.app)  # the PATCH answers 404: a new subscription, then a sync
    [subscription] = owner.subscriptions()
    assert owner.integration().channel_id == subscription["id"] != integration.channel_id
    assert ms_sandbox.calls("subscriptions.create") == 2 and ms_sandbox.calls("calendarView.delta") == 2


def test_throttled_renewal_is_retried_after_graphs_retry_after(owner, ms_sandbox):
    integration = owner.enable_two_way()
    ms_sandbox.control("post", "/fail", json={"endpoint": "subscriptions.update",
                                              "responses": [{"status": 429, "retryAfter": 30}]})
    assert two_way_runs.renew(str(integration.id)) == "retry"
    failed = owner.integration()
    assert failed.sync_attempts == 1 and failed.sync_error.startswith("MICROSOFT_RATE_LIMITED")
    [scheduled] = get_queue(CALENDAR).scheduled_job_registry.get_job_ids()
    assert scheduled  # again after the backoff, at least Graph's Retry-After
    assert two_way_runs.renew(str(integration.id)) == "renewed"
    assert owner.integration().sync_attempts == 0


# -- the delta ---------------------------------------------------------------------------------------

def test_an_expired_delta_link_takes_a_fresh_round_and_stores_its_delta_link(owner, ms_sandbox):
    integration = owner.enable_two_way()
    ms_sandbox.control("post", "/delta/expire").raise_for_status()
    assert two_way_runs.sync_changes(str(integration.id)) == "re-baselined, applied 0"
    deltas = [r for r in ms_sandbox.control("get", "/requests").json() if r["endpoint"] == "calendarView.delta"]
    assert "$deltatoken" in deltas[-2]["query"]  # the stored link: 410 syncStateNotFound
    assert set(deltas[-1]["query"]) == {"startDateTime", "endDateTime"}  # then the initial query again
    fresh = owner.integration()
    assert fresh.sync_token != integration.sync_token and "$deltatoken=" in fresh.sync_token
    assert fresh.two_way_since == integration.two_way_since  # imports still count from the first baseline
    assert two_way_runs.sync_changes(str(integration.id)) == "applied 0"  # and the new link works


def test_a_window_near_its_end_is_moved_forward_after_the_rounds_changes_are_applied(owner, ms_sandbox):
    """A round's calendar view is fixed when it starts: a quarter before its end, a sync applies the
    round's last changes, then starts a fresh round over a window from now."""
    integration = owner.enable_two_way()
    ends = datetime.fromisoformat(owner.integration().settings[two_way.WINDOW_END])
    assert timedelta(days=364) < ends - datetime.now(UTC) <= timedelta(days=365)
    row = owner.integration()
    row.settings = {**row.settings, two_way.WINDOW_END: (datetime.now(UTC) + timedelta(days=30)).isoformat()}
    db.session.commit()
    owner.outlook("Consultation", datetime.now(UTC).replace(microsecond=0) + timedelta(days=2))
    assert two_way_runs.sync_changes(str(integration.id)) == "re-baselined, applied 1"
    deltas = [r for r in ms_sandbox.control("get", "/requests").json() if r["endpoint"] == "calendarView.delta"]
    assert "$deltatoken" in deltas[-2]["query"] and set(deltas[-1]["query"]) == {"startDateTime", "endDateTime"}
    moved = datetime.fromisoformat(owner.integration().settings[two_way.WINDOW_END])
    assert moved - datetime.now(UTC) > timedelta(days=364)
    assert [a.source for a in owner.appointments()] == ["microsoft"]  # imported once, not again by the new round
    assert two_way_runs.sync_changes(str(integration.id)) == "applied 0"


def test_the_delta_walk_hands_over_every_change_page_by_page_and_ends_with_a_delta_link(owner, ms_sandbox):
    """The sync's page walk on its own (what the engine's apply step is handed): pages of at most
    MICROSOFT_DELTA_PAGE_SIZE (3) events, changes and removals, then a new deltaLink."""
    from callnfy_integrations.microsoft.events import normalize

    day = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0) + timedelta(days=2)
    before = owner.outlook("Before the baseline", day - timedelta(hours=2))
    integration = owner.enable_two_way()
    ms_sandbox.settings(notify=False)  # no sync job of its own meanwhile
    created = [owner.outlook(f"After the baseline {n}", day + timedelta(hours=n)) for n in range(4)]
    ms_sandbox.control("delete", f"/user/{OWNER}/events/{before['id']}").raise_for_status()
    pages: list[list[dict]] = []
    link = two_way.walk_delta(integration.id, "default", link=integration.sync_token, on_page=pages.append)
    assert [len(page) for page in pages] == [3, 2]
    seen = {item["id"]: normalize(item, OWNER) for page in pages for item in page}
    assert set(seen) == {event["id"] for event in [before, *created]}
    assert seen[before["id"]].cancelled  # removed: deleted in Outlook
    assert seen[created[1]["id"]].summary == "After the baseline 1" and seen[created[1]["id"]].start == (
        day + timedelta(hours=1)) and not seen[created[1]["id"]].cancelled
    assert link != integration.sync_token and "$deltatoken=" in link
    assert two_way.walk_delta(integration.id, "default", link=link, on_page=pages.append) and len(pages) == 2


def test_a_401_refreshes_once_and_a_withdrawn_consent_marks_the_connection(owner, ms_sandbox):
    integration = owner.enable_two_way()
    ms_sandbox.control("post", "/fail", json={"endpoint": "calendarView.delta", "responses": [401]})
    assert two_way_runs.sync_changes(str(integration.id)) == "applied 0"  # refreshed, asked again
    ms_sandbox.control("post", f"/revoke/{OWNER}").raise_for_status()
    assert two_way_runs.sync_changes(str(integration.id)) == "reauthorization required"
    assert owner.status() == {"connected": False, "reauthorizationRequired": True, "email": OWNER}
    assert owner.notify("calendar", [change(owner.subscriptions()[0])]).status_code == 404  # not a live connection


def test_graph_unavailable_during_a_sync_keeps_the_delta_link_and_retries(owner, ms_sandbox):
    integration = owner.enable_two_way()
    ms_sandbox.control("post", "/fail", json={"endpoint": "calendarView.delta", "responses": [503]})
    assert two_way_runs.sync_changes(str(integration.id)) == "retry"
    failed = owner.integration()
    assert failed.sync_token == integration.sync_token and failed.sync_error.startswith("MICROSOFT_UNAVAILABLE")


def test_the_safety_sync_requests_a_sync_of_every_two_way_calendar_once_per_interval(owner):
    from jobs.microsoft import safety_sync

    integration = owner.enable_two_way()
    now = time.time()
    assert safety_sync(now) == 1 and redis_connection().exists(two_way.pending_key(integration.id))
    redis_connection().delete(two_way.pending_key(integration.id))
    assert safety_sync(now + 1) == 0  # its moment has passed; the next is an interval later
    interval = owner.app.config["MICROSOFT_SAFETY_SYNC_SECONDS"]
    assert safety_sync(now + interval + 1) == 1


# -- Outlook's changes through the engine --------------------------------------------------------------

def test_an_outlook_event_becomes_an_appointment_a_move_reschedules_it_and_a_delete_cancels_it(owner, ms_sandbox):
    owner.enable_two_way()
    start = datetime.now(UTC).replace(hour=15, minute=0, second=0, microsecond=0) + timedelta(days=4)
    jane = {"type": "required", "emailAddress": {"name": "Jane Smith", "address": "jane@example.com"}}
    event = owner.outlook("Consultation", start, attendees=[jane])
    owner.outlook("Lunch", start + timedelta(hours=2), showAs="free")  # free time: not an appointment
    owner.settle()

    [appointment] = owner.appointments()
    assert appointment.source == "microsoft" and appointment.status == "scheduled"
    assert (appointment.scheduled_at, appointment.duration) == (start, 45)
    assert (appointment.customer.name, appointment.customer.email) == ("Jane Smith", "jane@example.com")
    assert ms_sandbox.calls("events.create") == ms_sandbox.calls("events.update") == 0  # never pushed back

    moved = start + timedelta(hours=1)
    ms_sandbox.control("patch", f"/user/{OWNER}/events/{event['id']}", json={
        "start": {"dateTime": f"{moved:%Y-%m-%dT%H:%M:%S}", "timeZone": "UTC"},
        "end": {"dateTime": f"{moved + timedelta(minutes=30):%Y-%m-%dT%H:%M:%S}", "timeZone": "UTC"}}
    ).raise_for_status()
    owner.settle()
    [appointment] = owner.appointments()
    assert (appointment.scheduled_at, appointment.duration, appointment.status) == (moved, 30, "scheduled")

    ms_sandbox.control("delete", f"/user/{OWNER}/events/{event['id']}").raise_for_status()
    owner.settle()
    [appointment] = owner.appointments()
    assert appointment.status == "cancelled"
    assert ms_sandbox.calls("events.update") == ms_sandbox.calls("events.delete") == 0
    assert owner.integration().sync_error is None


def test_our_own_pushes_coming_back_as_notifications_change_nothing(owner, ms_sandbox):
    owner.enable_two_way()
    booked = owner.create(scheduledAt=(datetime.now(UTC) + timedelta(days=5)).strftime("%Y-%m-%dT10:00:00.000Z"))
    owner.settle()  # pushed to Outlook; its notification comes back and is synced
    [event] = ms_sandbox.events()
    assert event["transactionId"].startswith("callnfy-")
    [appointment] = owner.appointments()
    assert appointment.version == 1 and appointment.status == "scheduled" and appointment.source == "callnfy"
    assert ms_sandbox.calls("events.create") == 1 and ms_sandbox.calls("events.update") == 0
    assert owner.appointment(booked["id"])["microsoftSync"]["state"] == "synced"
    assert ms_sandbox.calls("calendarView.delta") >= 2  # the notification did bring a sync


# -- switching off -----------------------------------------------------------------------------------

def test_one_way_clears_the_subscription_at_once_and_deletes_it_at_graph(owner, ms_sandbox):
    integration = owner.enable_two_way()
    [subscription] = owner.subscriptions()
    owner.set_mode("one-way")
    stopped = owner.integration()
    assert (stopped.channel_id, stopped.channel_token_hash, stopped.sync_token, stopped.two_way_since) == (
        None, None, None, None)
    assert owner.notify("calendar", [change(subscription)]).status_code == 404  # refused from the commit on
    run_jobs(owner.app)
    assert owner.subscriptions() == [] and ms_sandbox.calls("subscriptions.delete") == 1
    assert integration.channel_id == subscription["id"]


def test_disconnect_deletes_the_subscription_at_graph(owner, ms_sandbox):
    owner.enable_two_way()
    ciphertext = owner.integration().access_token_encrypted.hex()
    assert owner.client.delete("/integrations/microsoft/disconnect", headers=owner.headers).status_code == 200
    assert owner.integration() is None
    [job] = get_queue(CALENDAR).jobs
    assert job.args[-1] == ciphertext and ciphertext not in job.description  # RQ logs the description
    run_jobs(owner.app)  # with the ciphertext of the last access token: the connection's tokens are gone
    assert owner.subscriptions() == [] and ms_sandbox.calls("subscriptions.delete") == 1


def test_reconnecting_after_a_withdrawn_consent_stays_two_way_with_a_new_subscription(owner, ms_sandbox):
    """As for Google: a (re)connect in two-way takes a fresh baseline and subscription; the old one is
    deleted at Graph."""
    integration = owner.enable_two_way()
    [old] = owner.subscriptions()
    ms_sandbox.control("post", f"/revoke/{OWNER}").raise_for_status()
    assert two_way_runs.sync_changes(str(integration.id)) == "reauthorization required"
    assert owner.connect() == {"success": "true"}
    run_jobs(owner.app)  # the old subscription deleted, a baseline and a new subscription
    row = wait_for(lambda: owner.integration().channel_id and owner.integration())
    assert owner.status()["syncMode"] == "two-way" and owner.status()["connected"] is True
    [new] = owner.subscriptions()
    assert new["id"] != old["id"] and row.channel_id == new["id"] and row.sync_token
    owner.outlook("Consultation", datetime(2026, 12, 12, 9, tzinfo=UTC))
    owner.settle()
    assert [a.source for a in owner.appointments()] == ["microsoft"]


# -- do no harm: the owner's calendar and customers (the counterparts of test_google_two_way_safety.py)

def _ms_event(ms_sandbox, event_id: str) -> dict:
    [event] = [e for e in ms_sandbox.events(OWNER) if e["id"] == event_id]
    return event


def test_a_strangers_invitation_becomes_an_appointment_only_once_the_owner_accepts_it(owner, ms_sandbox):
    owner.enable_two_way()
    start = datetime.now(UTC).replace(hour=11, minute=0, second=0, microsecond=0) + timedelta(days=3)
    times = {"start": {"dateTime": f"{start:%Y-%m-%dT%H:%M:%S}", "timeZone": "UTC"},
             "end": {"dateTime": f"{start + timedelta(minutes=30):%Y-%m-%dT%H:%M:%S}", "timeZone": "UTC"}}
    invitation = ms_sandbox.control("post", f"/user/{OWNER}/invitations", json={"subject": "Pitch", **times})
    assert invitation.status_code == 201, invitation.text
    tentative = ms_sandbox.control("post", f"/user/{OWNER}/invitations", json={
        "subject": "Maybe", "responseStatus": "tentativelyAccepted", **times})
    assert tentative.status_code == 201
    owner.settle()
    assert owner.appointments() == []  # not answered, tentative: nothing that could text a stranger

    ms_sandbox.control("post", f"/user/{OWNER}/events/{invitation.json()['id']}/respond",
                       json={"response": "accepted"}).raise_for_status()
    owner.settle()
    [appointment] = owner.appointments()
    assert appointment.source == "microsoft" and appointment.scheduled_at == start

    ms_sandbox.control("post", f"/user/{OWNER}/events/{invitation.json()['id']}/respond",
                       json={"response": "declined"}).raise_for_status()
    owner.settle()
    [appointment] = owner.appointments()
    assert appointment.status == "cancelled" and appointment.cancel_reason == "Cancelled in Outlook"
    assert ms_sandbox.calls("events.update") == ms_sandbox.calls("events.delete") == 0  # never touched


def test_an_imported_meeting_keeps_all_but_its_time_and_is_left_in_outlook_when_cancelled(owner, ms_sandbox):
    owner.enable_two_way()
    start = datetime.now(UTC).replace(hour=14, minute=0, second=0, microsecond=0) + timedelta(days=6)
    jane = {"type": "required", "emailAddress": {"name": "Jane Smith", "address": "jane@example.com"}}
    event = owner.outlook("Quarterly review", start, attendees=[jane], body={"contentType": "text",
                                                                            "content": "Agenda: numbers"})
    owner.settle()
    [appointment] = owner.appointments()
    public_id = owner.client.get("/appointments", headers=owner.headers).json["data"][0]["id"]
    before = _ms_event(ms_sandbox, event["id"])

    moved = start + timedelta(hours=2)
    response = owner.client.patch(f"/appointments/{public_id}", headers=owner.headers, json={
        "scheduledAt": moved.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "duration": 90, "notes": "Bring the numbers"})
    assert response.status_code == 200, response.json
    owner.settle()
    after = _ms_event(ms_sandbox, event["id"])
    from callnfy_integrations.dev.microsoft_sandbox.times import moment

    assert (moment(after["start"]), moment(after["end"])) == (moved, moved + timedelta(minutes=90))
    kept = ("subject", "body", "attendees", "organizer", "showAs", "isReminderOn", "location")
    assert {k: after.get(k) for k in kept} == {k: before.get(k) for k in kept}  # only its time is Callnfy's
    assert owner.appointment(public_id)["scheduledAt"] == moved.strftime("%Y-%m-%dT%H:%M:%S.000Z")  # no echo

    meeting = _ms_event(ms_sandbox, event["id"])
    response = owner.client.post(f"/appointments/{public_id}/cancel", headers=owner.headers, json={})
    assert response.status_code == 200
    owner.settle()
    assert _ms_event(ms_sandbox, event["id"]) == meeting  # still there, untouched
    assert ms_sandbox.calls("events.delete") == 0 and ms_sandbox.calls("events.create") == 0
    shown = owner.appointment(public_id)
    assert shown["status"] == "cancelled"
    assert shown["microsoftSync"]["state"] == "synced" and shown["microsoftSync"]["leftInOutlook"] is True
    assert len(owner.appointments()) == 1  # and it is not imported again


def test_an_outlook_edit_while_a_callnfy_move_backs_off_keeps_the_move(owner, ms_sandbox):
    """The counterpart of Google's: the owner moves the appointment in Callnfy, its PATCH meets a 503 and
    backs off; the owner then edits the event's subject in Outlook (still at the old time). The sync
    must not move the appointment back; the retried push then brings the move to Outlook."""
    from callnfy_integrations.calendar_sync.adapter import adapter_for
    from callnfy_integrations.calendar_sync.push_runs import push_appointment
    from callnfy_integrations.dev.microsoft_sandbox.times import moment
    from callnfy_integrations.integrations.models import MICROSOFT_CALENDAR

    owner.enable_two_way()
    first = (datetime.now(UTC) + timedelta(days=5)).replace(hour=9, minute=0, second=0, microsecond=0)
    booked = owner.create(scheduledAt=first.strftime("%Y-%m-%dT%H:%M:%S.000Z"))
    owner.settle()
    event_id = owner.appointment(booked["id"])["microsoftSync"]["eventId"]
    assert event_id and owner.appointment(booked["id"])["microsoftSync"]["state"] == "synced"

    ms_sandbox.state.script("events.update", {"status": 503, "reason": "ServiceUnavailable"})
    later = first + timedelta(hours=6)
    owner.client.patch(f"/appointments/{booked['id']}", headers=owner.headers,
                       json={"scheduledAt": later.strftime("%Y-%m-%dT%H:%M:%S.000Z")})
    run_jobs(owner.app)  # the push's retry is scheduled: a burst worker runs no scheduler
    backing_off = owner.appointment(booked["id"])["microsoftSync"]
    assert backing_off["state"] == "failed" and "503" in backing_off["error"]

    ms_sandbox.control("patch", f"/user/{OWNER}/events/{event_id}",
                       json={"subject": "Owner's note: parking at the back"}).raise_for_status()
    owner.settle()
    kept = owner.appointment(booked["id"])
    assert kept["scheduledAt"] == later.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert kept["microsoftSync"]["state"] != "synced"

    [appointment] = owner.appointments()
    push_appointment(adapter_for(MICROSOFT_CALENDAR), appointment.id)  # the retry, when its backoff ends
    owner.settle()
    final = owner.appointment(booked["id"])
    assert final["scheduledAt"] == later.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert final["microsoftSync"]["state"] == "synced"
    assert moment(_ms_event(ms_sandbox, event_id)["start"]) == later


def test_one_outlook_sync_imports_at_most_the_cap_and_says_what_it_left(owner, ms_sandbox):
    integration = owner.enable_two_way()
    owner.app.config["MICROSOFT_IMPORT_MAX_PER_SYNC"] = 5
    try:
        ms_sandbox.settings(notify=False)
        start = (datetime.now(UTC) + timedelta(days=7)).replace(hour=8, minute=0, second=0, microsecond=0)
        for n in range(8):
            owner.outlook(f"Own {n}", start + timedelta(hours=n))
        ms_sandbox.settings(notify=True)
        two_way_runs.sync_changes(str(integration.id))
    finally:
        owner.app.config["MICROSOFT_IMPORT_MAX_PER_SYNC"] = 100
    assert len(owner.appointments()) == 5
    assert "3 new Outlook events were not imported: one sync imports at most 5" in owner.integration().sync_error


def test_an_event_moved_out_of_the_window_is_not_taken_for_a_deleted_one(owner, ms_sandbox):
    """Graph's delta says `@removed` for an event moved out of the round's calendar view as for a deleted
    one. The owner moving their meeting to last week reschedules its appointment; only a real deletion
    cancels (a cancellation starts Zaps that text the customer)."""
    owner.enable_two_way()
    start = (datetime.now(UTC) + timedelta(days=3)).replace(hour=10, minute=0, second=0, microsecond=0)
    event = owner.outlook("Consultation", start)
    owner.settle()
    [appointment] = owner.appointments()
    last_week = start - timedelta(days=10)
    ms_sandbox.control("patch", f"/user/{OWNER}/events/{event['id']}", json={
        "start": {"dateTime": f"{last_week:%Y-%m-%dT%H:%M:%S}", "timeZone": "UTC"},
        "end": {"dateTime": f"{last_week + timedelta(minutes=45):%Y-%m-%dT%H:%M:%S}", "timeZone": "UTC"}}
    ).raise_for_status()
    owner.settle()
    [appointment] = owner.appointments()
    assert (appointment.status, appointment.scheduled_at) == ("scheduled", last_week)
    assert ms_sandbox.calls("events.get") >= 1  # the removal was checked
