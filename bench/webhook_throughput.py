"""Signed webhook deliveries per second from one worker, and commit-to-first-attempt latency.

    python bench/webhook_throughput.py [--deliveries 2000] [--rate 50] [--seconds 10]

A keep-alive HTTPS receiver (trustme certificate) runs in its own process on loopback.
  * baseline: a raw `requests.Session` POST loop to that receiver, same run, same machine;
  * throughput: N pending deliveries (N events x 1 subscription) rung at once; one `flask worker`
    process claims, signs and sends them; deliveries/s = N / time until the last is delivered;
  * latency: events committed at --rate per second for --seconds through the real path (outbox
    doorbell → dispatch → delivery rows → webhook doorbell → send); latency = receiver arrival time
    minus the event's commit time (events.created_at, clock_timestamp() at INSERT).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests
import trustme

from harness import migrate, scratch_environment, start, stop


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def wait_until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()

    from sqlalchemy import text

    from callnfy_integrations import create_app
    from callnfy_integrations.calls.service import record_call
    from callnfy_integrations.extensions import db
    from callnfy_integrations.queues import redis_connection
    from callnfy_integrations.zapier import service as zapier
    from callnfy_integrations.zapier.delivery import WEBHOOKS_BELL

    work = Path(tempfile.mkdtemp())
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(work / "ca.pem"))
    cert = ca.issue_cert("localhost")
    cert.cert_chain_pems[0].write_to_path(str(work / "cert.pem"))
    cert.private_key_pem.write_to_path(str(work / "key.pem"))
    port = 5857
    hook_url = f"https://localhost:{port}/hook"

    processes = []
    with scratch_environment() as (config, env):
        overrides = {"WEBHOOK_ALLOWED_HOSTS": "localhost", "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
                     "WEBHOOK_CA_BUNDLE": str(work / "ca.pem"), "OUTBOX_GRACE_SECONDS": "60"}
        env.update(overrides)
        config.update({"WEBHOOK_ALLOWED_HOSTS": ["localhost"], "WEBHOOK_ALLOW_PRIVATE_NETWORKS": True,
                       "WEBHOOK_CA_BUNDLE": str(work / "ca.pem")})
        app = create_app(config)
        migrate(app)
        try:
            processes.append(start([sys.executable, "bench/https_receiver.py", str(port), str(work / "cert.pem"),
                                    str(work / "key.pem"), config["REDIS_URL"]], env))
            time.sleep(1.0)

            # Baseline: the raw loop.
            with requests.Session() as session:
                session.trust_env = False  # else REQUESTS_CA_BUNDLE from the environment overrides verify
                session.verify = str(work / "ca.pem")
                body = b'{"event":"call.received","data":{}}'
                for _ in range(50):  # warm-up
                    session.post(hook_url, data=body, headers={"Content-Type": "application/json"})
                count, started = 0, time.monotonic()
                while time.monotonic() - started < args.seconds:
                    session.post(hook_url, data=body, headers={"Content-Type": "application/json"})
                    count += 1
                raw_rate = count / (time.monotonic() - started)

            with app.app_context():
                connection = redis_connection()
                user_id = uuid.uuid4()
                zapier.generate_key(user_id)
                zapier.subscribe(user_id, hook_url, "call.received")
                db.session.commit()  # services only flush: this script is the edge
                # Throughput: N events, their deliveries written, doorbells silenced until the clock starts.
                for _ in range(args.deliveries):
                    record_call(user_id, customer_phone="+14155550123", duration=60)
                db.session.commit()
                connection.delete("callnfy:outbox:ready")
                connection.flushdb()
                db.session.execute(text("""
                    INSERT INTO webhook_deliveries (id, user_id, event_id, subscription_id, hook_url)
                    SELECT gen_random_uuid(), e.user_id, e.id, s.id, s.hook_url
                    FROM events e JOIN zapier_subscriptions s ON s.user_id = e.user_id"""))
                db.session.execute(text("UPDATE events SET dispatched_at = now()"))
                db.session.commit()
                ids = list(db.session.scalars(text("SELECT id FROM webhook_deliveries")))
                db.session.commit()

                processes.append(start([sys.executable, "-m", "flask", "--app", "wsgi", "worker"], env))
                time.sleep(3.0)  # worker up and idle
                started = time.monotonic()
                WEBHOOKS_BELL.ring(ids, connection)


                def delivered() -> int:
                    count = db.session.scalar(text("SELECT count(*) FROM webhook_deliveries "
                                                   "WHERE status = 'delivered'"))
                    db.session.commit()
                    return count

                # The clock stops when every outcome is recorded, not just received.
                if not wait_until(lambda: delivered() >= len(ids), 300):
                    sys.exit(f"only {delivered()} of {len(ids)} delivered in 300 s")
                elapsed = time.monotonic() - started
                send_rate = len(ids) / elapsed

                # Latency: the whole path at a steady event rate.
                connection.delete("bench:received")
                db.session.execute(text("TRUNCATE events CASCADE"))
                db.session.commit()
                interval, total = 1.0 / args.rate, int(args.rate * args.seconds)
                next_at = time.monotonic()
                for _ in range(total):
                    record_call(user_id, customer_phone="+14155550123", duration=60)
                    db.session.commit()
                    next_at += interval
                    time.sleep(max(0.0, next_at - time.monotonic()))
                if not wait_until(lambda: connection.llen("bench:received") >= total, 120):
                    sys.exit(f"only {connection.llen('bench:received')} of {total} events arrived in 120 s")
                arrivals = {}
                for item in connection.lrange("bench:received", 0, -1):
                    webhook_id, at = item.decode().split()
                    arrivals.setdefault(webhook_id, float(at))  # first attempt
                latencies = []
                for event_id, created in db.session.execute(text(
                        "SELECT id, extract(epoch FROM created_at) FROM events")):
                    latencies.append((arrivals["evt_" + event_id.hex] - float(created)) * 1000)
                db.session.commit()
        finally:
            stop(processes)

    print(f"one worker process (AppWorker, {config['WEBHOOK_CONCURRENCY']} sender threads), loopback HTTPS "
          f"receiver with keep-alive:")
    print(f"  baseline: raw requests.Session POST loop   {raw_rate:8.1f} req/s")
    print(f"  signed deliveries, claimed and recorded    {send_rate:8.1f} deliveries/s   "
          f"({len(ids)} delivered)   ratio {send_rate / raw_rate:.2f}  (goal >= 0.50)")
    print(f"  commit-to-first-attempt at {args.rate:.0f} events/s   p50 {statistics.median(latencies):7.1f} ms   "
          f"p99 {percentile(latencies, 0.99):7.1f} ms   ({len(latencies)} events; goal p50 <= 100 ms, "
          f"p99 <= 1000 ms)")


if __name__ == "__main__":
    main()
