"""Appointment creation under 8 concurrent clients, and commit-to-dispatch latency of its events.

    python bench/appointments_throughput.py [--clients 8] [--duration 10] [--json PATH]

Serves `wsgi:app` and `bench/ceiling_app.py` under gunicorn (gunicorn.conf.py), runs one
`flask worker`, and drives both with the same Python client threads (keep-alive sessions):
  * baseline: POST /ceiling/write — verify the JWT, INSERT one row, COMMIT;
  * measured: POST /appointments — validation, customer upsert, appointment + outbox event in one
    transaction, dispatch job enqueued after commit.
Then it waits for the worker to dispatch every event and reads commit-to-dispatch latency from the
outbox rows (events.created_at is clock_timestamp() at INSERT, just before COMMIT; dispatched_at is
set by the worker). The latency floor is a no-op RQ job's enqueue-to-run time on the same worker.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
import uuid

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


def drive(url: str, tokens: list[str], duration: float, body) -> tuple[int, int, float]:
    """POST from one thread per token for `duration` seconds; (successes, failures, elapsed)."""
    counts = {"ok": 0, "failed": 0}
    lock = threading.Lock()
    deadline = time.monotonic() + duration

    def client(token: str) -> None:
        ok = failed = 0
        with requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {token}"
            while time.monotonic() < deadline:
                response = session.post(url, json=body())
                ok, failed = (ok + 1, failed) if response.status_code == 201 else (ok, failed + 1)
        with lock:
            counts["ok"] += ok
            counts["failed"] += failed

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(t,)) for t in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return counts["ok"], counts["failed"], time.monotonic() - started


def appointment_body() -> dict:
    return {"customerName": "Bench Customer", "customerPhone": f"+1415{uuid.uuid4().int % 10**7:07d}",
            "scheduledAt": "2026-12-01T10:00:00Z", "duration": 30, "notes": "bench"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=10.0)
    add_json_argument(parser)
    args = parser.parse_args()

    from sqlalchemy import text

    from bench.noop_jobs import record_queue_latency
    from callnfy_integrations import create_app
    from callnfy_integrations.auth import create_dev_token
    from callnfy_integrations.extensions import db
    from callnfy_integrations.queues import enqueue, redis_connection
    from tests.factories import make_user

    processes = []
    with scratch_environment() as (config, env):
        app = create_app(config)
        migrate(app)
        with app.app_context():
            users = [make_user() for _ in range(args.clients)]
            tokens = [create_dev_token(u.id) for u in users]
        try:
            web_port, ceiling_port = free_port(), free_port()
            web, ceiling = f"http://127.0.0.1:{web_port}", f"http://127.0.0.1:{ceiling_port}"
            processes.append(serve("wsgi:app", web_port, env))
            processes.append(serve("bench.ceiling_app:app", ceiling_port, env))
            processes.append(start([sys.executable, "-m", "flask", "--app", "wsgi", "worker"], env))

            drive(f"{ceiling}/ceiling/write", tokens, 2, dict)  # warm-up
            base_ok, base_failed, base_elapsed = drive(f"{ceiling}/ceiling/write", tokens,
                                                       args.duration, dict)
            drive(f"{web}/appointments", tokens, 2, appointment_body)  # warm-up
            with app.app_context():
                db.session.execute(text("TRUNCATE events CASCADE"))
                db.session.commit()
            ok, failed, elapsed = drive(f"{web}/appointments", tokens, args.duration,
                                        appointment_body)

            with app.app_context():
                deadline = time.monotonic() + 120
                while db.session.scalar(text("SELECT count(*) FROM events WHERE dispatched_at IS NULL")):
                    db.session.rollback()
                    if time.monotonic() > deadline:
                        sys.exit("events still undispatched after 120 s")
                    time.sleep(0.2)
                latencies = [float(v) * 1000 for v in db.session.scalars(text(
                    "SELECT extract(epoch FROM dispatched_at - created_at) FROM events"))]
                db.session.rollback()

                connection = redis_connection()
                for _ in range(200):  # 100/s: the queue's own latency, not a backlog
                    enqueue(record_queue_latency, time.time())
                    time.sleep(0.01)
                deadline = time.monotonic() + 60
                while connection.llen("bench:queue-latency") < 200 and time.monotonic() < deadline:
                    time.sleep(0.1)
                floor = [float(v) * 1000 for v in connection.lrange("bench:queue-latency", 0, -1)]
        finally:
            stop(processes)

    rate, base_rate = ok / elapsed, base_ok / base_elapsed
    print(f"{args.clients} clients, {args.duration:.0f} s each, same machine:")
    print(f"  baseline INSERT+COMMIT    {base_rate:8.1f} writes/s   ({base_failed} failed)")
    print(f"  POST /appointments        {rate:8.1f} appointments/s   ({failed} failed)   "
          f"ratio {rate / base_rate:.2f}")
    print(f"  commit-to-dispatch        p50 {statistics.median(latencies):7.1f} ms   "
          f"p99 {percentile(latencies, 0.99):7.1f} ms   ({len(latencies)} events)")
    print(f"  floor: no-op job          p50 {statistics.median(floor):7.1f} ms   p99 {percentile(floor, 0.99):7.1f} ms")
    p50, p99 = statistics.median(latencies), percentile(latencies, 0.99)
    f50, f99 = statistics.median(floor), percentile(floor, 0.99)
    write_json(
        args.json, "appointments_throughput", "Appointment creation and commit-to-dispatch latency",
        f"{args.clients} client threads (keep-alive sessions, one user each) POST for {args.duration:.0f} s to "
        f"`wsgi:app` under gunicorn, one `flask worker` dispatching; baseline: `bench/ceiling_app.py`'s "
        f"`POST /ceiling/write` (verify the JWT, INSERT one row, COMMIT) from the same clients. "
        f"Commit-to-dispatch = events.dispatched_at - events.created_at; its floor: a no-op RQ job's "
        f"enqueue-to-run time on the same worker (200 jobs at 100/s).",
        [figure("appointments_rps", "POST /appointments throughput", rate, "appointments/s", baseline=base_rate,
                baseline_label="INSERT+COMMIT ceiling", baseline_unit="writes/s",
                details=f"{ok} created, {failed} failed; baseline {base_failed} failed"),
         figure("dispatch_p50", "commit-to-dispatch p50", p50, "ms", baseline=f50,
                baseline_label="no-op RQ job p50 (enqueue to run)", details=f"{len(latencies)} events"),
         figure("dispatch_p99", "commit-to-dispatch p99", p99, "ms", baseline=f99,
                baseline_label="no-op RQ job p99 (enqueue to run)", details=f"{len(latencies)} events")])


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
