"""Fault injection: Zapier webhooks and two-way calendar sync while everything around them fails.

Two accounts, one with a two-way Google connection (its calendar in the Google sandbox), one with a
two-way Microsoft 365 connection (its mailbox in the Microsoft sandbox), each with Zapier
subscriptions to all four events on a real HTTPS receiver that verifies every signature. Real
processes do the work: two `flask worker` processes (every queue) and the `flask scheduler`
(the sweepers, run every second or few). The app is served over HTTP in this process, so the
sandboxes' notifications reach it.

While at least 300 events are generated — appointments created, moved, cancelled and completed,
calls, and the calendar owners creating, moving and deleting events in their calendars — a chaos thread
SIGKILLs workers (restarting them; every other kill takes the one running RQ's scheduler), FLUSHes
the Redis database, terminates every PostgreSQL backend of this test's own database, and plays a
worker killed right after taking jobs off the queues (it BLPOPs them like RQ and drops a drain or a
two-way sync); the receiver fails a fifth of its requests (5xx, 429, a stall past the attempt
deadline, a 200 sent too late) and each sandbox 15 % of its calendar calls (5xx, 429, Google's 403
rateLimitExceeded, a stalled error, a write whose answer never comes within the client's timeout).
The last faults come during the last operations and nothing flushes Redis after them: a flush, a
termination, lost jobs, then every worker SIGKILLed the moment one holds a calendar lock. Then the
faults stop and nothing is done by hand: the scheduler's sweepers must bring everything home.

Asserted at the end: every event delivered at least once (re-deliveries carry the same
`webhook-id`, and one event never has two), every delivery `delivered`, no claim, lock or job left
behind, every scheduled or completed appointment mirrored in its owner's calendar exactly once at its
time, every cancelled one absent, every event the owner made imported once: for both providers. The
counts are printed (`pytest -s`); about two minutes on two cores. FAULT_SEED picks another run of the dice.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import threading
import time
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import psycopg2
import pytest
import requests
from sqlalchemy.engine import make_url

from callnfy_integrations import create_app
from callnfy_integrations.extensions import db as db_extension
from callnfy_integrations.google.event_body import event_id_for
from callnfy_integrations.google.tokens import LOCK_TIMEOUT_SECONDS as TOKEN_LOCK_SECONDS
from callnfy_integrations.locking import LOCK_LEASE_SECONDS
from callnfy_integrations.microsoft.event_body import tagged_appointment_id
from callnfy_integrations.public_ids import APPOINTMENT, decode
from callnfy_integrations.queues import ALL_QUEUES, redis_connection
from tests.factories import auth_headers
from tests.google_fixtures import google_settings, worker_env
from tests.loopback import serve_wsgi
from tests.microsoft_fixtures import microsoft_settings
from tests.receiver import Receiver
from tests.support import make_config, run_flask, wait_for

pytestmark = [pytest.mark.chaos, pytest.mark.processes]

ZAPIER_EVENTS = ("appointment.created", "appointment.cancelled", "appointment.completed", "call.received")
OWNERS = (("google", "owner-a@example.com"), ("microsoft", "owner-b@example.com"))
MIN_EVENTS = 300
OPERATIONS = 360  # API calls and the owners' edits; some are refused (a race, an event not yet in the calendar)
PACE_SECONDS = 0.12  # between operations: the faults below land throughout
CHAOS_EVERY_SECONDS = 3.0
CHAOS_SEQUENCE = ("kill", "flush", "terminate", "lose_taken_jobs", "kill", "terminate", "flush", "kill",
                  "lose_taken_jobs", "terminate", "flush", "kill")
FINAL_OPERATIONS = 50  # the last faults come while these run (a flush, a termination, lost jobs, kills)
RECOVERY_TIMEOUT = 130  # after the last fault: a killed claim's lease is 2 + 30 s, RQ's scheduler lock 8 s
PUBLIC_EVENT_ID = "'evt_' || replace(id::text, '-', '')"  # the webhook-id of an event row
SEED = int(os.environ.get("FAULT_SEED", "20261126"))

# The service as deployed, only faster: attempts cut at 2 s, retries within seconds, sweepers every second.
SETTINGS = {
    "WEBHOOK_ALLOWED_HOSTS": "localhost", "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
    "ZAPIER_AUTH_FAILURE_LIMIT": "1000 per minute", "GOOGLE_PUSH_RATE_LIMIT": "100000 per minute",
    "WEBHOOK_ATTEMPT_TIMEOUT": "2", "WEBHOOK_CONCURRENCY": "8", "WEBHOOK_DRAIN_SECONDS": "10",
    # Long enough that no delivery runs out of attempts under a fifth of failures plus lost attempts.
    "WEBHOOK_RETRY_SCHEDULE": ",".join(["1"] * 4 + ["2"] * 4 + ["3"] * 16),
    "WEBHOOK_SWEEP_SECONDS": "1",
    "OUTBOX_SWEEP_SECONDS": "1", "OUTBOX_GRACE_SECONDS": "3",
    "GOOGLE_SYNC_SWEEP_SECONDS": "1", "GOOGLE_SYNC_GRACE_SECONDS": "3",
    "GOOGLE_RETRY_BASE_SECONDS": "1", "GOOGLE_RETRY_MAX_SECONDS": "4",
    "GOOGLE_CHANNEL_SWEEP_SECONDS": "5", "GOOGLE_SAFETY_SYNC_SECONDS": "4",
    "GOOGLE_USER_RATE_LIMIT": "25 per second", "GOOGLE_SYNC_DEBOUNCE_SECONDS": "1",
    "MICROSOFT_SUBSCRIPTION_SWEEP_SECONDS": "5", "MICROSOFT_SAFETY_SYNC_SECONDS": "4",
    "MICROSOFT_SYNC_DEBOUNCE_SECONDS": "1", "MICROSOFT_NOTIFICATION_RATE_LIMIT": "100000 per minute",
}
RECEIVER_FAULT_RATE = 0.2
SANDBOX_FAULT_RATE = 0.15
SANDBOX_FAULTS = [{"status": 500}, {"status": 503}, {"status": 503}, {"status": 429, "retryAfter": 1},
                  {"status": 429}, {"status": 403, "reason": "rateLimitExceeded"}, {"status": 503, "sleep": 2},
                  {"stall": 11}]  # the Calendar client gives up after 10 s: the write happened, its answer is lost
SANDBOX_FAULT_ENDPOINTS = ["events.insert", "events.update", "events.patch", "events.delete", "events.list",
                           "events.watch", "channels.stop", "token:refresh_token"]
# Graph's: the same faults but Google's 403 (Graph throttles with 429 only); its client gives up after 10 s too.
GRAPH_FAULTS = [f for f in SANDBOX_FAULTS if f.get("status") != 403]
GRAPH_FAULT_ENDPOINTS = ["events.create", "events.update", "events.delete", "calendarView.delta",
                         "subscriptions.create", "subscriptions.update", "subscriptions.delete", "token:refresh_token"]


# -- the database, straight (this test's own connections come and go with the terminations) -------

class Database:
    def __init__(self, url: str):
        parsed = make_url(url)
        self.name = parsed.database
        self.dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)

    def rows(self, query: str, *params) -> list[tuple]:
        for attempt in range(5):
            try:
                conn = psycopg2.connect(self.dsn)
                try:
                    with conn.cursor() as cur:
                        cur.execute(query, params)
                        result = cur.fetchall() if cur.description else []
                    conn.commit()
                    return result
                finally:
                    conn.close()
            except psycopg2.OperationalError:
                if attempt == 4:
                    raise
                time.sleep(0.2)
        return []

    def value(self, query: str, *params):
        return self.rows(query, *params)[0][0]

    def terminate_backends(self) -> int:
        """Every other backend of this test's own database (never another database on the server)."""
        assert self.name.startswith("callnfy_test_"), self.name  # the suite's own, made for this run
        return self.value("SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                          "WHERE datname = %s AND datname = current_database() AND pid <> pg_backend_pid()",
                          self.name)


# -- processes ------------------------------------------------------------------------------------

class Process:
    """A `flask` process whose output is read as it comes (a full pipe would block it)."""

    def __init__(self, env: dict, *args: str):
        self.args = args
        self.popen = run_flask(env, *args)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.popen.stdout:
            self.lines.append(line.rstrip("\n"))

    def kill(self) -> None:
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)  # the worker and its RQ scheduler child: a crashed dyno
        except ProcessLookupError:
            pass
        self.popen.wait(10)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(25)
            except Exception:
                pass
        self.kill()
        self.reader.join(5)

    def holds_rq_scheduler_lock(self, redis_client) -> bool:
        """Whether this worker's RQ scheduler process holds a queue's scheduler lock (every worker runs
        one; the holder moves that queue's delayed jobs: retries, debounced syncs)."""
        for queue in ALL_QUEUES:
            holder = redis_client.get(f"rq:scheduler-lock:{queue}")
            pid = holder and redis_client.hget(f"rq:scheduler:{holder.decode()}", "pid")
            if pid:
                try:
                    with open(f"/proc/{int(pid)}/stat") as stat:
                        if stat.read().rsplit(")", 1)[1].split()[1] == str(self.popen.pid):
                            return True
                except OSError:
                    continue
        return False

    def tail(self, n: int = 30) -> str:
        return "\n".join(self.lines[-n:])


# -- the app, served over HTTP for Google's notifications -----------------------------------------

@pytest.fixture
def served_app(database_url, servers, sandbox, ms_sandbox, ca_bundle, app):
    server = serve_wsgi()
    url = server.url
    application = create_app(make_config(database_url, servers["redis"], PUBLIC_API_URL=url, LOG_LEVEL="CRITICAL",
                                         WEBHOOK_CA_BUNDLE=ca_bundle, **SETTINGS, **google_settings(sandbox),
                                         **microsoft_settings(ms_sandbox)))
    server.app = application
    requests.post(f"{sandbox.url}/sandbox/reset", timeout=5).raise_for_status()
    sandbox.settings(access_token_lifetime=3599, rotate_refresh_tokens=False, notify=True, token_delay=0,
                     write_delay=0, time_zones={})
    ms_sandbox.fresh()
    # Entra does not revoke a refresh token when it issues the next one: a refresh whose answer was lost
    # is repeated with the token we still hold (the sandbox's default refuses it at once).
    ms_sandbox.settings(refresh_token_grace=86400)
    yield application, url
    requests.post(f"{sandbox.url}/sandbox/reset", timeout=5)  # no random failures for the next tests
    ms_sandbox.fresh()
    server.shutdown()


class GoogleCalendar:
    """The owner's Google calendar, as the owner and the test's checks see it."""

    provider, name = "google_calendar", "Google"

    def __init__(self, sandbox):
        self.sandbox = sandbox

    def consent(self, auth_url: str, email: str) -> requests.Response:
        return requests.get(auth_url + f"&sandbox_decision=allow&sandbox_email={email}", allow_redirects=False,
                            timeout=5)

    def _owner(self, method: str, email: str, path: str = "", **kwargs) -> requests.Response:
        return requests.request(method, f"{self.sandbox.url}/sandbox/user/{email}/events{path}", timeout=5, **kwargs)

    def owner_create(self, email: str, start: datetime, minutes: int, n: int) -> str:
        response = self._owner("post", email, json={
            "summary": f"Booked in Google {n}", "start": {"dateTime": start.isoformat()},
            "end": {"dateTime": (start + timedelta(minutes=minutes)).isoformat()},
            "attendees": [{"email": email, "self": True},
                          {"email": f"guest{n}@example.com", "displayName": f"Guest {n}"}]})
        assert response.status_code == 201
        return response.json()["id"]

    def owner_move(self, email: str, event_id: str, start: datetime, minutes: int) -> bool:
        return self._owner("patch", email, f"/{event_id}", json={
            "start": {"dateTime": start.isoformat()},
            "end": {"dateTime": (start + timedelta(minutes=minutes)).isoformat()}}).status_code == 200

    def owner_delete(self, email: str, event_id: str) -> bool:
        return self._owner("delete", email, f"/{event_id}").status_code == 204

    def our_event_id(self, db: Database, appointment: str) -> str | None:
        return event_id_for(decode(APPOINTMENT, appointment))  # deterministic: known before it is written

    def live_events(self, email: str) -> list[tuple[str, uuid.UUID | None, datetime, datetime]]:
        """(event id, the appointment tagged on it, start, end) of every live event."""
        found = []
        for event in self.sandbox.events(email):
            private = (event.get("extendedProperties") or {}).get("private") or {}
            found.append((event["id"], decode(APPOINTMENT, private.get("callnfyAppointmentId") or ""),
                          datetime.fromisoformat(event["start"]["dateTime"]),
                          datetime.fromisoformat(event["end"]["dateTime"])))
        return found

    def counts(self, email: str) -> str:
        events = self.sandbox.events(email, live_only=False)
        live = sum(1 for e in events if e["status"] != "cancelled")
        return f"live {live}, cancelled {len(events) - live}"

    def chaos(self, rate: float) -> dict:
        body = {"rate": rate, "faults": SANDBOX_FAULTS, "endpoints": SANDBOX_FAULT_ENDPOINTS, "seed": SEED}
        response = requests.post(f"{self.sandbox.url}/sandbox/chaos", json=body if rate else {"rate": 0}, timeout=5)
        response.raise_for_status()
        return response.json()

    def calls(self) -> dict:
        calls = requests.get(f"{self.sandbox.url}/sandbox/calls", timeout=5).json()
        return {k: v for k, v in sorted(calls.items()) if k.startswith(("events.", "channels."))}


class MicrosoftCalendar(GoogleCalendar):
    """The owner's Outlook calendar (the Microsoft sandbox's mailbox)."""

    provider, name = "microsoft_calendar", "Outlook"

    def _owner(self, method: str, email: str, path: str = "", **kwargs) -> requests.Response:
        return self.sandbox.control(method, f"/user/{email}/events{path}", **kwargs)

    @staticmethod
    def _times(start: datetime, minutes: int) -> dict:
        end = start + timedelta(minutes=minutes)
        return {"start": {"dateTime": f"{start:%Y-%m-%dT%H:%M:%S}", "timeZone": "UTC"},
                "end": {"dateTime": f"{end:%Y-%m-%dT%H:%M:%S}", "timeZone": "UTC"}}

    def owner_create(self, email: str, start: datetime, minutes: int, n: int) -> str:
        response = self._owner("post", email, json={
            "subject": f"Booked in Outlook {n}", **self._times(start, minutes),
            "attendees": [{"emailAddress": {"address": f"guest{n}@example.com", "name": f"Guest {n}"},
                           "type": "required"}]})
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def owner_move(self, email: str, event_id: str, start: datetime, minutes: int) -> bool:
        return self._owner("patch", email, f"/{event_id}", json=self._times(start, minutes)).status_code == 200

    def our_event_id(self, db: Database, appointment: str) -> str | None:
        """Graph names the event when it is created: known once the push has recorded it."""
        rows = db.rows("SELECT event_id FROM calendar_links WHERE appointment_id = %s "
                       "AND provider = 'microsoft_calendar'", str(decode(APPOINTMENT, appointment)))
        return rows[0][0] if rows else None

    def live_events(self, email: str) -> list[tuple[str, uuid.UUID | None, datetime, datetime]]:
        from callnfy_integrations.dev.microsoft_sandbox.times import moment

        return [(event["id"], tagged_appointment_id(event), moment(event["start"]), moment(event["end"]))
                for event in self.sandbox.events(email) if not event.get("isCancelled")]

    def counts(self, email: str) -> str:
        return f"live {len(self.live_events(email))}"

    def chaos(self, rate: float) -> dict:
        body = {"rate": rate, "faults": GRAPH_FAULTS, "endpoints": GRAPH_FAULT_ENDPOINTS, "seed": SEED}
        response = self.sandbox.control("post", "/chaos", json=body if rate else {"rate": 0})
        response.raise_for_status()
        return response.json()

    def calls(self) -> dict:
        calls = self.sandbox.control("get", "/calls").json()
        return {k: v for k, v in sorted(calls.items()) if k.startswith(("events.", "calendarView.", "subscriptions."))}


class Account:
    """A Callnfy user: its calendar (Google or Microsoft) connected in two-way mode, Zapier subscribed to
    all four events."""

    def __init__(self, app, calendar: GoogleCalendar, receiver, email: str, index: int):
        self.client = app.test_client()
        self.calendar = calendar
        self.email = email
        self.user_id = uuid.uuid4()
        self.headers = auth_headers(self.user_id, expires_in=3600)
        self.scheduled: list[str] = []  # Callnfy-made appointments this generator may still change
        self.owner_born: list[str] = []  # events the owner made in the calendar, which only the owner changes
        self.owner_moved: set[str] = set()  # Callnfy-made appointments the owner moved there: hands off

        provider = calendar.provider.split("_")[0]
        response = self.client.post(f"/integrations/{provider}/connect", headers=self.headers)
        assert response.status_code == 200, response.json
        consent = calendar.consent(response.json["data"]["authUrl"], email)
        location = urlsplit(consent.headers["Location"])
        callback = self.client.get(f"{location.path}?{location.query}")
        assert parse_qs(urlsplit(callback.headers["Location"]).query) == {"success": ["true"]}
        response = self.client.put(f"/integrations/{provider}/settings", json={"syncMode": "two-way"},
                                   headers=self.headers)
        assert response.status_code == 200, response.json
        self.api_key = self.client.post("/integrations/zapier/generate-key", headers=self.headers).json[
            "data"]["apiKey"]
        self.path = f"/hooks/{index}"
        receiver.keys[self.path] = self.api_key
        for event in ZAPIER_EVENTS:
            response = self.client.post(f"/webhooks/zapier/{self.user_id}/subscriptions",
                                        headers={"X-Callnfy-Key": self.api_key},
                                        json={"hookUrl": receiver.url(self.path), "event": event})
            assert response.status_code == 201, response.json

    def api(self, method: str, path: str, **kwargs):
        """The API as the SPA calls it; a 500 (its database connection was just terminated) is retried.
        So is a request whose session teardown met the terminated connection: in-process, the test
        client raises what a WSGI server answers as a 500. `self.retried` says whether it was: the
        failed attempt may have committed before it failed."""
        from sqlalchemy.exc import OperationalError

        self.retried = False
        for _ in range(6):
            try:
                response = getattr(self.client, method)(path, headers=self.headers, **kwargs)
            except OperationalError:
                response = None
            if response is not None and response.status_code < 500:
                return response
            self.retried = True
            time.sleep(0.2)
        raise AssertionError(f"{method} {path} kept failing: {response and response.status_code}")


FIRST_DAY = (datetime.now(UTC) + timedelta(days=1)).replace(hour=8, minute=0, second=0, microsecond=0)


def when(rng: random.Random) -> tuple[datetime, int]:
    """A time in the next 60 days. Ahead of now: Outlook's delta follows a calendar view that starts a day
    back, so an event made and moved further into the past between two syncs is never reported (as
    Graph's would not be); what that means for Callnfy is tests/test_microsoft_two_way.py's business."""
    start = FIRST_DAY + timedelta(days=rng.randrange(60), minutes=15 * rng.randrange(40))
    return start, rng.choice((15, 30, 45, 60, 90))


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


class Generator:
    """Appointments, calls and the owners' own edits in their calendars, at random (seeded)."""

    def __init__(self, accounts: list[Account], seed: int, db: Database):
        self.accounts = accounts
        self.db = db
        self.rng = random.Random(seed)
        self.done: Counter = Counter()  # operation -> accepted
        self.refused: Counter = Counter()  # operation -> not applied (nothing to pick, an event not yet in
        # the calendar, a transition a retried request had already made)

    def step(self) -> None:
        account = self.rng.choice(self.accounts)
        operation = self.rng.choices(
            ["create", "call", "move", "cancel", "complete", "o_create", "o_move", "o_move_ours", "o_delete"],
            weights=[28, 22, 14, 8, 8, 10, 4, 3, 3])[0]
        ok = getattr(self, operation)(account)
        (self.done if ok else self.refused)[operation] += 1

    def create(self, account: Account) -> bool:
        start, minutes = when(self.rng)
        n = self.rng.randrange(10_000)
        body = {"customerName": f"Customer {n}", "customerPhone": f"+4477009{n:05d}", "scheduledAt": iso(start),
                "duration": minutes, "notes": "fault injection"}
        if self.rng.random() < 0.5:
            body["customerEmail"] = f"customer{n}@example.com"
        response = account.api("post", "/appointments", json=body)
        assert response.status_code == 201, response.json
        account.scheduled.append(response.json["data"]["id"])
        return True

    def call(self, account: Account) -> bool:
        n = self.rng.randrange(10_000)
        response = account.api("post", "/calls", json={
            "customerName": f"Caller {n}", "customerPhone": f"+1415555{n:04d}", "duration": self.rng.randrange(5, 900),
            "recordingUrl": f"https://recordings.callnfy.test/{n}.mp3", "transcript": "I'd like to book.",
            "sentiment": self.rng.choice(("positive", "neutral", "negative")),
            "receivedAt": iso(datetime.now(UTC))})
        assert response.status_code == 201, response.json
        return True

    def _pick(self, account: Account) -> str | None:
        candidates = [a for a in account.scheduled if a not in account.owner_moved]
        return self.rng.choice(candidates) if candidates else None

    def move(self, account: Account) -> bool:
        appointment = self._pick(account)
        if appointment is None:
            return False
        start, minutes = when(self.rng)
        response = account.api("patch", f"/appointments/{appointment}", json={"scheduledAt": iso(start),
                                                                              "duration": minutes})
        assert response.status_code == 200, response.json  # only this generator changes it: no race
        return True

    def cancel(self, account: Account) -> bool:
        appointment = self._pick(account)
        if appointment is None:
            return False
        account.scheduled.remove(appointment)
        response = account.api("post", f"/appointments/{appointment}/cancel", json={"reason": "Fault injection"})
        return self._applied(account, appointment, response, "cancelled")

    def complete(self, account: Account) -> bool:
        appointment = self._pick(account)
        if appointment is None:
            return False
        account.scheduled.remove(appointment)
        response = account.api("post", f"/appointments/{appointment}/complete", json={"duration": 25})
        return self._applied(account, appointment, response, "completed")

    @staticmethod
    def _applied(account: Account, appointment: str, response, status: str) -> bool:
        """A transition of an appointment only this generator changes is a 200. The one 409 allowed is
        a retry's, after a 5xx whose request had committed: then the appointment has that status."""
        if response.status_code == 200:
            return True
        assert response.status_code == 409 and account.retried, response.json
        assert account.api("get", f"/appointments/{appointment}").json["data"]["status"] == status
        return False

    # -- the owner, in their calendar
    def o_create(self, account: Account) -> bool:
        start, minutes = when(self.rng)
        account.owner_born.append(account.calendar.owner_create(account.email, start, minutes,
                                                                self.rng.randrange(10_000)))
        return True

    def _owner_move(self, account: Account, event_id: str) -> bool:
        start, minutes = when(self.rng)
        return account.calendar.owner_move(account.email, event_id, start, minutes)

    def o_move(self, account: Account) -> bool:
        return bool(account.owner_born) and self._owner_move(account, self.rng.choice(account.owner_born))

    def o_move_ours(self, account: Account) -> bool:
        """The owner moves an event Callnfy made (once it is there); Callnfy leaves that appointment alone."""
        appointment = self._pick(account)
        if appointment is None:
            return False
        event_id = account.calendar.our_event_id(self.db, appointment)
        if event_id is None:
            return False
        account.owner_moved.add(appointment)
        return self._owner_move(account, event_id)

    def o_delete(self, account: Account) -> bool:
        if not account.owner_born:
            return False
        event_id = account.owner_born.pop(self.rng.randrange(len(account.owner_born)))
        return account.calendar.owner_delete(account.email, event_id)


class Chaos:
    """Kills, flushes, terminations and lost jobs, one every few seconds while the generator runs,
    then the last ones (see `_run`)."""

    def __init__(self, db: Database, redis_client, workers: list[Process], start_worker, seed: int):
        self.db, self.redis, self.workers, self.start_worker = db, redis_client, workers, start_worker
        self.rng = random.Random(seed)
        self.kills = self.flushes = self.terminations = self.terminated_backends = 0
        self.lost_jobs: Counter = Counter()
        self.crashed: list[str] = []  # workers that died without being killed: a bug
        self.finishing = threading.Event()
        self.lock_held_at_last_kill: str | None = None
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        try:
            for action in itertools.cycle(CHAOS_SEQUENCE):
                if self.finishing.wait(CHAOS_EVERY_SECONDS * self.rng.uniform(0.7, 1.3)):
                    break
                self.check_workers()
                getattr(self, action)()
            # The last faults, while the last operations run: nothing flushes Redis after them, so
            # what they leave behind (lost jobs, a dead holder's locks) is the sweepers' to repair.
            self.flush()
            self.terminate()
            self.lose_taken_jobs()
            self.lock_held_at_last_kill = self.kill_all_holding_a_lock()
        except BaseException as exc:  # reported by the test
            self.errors.append(exc)

    def check_workers(self) -> None:
        for index, worker in enumerate(self.workers):
            if worker.popen.poll() is not None:
                self.crashed.append(f"exit {worker.popen.returncode}:\n{worker.tail()}")
                self.workers[index] = self.start_worker()

    def kill(self) -> None:
        # Every other kill takes the worker whose RQ scheduler holds the lock (delayed jobs: retries,
        # debounced syncs), so another worker's has to take that over.
        holders = [n for n, worker in enumerate(self.workers) if worker.holds_rq_scheduler_lock(self.redis)]
        index = holders[0] if holders and self.kills % 2 == 0 else self.rng.randrange(len(self.workers))
        self.workers[index].kill()
        self.kills += 1
        time.sleep(self.rng.uniform(0.2, 1.0))  # the dyno manager restarts it
        self.workers[index] = self.start_worker()

    def kill_all_holding_a_lock(self, timeout: float = 15.0) -> str | None:
        """SIGKILL every worker the moment one holds a calendar lock (a push's or a calendar sync's, of
        either provider), then restart them: the lock's holder is gone for good, with whatever it was doing."""
        deadline = time.monotonic() + timeout
        held = None
        while held is None and time.monotonic() < deadline:
            held = next(self.redis.scan_iter("callnfy:lock:google-*"), None) or \
                next(self.redis.scan_iter("callnfy:lock:microsoft*"), None)
            if held is None:
                time.sleep(0.002)
        for worker in self.workers:
            worker.kill()
            self.kills += 1
        time.sleep(0.5)
        for index in range(len(self.workers)):
            self.workers[index] = self.start_worker()
        return held and held.decode().split(":")[2]

    def lose_taken_jobs(self, timeout: float = 8.0) -> None:
        """A worker that takes jobs off the queues and is SIGKILLed before it starts them: this one
        takes them as RQ's workers do (BLPOP, competing with the real workers) and drops one job of
        each kind that clears a flag as it starts — the outbox drain, the webhook drain, a two-way
        sync. What it takes of any other kind it puts back, first in line."""
        from rq.exceptions import NoSuchJobError
        from rq.job import Job

        wanted = {"jobs.events.drain_outbox", "jobs.webhooks.send_webhooks", "jobs.google.sync_calendar",
                  "jobs.microsoft.sync_calendar"}
        deadline = time.monotonic() + timeout
        while wanted and time.monotonic() < deadline:
            taken = self.redis.blpop([f"rq:queue:{name}" for name in ALL_QUEUES], timeout=1)
            if taken is None:
                continue
            key, job_id = taken
            try:
                job = Job.fetch(job_id.decode(), connection=self.redis)
            except NoSuchJobError:
                continue
            if job.func_name in wanted:
                wanted.discard(job.func_name)
                self.lost_jobs[job.func_name] += 1
            else:
                self.redis.lpush(key, job_id)

    def flush(self) -> None:
        self.redis.flushdb()  # queued, scheduled and running jobs' records, doorbells, locks: all gone
        self.flushes += 1

    def terminate(self) -> None:
        self.terminated_backends += self.db.terminate_backends()
        self.terminations += 1


# -- what the end state must be ---------------------------------------------------------------------

def mirror_problems(db: Database, account: Account) -> list[str]:
    """Every scheduled or completed appointment has exactly one live event in the account's calendar at
    its time; no cancelled one has any; no live event is unknown to Callnfy."""
    calendar = account.calendar
    appointments = {row[0]: row for row in db.rows(
        "SELECT a.id, a.status, a.scheduled_at, a.duration, l.event_id, l.state, a.source, a.version, "
        "l.synced_version FROM appointments a "
        "LEFT JOIN calendar_links l ON l.appointment_id = a.id AND l.provider = %s "
        "WHERE a.user_id = %s", calendar.provider, str(account.user_id))}
    by_event_id = {row[4]: row[0] for row in appointments.values() if row[4]}
    live: dict[str, list[tuple]] = defaultdict(list)
    problems = []
    for event_id, tagged, start, end in calendar.live_events(account.email):
        appointment_id = str(tagged) if tagged else by_event_id.get(event_id)
        if appointment_id not in appointments:
            problems.append(f"live {calendar.name} event {event_id} belongs to no appointment")
            continue
        live[appointment_id].append((start, end))
    for appointment_id, (_, status, scheduled_at, duration, event_id, sync_state, source, version,
                         synced_version) in appointments.items():
        events = live.get(appointment_id, [])
        if sync_state != "synced":
            problems.append(f"appointment {appointment_id} ({status}) is {sync_state}, not synced")
        if status == "cancelled":
            if events:
                problems.append(f"cancelled appointment {appointment_id} still has {len(events)} "
                                f"{calendar.name} event(s)")
            continue
        if len(events) != 1:
            problems.append(f"{status} appointment {appointment_id} has {len(events)} {calendar.name} events "
                            f"(source {source}, v{version}, synced v{synced_version}, event {event_id})")
            continue
        start, end = events[0]
        if start != scheduled_at or end - start != timedelta(minutes=duration):
            problems.append(f"appointment {appointment_id} at {scheduled_at} for {duration} min is in "
                            f"{calendar.name} at {start} for {(end - start).total_seconds() / 60:g} min")
    return problems


def delivery_problems(db: Database, receiver: Receiver, accounts: list[Account]) -> list[str]:
    users = [str(a.user_id) for a in accounts]
    events = db.rows(f"SELECT {PUBLIC_EVENT_ID} FROM events WHERE user_id::text = ANY(%s) AND type = ANY(%s)",
                     users, list(ZAPIER_EVENTS))
    received = {r.headers.get("webhook-id") for r in list(receiver.accepted)}
    problems = [f"event {event_id} never delivered" for (event_id,) in events if event_id not in received]
    for status, count in db.rows("SELECT status, count(*) FROM webhook_deliveries GROUP BY status"):
        if status != "delivered":
            problems.append(f"{count} deliveries {status}")
    problems += [f"{n} events undispatched" for n in [db.value("SELECT count(*) FROM events "
                                                               "WHERE dispatched_at IS NULL")] if n]
    problems += [f"{n} deliveries claimed" for n in [db.value("SELECT count(*) FROM webhook_deliveries "
                                                              "WHERE claimed_until IS NOT NULL")] if n]
    return problems


def settled(db, receiver, accounts) -> list[str]:
    problems = delivery_problems(db, receiver, accounts)
    for account in accounts:
        problems += mirror_problems(db, account)
    return problems


def test_every_event_arrives_and_every_appointment_is_mirrored_once_whatever_fails(
        served_app, sandbox, ms_sandbox, receiver, config, ca_bundle, database_url, tmp_path, app):
    started = time.monotonic()
    web, url = served_app
    db = Database(database_url)
    redis_client = redis_connection(web)
    calendars = {"google": GoogleCalendar(sandbox), "microsoft": MicrosoftCalendar(ms_sandbox)}
    accounts = [Account(web, calendars[provider], receiver, email, n) for n, (provider, email) in enumerate(OWNERS)]

    env = worker_env(config, sandbox, PUBLIC_API_URL=url, WEBHOOK_CA_BUNDLE=ca_bundle, LOG_LEVEL="INFO",
                     RQ_LOG_LEVEL="WARNING", **SETTINGS, **microsoft_settings(ms_sandbox))
    scheduler = Process(env, "scheduler")
    workers = [Process(env, "worker") for _ in range(2)]  # every queue, as a small deployment runs it
    restarted: list[Process] = []
    processes = [scheduler, *workers]

    def start_worker() -> Process:
        process = Process(env, "worker")
        restarted.append(process)
        processes.append(process)
        return process

    chaos = Chaos(db, redis_client, workers, start_worker, SEED)
    generator = Generator(accounts, SEED, db)
    try:
        # Both calendars in two-way mode (baseline taken, channel or subscription open) before anything fails.
        wait_for(lambda: db.value("SELECT count(*) FROM integrations WHERE channel_id IS NOT NULL "
                                  "AND sync_token IS NOT NULL") == 2, timeout=60)
        setup_seconds = time.monotonic() - started

        receiver.mode, receiver.chaos_rate, receiver.chaos_stall = "chaos", RECEIVER_FAULT_RATE, 3.0
        for calendar in calendars.values():
            calendar.chaos(SANDBOX_FAULT_RATE)
        chaos.thread.start()
        generating = time.monotonic()
        for n in range(OPERATIONS):
            if n == OPERATIONS - FINAL_OPERATIONS:
                chaos.finishing.set()
            generator.step()
            time.sleep(PACE_SECONDS)
            assert not chaos.errors, chaos.errors
        chaos.thread.join(60)
        assert not chaos.errors and not chaos.thread.is_alive(), chaos.errors
        lock_held_at_last_kill = chaos.lock_held_at_last_kill
        receiver.chaos_rate = 0.0
        sandbox_chaos = {name: calendar.chaos(0) for name, calendar in calendars.items()}
        generated_seconds = time.monotonic() - generating

        recovering = time.monotonic()
        last: list[str] = []

        def converged():
            nonlocal last
            last = settled(db, receiver, accounts)
            return not last

        try:
            wait_for(converged, timeout=RECOVERY_TIMEOUT, interval=1.0)
        except AssertionError:
            kinds = Counter(" ".join(w for w in p.split() if not any(c.isdigit() for c in w)) for p in last)
            for name, calendar in calendars.items():  # every call each sandbox answered, for the post-mortem
                (tmp_path / f"{name}-sandbox-requests.json").write_text(json.dumps(
                    requests.get(f"{calendar.sandbox.url}/sandbox/requests", timeout=10).json(), default=str))
            raise AssertionError(f"not recovered within {RECOVERY_TIMEOUT}s: {len(last)} problems {dict(kinds)}, "
                                 f"e.g. {last[:10]}\n{diagnose(db)}\nlogs in {keep_logs(tmp_path, processes)}") \
                from None
        recovery_seconds = time.monotonic() - recovering
        chaos.check_workers()
        stuck = stuck_work(redis_client, db, chaos.workers)
    finally:
        chaos.finishing.set()
        receiver.chaos_rate = 0.0
        for calendar in calendars.values():
            calendar.chaos(0)
        for process in [scheduler, *chaos.workers]:
            process.stop()
        for process in [*workers, *restarted]:
            process.kill()
        for application in (app, web):  # their pooled connections were terminated: the cleanup needs new ones
            with application.app_context():
                for engine in db_extension.engines.values():
                    engine.dispose()

    # -- what arrived, and how often
    users = [str(a.user_id) for a in accounts]
    events_by_type = dict(db.rows("SELECT type, count(*) FROM events WHERE user_id::text = ANY(%s) GROUP BY type",
                                  users))
    zapier_events = {event_id: event_type for event_id, event_type in db.rows(
        f"SELECT {PUBLIC_EVENT_ID}, type FROM events WHERE user_id::text = ANY(%s) AND type = ANY(%s)", users,
        list(ZAPIER_EVENTS))}
    accepted = list(receiver.accepted)
    per_webhook_id = Counter(r.headers["webhook-id"] for r in accepted)
    ids_per_subject: dict[tuple, set] = defaultdict(set)
    for request in accepted:
        body = json.loads(request.body)
        assert body["id"] == request.headers["webhook-id"]  # the webhook-id is the event's id
        assert zapier_events.get(body["id"]) == body["event"], body  # a real event, of its type
        ids_per_subject[(body["event"], body["data"]["id"])].add(body["id"])
    twice = {subject: ids for subject, ids in ids_per_subject.items() if len(ids) > 1}
    duplicates = sum(count - 1 for count in per_webhook_id.values())

    attempts = dict(db.rows("SELECT coalesce(error, 'ok'), count(*) FROM ("
                            "SELECT CASE WHEN error LIKE '%%no outcome%%' THEN 'lost (worker killed)' "
                            "WHEN status_code BETWEEN 200 AND 299 THEN NULL "
                            "WHEN status_code IS NOT NULL THEN 'HTTP ' || status_code "
                            "WHEN error LIKE 'deadline%%' THEN 'deadline' ELSE 'network' END AS error "
                            "FROM webhook_attempts) a GROUP BY 1"))
    sweeps = Counter()
    for process in [scheduler, *workers, *restarted]:
        for line in process.lines:
            if "sweep re-enqueued" in line or "drain job was lost" in line:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if "doorbell" in record:  # Doorbell.repair: a drain job lost with its worker, replaced
                    sweeps[f"lost {record['doorbell']} drains replaced"] += 1
                else:
                    sweeps[record["message"]] += int(record.get("count") or 0)
    failed_jobs, abandoned_jobs = stuck.pop("failed jobs"), stuck.pop("abandoned jobs")

    print("\n-- fault injection " + "-" * 60)
    print(f"seed {SEED}; setup {setup_seconds:.1f}s, generating under faults {generated_seconds:.1f}s, "
          f"recovery {recovery_seconds:.1f}s, total {time.monotonic() - started:.1f}s")
    print(f"operations accepted {dict(generator.done)}; refused (races) {dict(generator.refused)}")
    print(f"events generated {sum(events_by_type.values())}: {events_by_type}")
    print(f"webhook events {len(zapier_events)}; deliveries accepted by the receiver {len(accepted)} "
          f"(requests {len(receiver.requests)}); duplicates {duplicates} on "
          f"{sum(1 for c in per_webhook_id.values() if c > 1)} events, each with its one webhook-id")
    print(f"webhook attempts by outcome {attempts}")
    print(f"faults: SIGKILLed workers {chaos.kills} (the last two while holding the {lock_held_at_last_kill} "
          f"lock), Redis flushes {chaos.flushes}, PostgreSQL terminations {chaos.terminations} "
          f"({chaos.terminated_backends} backends), jobs taken by a worker killed before starting them "
          f"{dict(chaos.lost_jobs)}")
    print(f"injected: receiver {dict(receiver.injected)}; " + "; ".join(
        f"{name} sandbox {chaos_['injectedFaults']} on {chaos_['injected']}" for name, chaos_ in sandbox_chaos.items()))
    for account in accounts:
        print(f"{account.calendar.name} events: {account.calendar.counts(account.email)}; "
              f"calls {account.calendar.calls()}")
    print(f"sweepers re-enqueued {dict(sweeps)}; RQ jobs failed {failed_jobs} and abandoned by killed workers "
          f"{abandoned_jobs} since the last flush (their work redone); nothing stuck: {stuck}")

    assert not chaos.crashed, chaos.crashed  # no worker died but those killed
    assert sum(events_by_type.values()) >= MIN_EVENTS
    assert receiver.bad_signatures == 0
    assert not twice, twice  # one event, one webhook-id, however often it was sent
    assert set(per_webhook_id) == set(zapier_events)  # every event delivered at least once
    assert chaos.kills >= 4 and chaos.flushes >= 3 and chaos.terminations >= 3 and chaos.terminated_backends
    assert sum(chaos.lost_jobs.values()) >= 3
    # Nothing was re-driven by hand: the scheduler's sweepers found what Redis and the workers lost.
    assert sweeps["outbox sweep re-enqueued events"] and sweeps["calendar sweep re-enqueued pushes"], sweeps
    assert sum(receiver.injected.values())
    assert all(sum(chaos_["injected"].values()) for chaos_ in sandbox_chaos.values()), sandbox_chaos
    assert not any(stuck.values()), (stuck, diagnose(db))


def diagnose(db: Database) -> str:
    """What is left over, for a failure message."""
    return "\n".join([
        "deliveries not delivered: " + repr(db.rows(
            "SELECT status, attempts, last_error, next_attempt_at - now(), claimed_until - now() "
            "FROM webhook_deliveries WHERE status <> 'delivered' ORDER BY next_attempt_at LIMIT 10")),
        "events undispatched: " + repr(db.rows(
            "SELECT type, attempts, last_error, next_attempt_at - now() FROM events WHERE dispatched_at IS NULL "
            "LIMIT 10")),
        "appointments not synced: " + repr(db.rows(
            "SELECT a.status, a.source, l.provider, l.state, l.attempts, l.error, l.next_sync_at - now() "
            "FROM calendar_links l JOIN appointments a ON a.id = l.appointment_id "
            "WHERE l.state <> 'synced' OR l.next_sync_at IS NOT NULL LIMIT 10")),
        "two-way: " + repr(db.rows(
            "SELECT sync_attempts, sync_error, last_sync_at - now(), channel_id IS NOT NULL, sync_token IS NOT NULL "
            "FROM integrations WHERE provider IN ('google_calendar', 'microsoft_calendar')"))])


def keep_logs(directory, processes: list[Process]) -> str:
    for n, process in enumerate(processes):
        (directory / f"{n}-{process.args[0]}-{process.popen.pid}.log").write_text("\n".join(process.lines))
    return str(directory)


def locks_left(redis_client, within: float = max(LOCK_LEASE_SECONDS, TOKEN_LOCK_SECONDS) + 5) -> list[str]:
    """The Redis locks held now that are still held by the same holder `within` seconds later: a live
    holder releases its lock within seconds of finishing, a dead one's expires within its lease, and a
    lock without an expiry (TTL -1) never goes. Any left is a stuck holder or a leaked lock."""
    held = {key: redis_client.get(key) for key in redis_client.scan_iter("callnfy:lock:*")}
    deadline = time.monotonic() + within
    while held and time.monotonic() < deadline:
        time.sleep(0.5)
        held = {key: token for key, token in held.items() if redis_client.get(key) == token}  # same holder
    return sorted(key.decode() for key in held)


def stuck_work(redis_client, db: Database, workers: list[Process]) -> dict:
    """What would show a stuck job or claim once everything has converged (all should be empty)."""
    from rq import Queue, Worker
    from rq.job import Job
    from rq.registry import FailedJobRegistry, StartedJobRegistry

    live = {w.name for w in Worker.all(connection=redis_client) if w.pid in {p.popen.pid for p in workers}}
    stuck: dict = {"failed jobs": 0, "abandoned jobs": 0}
    for name in ALL_QUEUES:
        queue = Queue(name, connection=redis_client)
        started = [job for job in Job.fetch_many(StartedJobRegistry(queue=queue).get_job_ids(cleanup=False),
                                                 connection=redis_client) if job is not None]
        # A live worker's job running for over a minute (a drain sends for 10 s at most) is stuck. A
        # killed worker's is abandoned: RQ fails it when its timeout passes, and the sweepers redid its work.
        stuck[f"{name}: running over 60 s"] = [
            job.id for job in started if job.worker_name in live and job.started_at and (
                datetime.now(UTC) - job.started_at.replace(tzinfo=UTC)).total_seconds() > 60]
        stuck["abandoned jobs"] += sum(1 for job in started if job.worker_name not in live)
        stuck["failed jobs"] += FailedJobRegistry(queue=queue).count
    stuck["locks never released"] = locks_left(redis_client)
    stuck["appointments not synced"] = db.value(
        "SELECT count(*) FROM calendar_links WHERE state <> 'synced' OR next_sync_at IS NOT NULL")
    stuck["two-way sync failing"] = db.value(
        "SELECT count(*) FROM integrations WHERE provider IN ('google_calendar', 'microsoft_calendar') "
        "AND sync_attempts > 0")
    stuck["deliveries claimed"] = db.value("SELECT count(*) FROM webhook_deliveries WHERE claimed_until IS NOT NULL")
    stuck["events undispatched"] = db.value("SELECT count(*) FROM events WHERE dispatched_at IS NULL")
    return stuck
