"""Availability: GET /availability beside GET /integrations/status, the booking race, and freshness.

    python bench/availability.py [--users 10] [--appointments 200] [--events 300] [--rounds 3]
                                 [--duration 8] [--racers 50] [--races 5] [--changes 10] [--json PATH]

Everything over real HTTP on loopback: the Google sandbox in its own process, `wsgi:app` under gunicorn
(gunicorn.conf.py, WEB_CONCURRENCY workers) and one `flask worker` process.
  * latency: --users users connect to Google (one-way); each has --appointments appointments and
    --events Google events on their calendar within the next 7 days. After one warm-up read per user,
    wrk loads `GET /availability` over 7 days with a 30-minute duration (busy and slots) and, in the
    same rounds, `GET /integrations/status` (the baseline), rotating the users' JWTs; medians of the
    rounds' p50/p99, and the Google calls made while loading (the copy is fresh: goal 0);
  * the booking race: --racers threads POST `requireFree` bookings of one slot at once, across the web
    workers, --races times; each race must create exactly one appointment;
  * freshness: a two-way user; the owner creates an event in Google (the sandbox notifies the app);
    the time until its slot is gone from `slots`, --changes times. The notification's sync waits
    GOOGLE_SYNC_DEBOUNCE_SECONDS (1 s by default) to coalesce a burst: that floor is the baseline.
PostgreSQL and Redis: DATABASE_URL's server (a scratch database) and REDIS_URL's database (flushed
before and after), or the embedded servers when unset (bench/harness.py).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import requests
from google_sync import SANDBOX, Sandbox, _answers, authorized_session, connect, iso, phone, wait_until
from harness import add_json_argument, figure, free_port, migrate, scratch_environment, serve, start, stop, write_json
from status_throughput import LUA, load

MAX_AGE = 3600  # the one-way copies stay fresh through the load: what is measured is the answer from the copy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--appointments", type=int, default=200, help="appointments per user in the 7 days")
    parser.add_argument("--events", type=int, default=300, help="Google events per user in the 7 days")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8, help="seconds of wrk per endpoint per round")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--racers", type=int, default=50)
    parser.add_argument("--races", type=int, default=5)
    parser.add_argument("--changes", type=int, default=10, help="Google-side events timed for freshness")
    add_json_argument(parser)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is required: apt-get install wrk")

    from callnfy_integrations import create_app
    from tests.google_fixtures import google_settings
    from tests.support import make_config

    sandbox_port, web_port = free_port(), free_port()
    sandbox = Sandbox(f"http://127.0.0.1:{sandbox_port}")
    web = f"http://127.0.0.1:{web_port}"
    google = {**google_settings(SimpleNamespace(url=sandbox.url)), "GOOGLE_USER_RATE_LIMIT": "1000 per second",
              "AVAILABILITY_MAX_AGE_SECONDS": str(MAX_AGE), "PUBLIC_API_URL": web}
    processes: list = []
    with scratch_environment() as (_config, env):
        env.update(google)
        env = {k: v for k, v in env.items() if not k.startswith("FLASK_")}
        app = create_app(make_config(env["DATABASE_URL"], env["REDIS_URL"], **google))
        migrate(app)
        try:
            processes.append(start([sys.executable, "-c", SANDBOX, str(sandbox_port)], env))
            wait_until(lambda: _answers(f"{sandbox.url}/sandbox/calls"), 30, "the sandbox")
            processes.append(serve("wsgi:app", web_port, env))
            processes.append(start([sys.executable, "-m", "flask", "--app", "wsgi", "worker"], env))
            _measure(args, app, sandbox, web)
        finally:
            stop(processes)


def _measure(args, app, sandbox: Sandbox, web: str) -> None:
    monday = _next_monday()
    users = [uuid.uuid4() for _ in range(args.users)]
    sessions = [authorized_session(u) for u in users]
    print(f"seeding {args.users} users: {args.appointments} appointments and {args.events} Google events each",
          flush=True)
    for n, (user_id, session) in enumerate(zip(users, sessions, strict=True)):
        email = f"owner{n}@example.com"
        connect(app, sandbox.url, user_id, email)
        _put(session, f"{web}/integrations/availability/settings", {"timeZone": "UTC"})
        _seed_user(session, web, sandbox.url, email, monday, args.appointments, args.events, n)
    window = {"from": iso(monday), "to": iso(monday + timedelta(days=7)), "duration": 30}
    for session in sessions:  # the first read of each calendar; from here the copy answers
        _get(session, f"{web}/availability", window)
    _drained(app)  # the seeded appointments' pushes to Google are done: they would share the CPUs
    latency = _latency(args, users, sandbox, web, window)
    race = _race(args, sessions[0], web, monday)
    fresh = _freshness(args, app, sandbox, web, monday)
    _report(args, latency, race, fresh)


def _drained(app) -> None:
    from redis import Redis
    from rq import Queue

    from callnfy_integrations.queues import ALL_QUEUES

    redis = Redis.from_url(app.config["REDIS_URL"])

    def idle() -> bool:
        return all(not Queue(n, connection=redis).count and not Queue(n, connection=redis).started_job_registry.count
                   for n in ALL_QUEUES)

    wait_until(idle, 300, "the seeded appointments' pushes")
    time.sleep(1)


def _next_monday() -> datetime:
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(weeks=1)
    return day - timedelta(days=day.weekday())


def _seed_user(session, web: str, sandbox_url: str, email: str, monday: datetime, appointments: int,
               events: int, n: int) -> None:
    """Appointments and Google events spread over the week's working hours (overlaps are fine: busy time)."""
    minutes = 5 * 8 * 60
    for i in range(appointments):
        at = monday + timedelta(days=(i * 5) // appointments, hours=9, minutes=(i * 37) % (8 * 60 - 30))
        _post(session, f"{web}/appointments", {"customerName": f"Customer {i}", "customerPhone": phone(n * 1000 + i),
                                               "scheduledAt": iso(at), "duration": 30})
    with requests.Session() as google:
        google.trust_env = False
        for i in range(events):
            offset = (i * minutes) // events
            start = monday + timedelta(days=offset // 480, hours=9, minutes=offset % 480)
            body = {"summary": f"Busy {i}", "start": {"dateTime": start.isoformat()},
                    "end": {"dateTime": (start + timedelta(minutes=20)).isoformat()},
                    **({"transparency": "transparent"} if i % 10 == 0 else {})}
            google.post(f"{sandbox_url}/sandbox/user/{email}/events", json=body, timeout=5).raise_for_status()


def _latency(args, users: list[uuid.UUID], sandbox: Sandbox, web: str, window: dict) -> dict:
    from urllib.parse import urlencode

    from tests.factories import token

    work = Path(tempfile.mkdtemp())
    (work / "tokens.txt").write_text("\n".join(token(u, expires_in=3600) for u in users) + "\n")
    (work / "rotate.lua").write_text(LUA)
    targets = {"status": f"{web}/integrations/status", "availability": f"{web}/availability?{urlencode(window)}"}
    for url in targets.values():  # warm-up
        load(url, work / "rotate.lua", work / "tokens.txt", 2, args.connections)
    before = sandbox.calls()
    results: dict[str, list[dict]] = {name: [] for name in targets}
    for round_ in range(args.rounds):
        for name, url in targets.items():
            result = load(url, work / "rotate.lua", work / "tokens.txt", args.duration, args.connections)
            results[name].append(result)
            print(f"round {round_ + 1} {name:12s} {result['rps']:8.1f} req/s  p50 {result['p50']:6.2f} ms  "
                  f"p99 {result['p99']:6.2f} ms  non-2xx {result['errors']}", flush=True)
    after = sandbox.calls()
    # Reads of busy time are events.list calls (pushes are events.insert/update/delete, none pending now).
    google_calls = sum(after.get(k, 0) - before.get(k, 0) for k in after if k in ("events.list", "calendarList.list"))
    median = {n: {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50", "p99")} for n, rs in results.items()}
    errors = sum(r["errors"] for rs in results.values() for r in rs)
    return {"median": median, "google_calls": google_calls, "errors": errors,
            "p99_ratios": [a["p99"] / s["p99"] for a, s in zip(results["availability"], results["status"],
                                                                strict=True)]}


def _race(args, session, web: str, monday: datetime) -> dict:
    """--racers bookings of one slot at once, each from its own connection; --races slots."""
    headers = dict(session.headers)  # the user's JWT
    winners, durations = [], []
    for race in range(args.races):
        slot = monday + timedelta(days=race % 5, hours=7)  # before the working day's seeded busy time
        body = {"customerName": "Racer", "customerPhone": phone(900000 + race), "scheduledAt": iso(slot),
                "duration": 30, "requireFree": True}
        _put(session, f"{web}/integrations/availability/settings",
             {"workingHours": {d: [["06:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
              | {"sat": [], "sun": []}})

        def book(_, body=body):
            with requests.Session() as racer:
                racer.trust_env = False
                started = time.monotonic()
                answer = racer.post(f"{web}/appointments", json=body, headers=headers, timeout=30)
                return answer.status_code, time.monotonic() - started

        with ThreadPoolExecutor(args.racers) as pool:
            answers = list(pool.map(book, range(args.racers)))
        codes = [code for code, _ in answers]
        unexpected = [c for c in codes if c not in (201, 409)]
        if unexpected:
            sys.exit(f"race {race}: unexpected answers {unexpected[:5]}")
        winners.append(codes.count(201))
        durations += [seconds for _, seconds in answers]
        print(f"race {race + 1}: {codes.count(201)} booked, {codes.count(409)} refused", flush=True)
    return {"winners": winners, "p50": statistics.median(durations) * 1000,
            "p99": sorted(durations)[int(0.99 * (len(durations) - 1))] * 1000}


def _freshness(args, app, sandbox: Sandbox, web: str, monday: datetime) -> dict:
    """A two-way owner's new Google event: seconds until its slot is gone from `slots`."""
    user_id = uuid.uuid4()
    email = "twoway@example.com"
    connect(app, sandbox.url, user_id, email)
    session = authorized_session(user_id)
    _put(session, f"{web}/integrations/availability/settings", {"timeZone": "UTC"})
    _put(session, f"{web}/integrations/google/settings", {"syncMode": "two-way"})
    wait_until(lambda: _calls_since(sandbox, "events.watch"), 60, "the two-way channel")
    time.sleep(2)  # the baseline's busy read and the backfill settle
    delays = []
    with requests.Session() as google:
        google.trust_env = False
        for i in range(args.changes):
            slot = monday + timedelta(days=i % 5, hours=10 + i // 5)
            window = {"from": iso(slot), "to": iso(slot + timedelta(hours=1)), "duration": 60, "step": 60}
            if [s["start"] for s in _get(session, f"{web}/availability", window)["slots"]] != [iso(slot)]:
                sys.exit(f"freshness: the slot at {iso(slot)} was not free to begin with")
            created = time.monotonic()
            google.post(f"{sandbox.url}/sandbox/user/{email}/events", timeout=5, json={
                "summary": "Dentist", "start": {"dateTime": slot.isoformat()},
                "end": {"dateTime": (slot + timedelta(hours=1)).isoformat()}}).raise_for_status()
            wait_until(lambda window=window: not _get(session, f"{web}/availability", window)["slots"], 60,
                       "the Google event to block its slot")
            delays.append(time.monotonic() - created)
            print(f"change {i + 1}: slot gone after {delays[-1]:.2f} s", flush=True)
    debounce = float(app.config["GOOGLE_SYNC_DEBOUNCE_SECONDS"])
    return {"delays": delays, "debounce": debounce}


def _calls_since(sandbox: Sandbox, name: str) -> int:
    return sandbox.calls().get(name, 0)


def _report(args, latency: dict, race: dict, fresh: dict) -> None:
    status, availability = latency["median"]["status"], latency["median"]["availability"]
    ratio = statistics.median(latency["p99_ratios"])
    delays = sorted(fresh["delays"])
    p50_fresh = statistics.median(delays)
    print(f"\nmedian of {args.rounds} rounds, {args.connections} connections, {args.duration} s each:")
    print(f"  availability p50 {availability['p50']:.2f} ms  p99 {availability['p99']:.2f} ms  "
          f"{availability['rps']:.1f} req/s")
    print(f"  status       p50 {status['p50']:.2f} ms  p99 {status['p99']:.2f} ms  {status['rps']:.1f} req/s")
    print(f"  availability / status p99, median of per-round ratios: {ratio:.2f} (goal <= 2.0)")
    print(f"  Google calls while loading: {latency['google_calls']} (goal 0); non-2xx {latency['errors']}")
    print(f"  races: {race['winners']} appointments per race of {args.racers} (goal 1 each)")
    print(f"  freshness: median {p50_fresh:.2f} s, max {delays[-1]:.2f} s (debounce {fresh['debounce']:.1f} s)")
    write_json(
        args.json, "availability", "Availability: latency, the booking race, freshness",
        f"{args.users} one-way users, each with {args.appointments} appointments and {args.events} Google events "
        f"in 7 days; `wrk -t2 -c{args.connections}` rotating their JWTs on `GET /availability` (7 days, "
        f"duration 30) and `GET /integrations/status`, {args.rounds} rounds of {args.duration} s, under gunicorn "
        f"(gunicorn.conf.py). Races: {args.racers} threads POSTing one requireFree slot, {args.races} races. "
        f"Freshness: a two-way user's sandbox event to its slot leaving `slots`, {args.changes} events, one "
        f"`flask worker`.",
        [figure("availability_p99", "GET /availability p99 (7 days, 500 busy items)", availability["p99"], "ms",
                baseline=status["p99"], baseline_label="GET /integrations/status p99, same rounds", ratio=ratio,
                ratio_note="median of per-round ratios", goal="ratio <= 2.0", met=ratio <= 2.0,
                details=f"p50 {availability['p50']:.2f} ms vs status {status['p50']:.2f} ms; "
                        f"{availability['rps']:.0f} vs {status['rps']:.0f} req/s"),
         figure("availability_google_calls", "Google calls while answering from a fresh copy",
                latency["google_calls"], "calls", goal="0", met=latency["google_calls"] == 0),
         figure("booking_race", f"appointments created by {args.racers} concurrent requireFree bookings of one slot",
                max(race["winners"]), "appointments", goal="exactly 1 per race",
                met=all(w == 1 for w in race["winners"]),
                details=f"{args.races} races: {race['winners']}; booking p50 {race['p50']:.0f} ms, "
                        f"p99 {race['p99']:.0f} ms under the race"),
         figure("availability_freshness", "Google event created → its slot gone (two-way)", p50_fresh, "s",
                baseline=fresh["debounce"], baseline_label="GOOGLE_SYNC_DEBOUNCE_SECONDS (the coalescing floor)",
                goal="within seconds (<= 5 s)", met=delays[-1] <= 5,
                details=f"median of {len(delays)}; max {delays[-1]:.2f} s")],
        rounds=latency["median"], races=race["winners"], freshness=delays)


def _get(session, url: str, query: dict) -> dict:
    answer = session.get(url, params=query, timeout=30)
    if answer.status_code != 200:
        sys.exit(f"GET {url}: {answer.status_code} {answer.text[:300]}")
    return answer.json()["data"]


def _post(session, url: str, body: dict) -> dict:
    answer = session.post(url, json=body, timeout=30)
    if answer.status_code != 201:
        sys.exit(f"POST {url}: {answer.status_code} {answer.text[:300]}")
    return answer.json()["data"]


def _put(session, url: str, body: dict) -> dict:
    answer = session.put(url, json=body, timeout=30)
    if answer.status_code != 200:
        sys.exit(f"PUT {url}: {answer.status_code} {answer.text[:300]}")
    return answer.json()["data"]


if __name__ == "__main__":
    main()
