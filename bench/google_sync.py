"""Google Calendar one-way sync: Calendar calls per appointment change, pushes/s and commit-to-Google latency.

    python bench/google_sync.py [--changes 50] [--users 10] [--appointments 300] [--rounds 3] [--clients 6]
                                [--json PATH]

Everything over real HTTP on loopback: the Google sandbox (`create_sandbox_app()` under werkzeug's
`make_server(..., threaded=True)`) in its own process, `wsgi:app` under gunicorn (gunicorn.conf.py),
and real `flask worker` processes pointed at the sandbox. GOOGLE_USER_RATE_LIMIT is raised to
"1000 per second" so our own per-user quota (default 5 per second) does not cap the figures.
  * calls per change: --users users connect once (connect → consent → callback, no browser) and their
    backfill job runs (it learns each calendar's time zone); then --changes appointments are created,
    rescheduled and cancelled through the API, each step waited out until every appointment is
    `synced`; Calendar calls (the sandbox's `events.*` counts) / appointments, per step;
  * pushes/s and latency: --appointments appointments POSTed as fast as --clients threads can, with 1
    and then 2 worker processes running; pushes/s = M / (last synced_at - first created_at),
    latency = synced_at (calendar_links) - created_at per appointment (both from the database clock);
  * baseline, same round: a raw `requests.Session` loop of `events.insert` to the same sandbox from
    one thread, with the body the push sends (`build_event`), with a real access token.
PostgreSQL and Redis: DATABASE_URL's server (a scratch database) and REDIS_URL's database (flushed
before and after), or the embedded servers when unset (bench/harness.py).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import requests
from harness import (
    ROOT,
    add_json_argument,
    figure,
    free_port,
    migrate,
    percentile,
    scratch_environment,
    serve,
    start,
    stop,
    write_json,
)

RATE_LIMIT = "1000 per second"
SANDBOX = ("import logging, sys\n"
           "from werkzeug.serving import make_server\n"
           "from callnfy_integrations.dev.google_sandbox import create_sandbox_app\n"
           "logging.getLogger('werkzeug').setLevel(logging.WARNING)\n"
           "make_server('127.0.0.1', int(sys.argv[1]), create_sandbox_app(), threaded=True).serve_forever()\n")


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            sys.exit(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


class Sandbox:
    """The sandbox process, seen from outside: call counts over HTTP."""

    def __init__(self, url: str):
        self.url = url
        self.http = requests.Session()
        self.http.trust_env = False

    def calls(self) -> dict[str, int]:
        return self.http.get(f"{self.url}/sandbox/calls", timeout=5).json()

    def reset(self) -> None:
        self.http.post(f"{self.url}/sandbox/reset", timeout=5).raise_for_status()


def diff(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after.get(k, 0) - before.get(k, 0) for k in sorted(set(after) | set(before))
            if after.get(k, 0) != before.get(k, 0)}


def calendar_calls(counts: dict[str, int]) -> int:
    return sum(v for k, v in counts.items() if k.startswith("events."))


def describe(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items() if k.startswith("events.")) or "none"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=50, help="appointments created, rescheduled, cancelled")
    parser.add_argument("--users", type=int, default=10, help="users connected to Google")
    parser.add_argument("--appointments", type=int, default=300, help="appointments per throughput round")
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds per worker count")
    parser.add_argument("--clients", type=int, default=6, help="client threads POSTing appointments")
    parser.add_argument("--baseline-seconds", type=float, default=2.0)
    add_json_argument(parser)
    args = parser.parse_args()

    from redis import Redis
    from rq import Queue, Worker
    from sqlalchemy import create_engine, text

    from callnfy_integrations import create_app
    from callnfy_integrations.google import tokens
    from callnfy_integrations.google.event_body import build_event, event_id_for
    from callnfy_integrations.queues import ALL_QUEUES
    from tests.factories import appointment_body
    from tests.google_fixtures import google_settings
    from tests.support import make_config

    sandbox_port, web_port = free_port(), free_port()
    sandbox = Sandbox(f"http://127.0.0.1:{sandbox_port}")
    google = {**google_settings(SimpleNamespace(url=sandbox.url)), "GOOGLE_USER_RATE_LIMIT": RATE_LIMIT}
    web = f"http://127.0.0.1:{web_port}"

    processes: list = []
    workers: list = []
    engine = None
    with scratch_environment() as (_config, env):
        redis = Redis.from_url(env["REDIS_URL"])
        env.update(google)
        env = {k: v for k, v in env.items() if not k.startswith("FLASK_")}
        app = create_app(make_config(env["DATABASE_URL"], env["REDIS_URL"], **google))
        migrate(app)
        engine = create_engine(env["DATABASE_URL"], isolation_level="AUTOCOMMIT", pool_size=2)

        def sql(statement: str, **params):
            with engine.connect() as conn:
                return conn.execute(text(statement), params).all()

        def start_workers(count: int) -> list:
            started = [start([sys.executable, "-m", "flask", "--app", "wsgi", "worker"], env) for _ in range(count)]
            wait_until(lambda: len(Worker.all(connection=redis)) == count, 60, f"{count} worker(s) to register")
            return started

        def idle() -> bool:
            for name in ALL_QUEUES:
                queue = Queue(name, connection=redis)
                if queue.count or queue.started_job_registry.count:
                    return False
            return not sql("SELECT 1 FROM events WHERE dispatched_at IS NULL LIMIT 1")

        def synced(ids: list[str]) -> bool:
            rows = sql("SELECT l.state, l.error, l.synced_version = a.version FROM appointments a "
                       "JOIN calendar_links l ON l.appointment_id = a.id AND l.provider = 'google_calendar' "
                       "WHERE a.id = ANY(CAST(:ids AS uuid[]))", ids=ids)
            failed = [r for r in rows if r[0] == "failed"]
            if failed:
                sys.exit(f"{len(failed)} pushes failed, e.g.: {failed[0][1]}")
            return len(rows) == len(ids) and all(r[0] == "synced" and r[2] for r in rows)

        try:
            processes.append(start([sys.executable, "-c", SANDBOX, str(sandbox_port)], env))
            wait_until(lambda: _answers(f"{sandbox.url}/sandbox/calls"), 30, "the sandbox")
            processes.append(serve("wsgi:app", web_port, env))
            workers = start_workers(1)

            # Users connect to Google once, the way the SPA and a browser do (no browser here).
            users = [uuid.uuid4() for _ in range(args.users)]
            for n, user_id in enumerate(users):
                connect(app, sandbox.url, user_id, f"bench{n}@example.com")
            wait_until(lambda: sql("SELECT count(*) FROM integrations WHERE provider = 'google_calendar' "
                                   "AND calendar_time_zone IS NOT NULL")[0][0] == len(users), 60,
                       "the connect backfill jobs")
            wait_until(idle, 60, "the queues to drain")
            sandbox.reset()
            counts_start = sandbox.calls()

            clients = [authorized_session(user_id) for user_id in users]
            soon = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=2)

            # 1. Calendar calls per appointment change, fresh tokens.
            per_change = []
            ids: list[str] = []

            def create(i, _):
                body = appointment_body(customerPhone=phone(i), scheduledAt=iso(soon + timedelta(hours=i)))
                ids.append(post(clients[i % len(users)], f"{web}/appointments", body)["id"])

            def reschedule(i, public):
                patch(clients[i % len(users)], f"{web}/appointments/{public}",
                      {"scheduledAt": iso(soon + timedelta(days=1, hours=i))})

            def cancel(i, public):
                post(clients[i % len(users)], f"{web}/appointments/{public}/cancel", {"reason": "bench"}, status=200)

            before = sandbox.calls()
            for name, change in (("create", create), ("reschedule", reschedule), ("cancel", cancel)):
                for i, public in enumerate(list(ids) or [None] * args.changes):
                    change(i, public)
                raw_ids = [public[len("appt_"):] for public in ids]
                wait_until(lambda raw_ids=raw_ids: synced(raw_ids), 120, f"the {name}s to sync")
                wait_until(idle, 60, "the queues to drain")
                after = sandbox.calls()
                per_change.append((name, diff(after, before)))
                before = after
            refreshes_part1 = diff(after, counts_start).get("token:refresh_token", 0)

            # 2. Pushes/s and commit-to-Google latency, 1 then 2 worker processes; raw inserts each round.
            with app.app_context():
                integration_id = sql("SELECT id FROM integrations WHERE user_id = :u", u=users[0])[0][0]
                access_token = tokens.access_token(integration_id)
            event_body = build_event(appointment_id=uuid.uuid4(), version=1, customer_name="Ann Example",
                                     customer_phone="+14155550100", customer_email="ann@example.com",
                                     notes="First visit", scheduled_at=soon, duration=30, time_zone="Europe/London")
            body_bytes = len(json.dumps({"id": event_id_for(uuid.uuid4()), **event_body}))
            rounds: dict[int, list[dict]] = {}
            part2_start = sandbox.calls()
            serial = args.changes
            for worker_count in (1, 2):
                if worker_count != len(workers):
                    stop(workers)
                    wait_until(lambda: not Worker.all(connection=redis), 30, "the workers to stop")
                    workers = start_workers(worker_count)
                for r in range(args.rounds):
                    wait_until(idle, 60, "the queues to drain")
                    raw = raw_inserts(sandbox.url, access_token, event_body, args.baseline_seconds)
                    before = sandbox.calls()
                    items = [(clients[i % len(users)],
                              appointment_body(customerPhone=phone(serial + i),
                                               scheduledAt=iso(soon + timedelta(minutes=serial + i))))
                             for i in range(args.appointments)]
                    serial += args.appointments
                    created, create_seconds = create_all(f"{web}/appointments", items, args.clients)
                    raw_ids = [public[len("appt_"):] for public in created]
                    wait_until(lambda ids=raw_ids: synced(ids), 300, "the pushes")
                    wait_until(idle, 60, "the queues to drain")
                    calls = diff(sandbox.calls(), before)
                    span, = sql("SELECT extract(epoch FROM max(l.synced_at) - min(a.created_at)) "
                                "FROM appointments a JOIN calendar_links l ON l.appointment_id = a.id "
                                "WHERE a.id = ANY(CAST(:ids AS uuid[]))", ids=raw_ids)
                    latencies = [float(v) * 1000 for v, in sql(
                        "SELECT extract(epoch FROM l.synced_at - a.created_at) "
                        "FROM appointments a JOIN calendar_links l ON l.appointment_id = a.id "
                        "WHERE a.id = ANY(CAST(:ids AS uuid[]))", ids=raw_ids)]
                    result = {"raw": raw, "pushes": len(raw_ids) / float(span[0]), "create": create_seconds,
                              "p50": statistics.median(latencies), "p99": percentile(latencies, 0.99),
                              "calls": calls}
                    result["ratio"] = result["pushes"] / raw
                    rounds.setdefault(worker_count, []).append(result)
                    print(f"round {r + 1} {worker_count} worker{'s' if worker_count > 1 else ' '}  "
                          f"raw insert {raw:7.1f}/s  pushes {result['pushes']:6.1f}/s  ratio {result['ratio']:.2f}  "
                          f"p50 {result['p50']:7.1f} ms  p99 {result['p99']:7.1f} ms  "
                          f"(POSTs took {create_seconds:.2f} s; {describe(calls)})", flush=True)
            refreshes_part2 = diff(sandbox.calls(), part2_start).get("token:refresh_token", 0)
        finally:
            stop(workers + processes)
            if engine is not None:
                engine.dispose()

    print()
    print(f"Calendar calls per appointment change, fresh tokens: {args.changes} appointments over "
          f"{args.users} connected users, one `flask worker`:")
    for name, counts in per_change:
        print(f"  calls per {name + ':':<12}{calendar_calls(counts) / args.changes:5.2f} ({describe(counts)})")
    print(f"  token refreshes: {refreshes_part1} (token:refresh_token)")
    print(f"pushes/s and commit-to-Google latency: {args.appointments} appointments per round POSTed by "
          f"{args.clients} threads to gunicorn, {args.users} users, median of {args.rounds} rounds;")
    print(f"  GOOGLE_USER_RATE_LIMIT={RATE_LIMIT!r} (default '5 per second' would cap each user at 5 pushes/s)")
    raw_all = [r["raw"] for results in rounds.values() for r in results]
    print(f"  baseline: raw events.insert, 1 thread, requests.Session   {statistics.median(raw_all):7.1f} calls/s   "
          f"(body {body_bytes} bytes, same builder)")
    for worker_count, results in rounds.items():
        def med(key: str, results: list[dict] = results) -> float:
            return statistics.median(r[key] for r in results)

        ratios = "[" + ", ".join(f"{r['ratio']:.2f}" for r in results) + "]"
        label = f"{worker_count} worker process{'es' if worker_count > 1 else ''}"
        print(f"  {label:<20} pushes {med('pushes'):7.1f}/s   ratio {med('ratio'):.2f} {ratios}   "
              f"commit-to-Google p50 {med('p50'):7.1f} ms  p99 {med('p99'):7.1f} ms")
    print(f"  token refreshes: {refreshes_part2} (token:refresh_token)")

    figures = []
    done = {"create": "created", "reschedule": "rescheduled", "cancel": "cancelled"}
    for name, counts in per_change:
        calls = calendar_calls(counts)
        figures.append(figure(
            f"calls_per_{name}", f"Calendar calls per appointment {name}", calls, "calls", baseline=args.changes,
            baseline_label=f"appointments {done[name]}", baseline_unit="changes", ratio_note="calls per change",
            goal="ratio = 1.00 (one call per change)", met=calls == args.changes,
            details=f"{describe(counts)}; token refreshes over the three steps: {refreshes_part1}"))
    for worker_count, results in rounds.items():
        def med(key: str, results: list[dict] = results) -> float:
            return statistics.median(r[key] for r in results)

        label = f"{worker_count} worker process{'es' if worker_count > 1 else ''}"
        figures.append(figure(
            f"pushes_{worker_count}", f"pushes/s to Google, {label}", med("pushes"), "pushes/s", baseline=med("raw"),
            baseline_label="raw events.insert loop, 1 thread", baseline_unit="calls/s", ratio=med("ratio"),
            ratio_note="median of per-round ratios",
            details=f"per-round ratios {', '.join(format(r['ratio'], '.2f') for r in results)}; commit-to-Google "
                    f"p50 {med('p50'):.0f} ms, p99 {med('p99'):.0f} ms ({args.appointments} appointments POSTed at "
                    f"once by {args.clients} threads: backlog, not per-push time)"))
    write_json(
        args.json, "google_sync", "Google Calendar one-way sync: calls per change and pushes/s",
        f"The Google sandbox in its own process, `wsgi:app` under gunicorn, real `flask worker` processes, "
        f"GOOGLE_USER_RATE_LIMIT={RATE_LIMIT!r}. Calls per change: {args.users} users connect once, then "
        f"{args.changes} appointments are created, rescheduled and cancelled through the API, each step waited out "
        f"until all are synced; the sandbox's `events.*` counters divided by the changes. Pushes/s: "
        f"{args.appointments} appointments POSTed by {args.clients} threads per round, {args.rounds} rounds with 1 "
        f"then 2 worker processes; pushes/s = appointments / (last synced_at - first created_at). "
        f"Baseline, each round: a one-thread `requests.Session` loop of `events.insert` to the same sandbox with "
        f"the push's body ({body_bytes} bytes) and a real access token, {args.baseline_seconds:g} s.",
        figures, rounds={str(k): v for k, v in rounds.items()}, token_refreshes=refreshes_part1 + refreshes_part2)


def _answers(url: str) -> bool:
    try:
        requests.get(url, timeout=1)
        return True
    except requests.RequestException:
        return False


def phone(n: int) -> str:
    return f"+1415{n % 10**7:07d}"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def authorized_session(user_id: uuid.UUID) -> requests.Session:
    from tests.factories import token

    session = requests.Session()
    session.trust_env = False
    session.headers["Authorization"] = f"Bearer {token(user_id, expires_in=3600)}"
    return session


def post(session: requests.Session, url: str, body: dict, status: int = 201) -> dict:
    response = session.post(url, json=body)
    if response.status_code != status:
        sys.exit(f"POST {url}: {response.status_code} {response.text[:300]}")
    return response.json()["data"]


def patch(session: requests.Session, url: str, body: dict) -> dict:
    response = session.patch(url, json=body)
    if response.status_code != 200:
        sys.exit(f"PATCH {url}: {response.status_code} {response.text[:300]}")
    return response.json()["data"]


def connect(app, sandbox_url: str, user_id: uuid.UUID, email: str) -> None:
    """POST connect with a JWT, consent in the sandbox without a browser, callback with the same client
    (it carries the binder cookie connect set): the user's Google connection, as in tests/google_fixtures.py."""
    from urllib.parse import parse_qs, urlsplit

    from tests.factories import auth_headers

    client = app.test_client()
    response = client.post("/integrations/google/connect", headers=auth_headers(user_id))
    if response.status_code != 200:
        sys.exit(f"connect: {response.status_code} {response.json}")
    consent = requests.get(response.json["data"]["authUrl"] + f"&sandbox_decision=allow&sandbox_email={email}",
                           allow_redirects=False, timeout=5)
    location = urlsplit(consent.headers["Location"])
    callback = client.get(f"{location.path}?{location.query}")
    outcome = parse_qs(urlsplit(callback.headers.get("Location", "")).query)
    if callback.status_code != 302 or outcome.get("success") != ["true"]:
        sys.exit(f"callback: {callback.status_code} {outcome}")


def raw_inserts(sandbox_url: str, access_token: str, event_body: dict, seconds: float) -> float:
    """events.insert calls/s from one thread: a plain keep-alive session, a fresh event id each call."""
    from callnfy_integrations.google.event_body import event_id_for

    url = f"{sandbox_url}/calendar/v3/calendars/primary/events?sendUpdates=none&alt=json"
    with requests.Session() as session:
        session.trust_env = False
        session.headers["Authorization"] = f"Bearer {access_token}"
        for _ in range(20):  # warm-up
            session.post(url, json={"id": event_id_for(uuid.uuid4()), **event_body}).raise_for_status()
        count, started = 0, time.monotonic()
        while time.monotonic() - started < seconds:
            response = session.post(url, json={"id": event_id_for(uuid.uuid4()), **event_body})
            if response.status_code != 200:
                sys.exit(f"raw events.insert: {response.status_code} {response.text[:300]}")
            count += 1
        return count / (time.monotonic() - started)


def create_all(url: str, items: list[tuple[requests.Session, dict]], threads: int) -> tuple[list[str], float]:
    """POST every (session, body) from `threads` threads, each with its own keep-alive connection."""
    created: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()
    cursor = iter(items)

    def client() -> None:
        with requests.Session() as session:
            session.trust_env = False
            while True:
                with lock:
                    item = next(cursor, None)
                if item is None:
                    return
                owner, body = item
                response = session.post(url, json=body, headers={"Authorization": owner.headers["Authorization"]})
                with lock:
                    if response.status_code == 201:
                        created.append(response.json()["data"]["id"])
                    else:
                        errors.append(f"{response.status_code} {response.text[:200]}")

    started = time.monotonic()
    workers = [threading.Thread(target=client) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if errors:
        sys.exit(f"{len(errors)} POST /appointments failed, e.g. {errors[0]}")
    return created, time.monotonic() - started


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
