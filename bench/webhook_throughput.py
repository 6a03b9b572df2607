"""Signed webhook deliveries per second, and commit-to-first-attempt latency, also behind a stalled receiver.

    python bench/webhook_throughput.py [--deliveries 2000] [--accounts 20] [--rate 50] [--seconds 10]
                                       [--stalled 200]

A keep-alive HTTPS receiver (trustme certificate) runs in its own process on loopback; its /stall
path reads a request and never answers. Workers run as the Procfile runs them (`worker` for
default+calendar, `webhooks` for webhooks).
  * baseline: a raw `requests.Session` POST loop to that receiver, same run, same machine;
  * throughput: N pending deliveries (spread over --accounts accounts, then N/4 for one account
    alone) and the drain woken; deliveries/s = N / time until the database shows all delivered;
  * latency: events committed at --rate per second for --seconds through the real path (outbox
    doorbell → dispatch → delivery rows → webhook doorbell → send); latency = receiver arrival time
    minus the event's commit time (events.created_at, clock_timestamp() at INSERT);
  * the same latency again while another account has --stalled deliveries waiting on the tarpit
    (each of its attempts held for the full 15 s deadline).
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
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--stalled", type=int, default=200, help="deliveries waiting on the stalled receiver")
    args = parser.parse_args()

    from sqlalchemy import text

    from callnfy_integrations import create_app
    from callnfy_integrations.calls.service import record_call
    from callnfy_integrations.extensions import db
    from callnfy_integrations.queues import redis_connection
    from callnfy_integrations.zapier import service as zapier
    from callnfy_integrations.events.outbox import OUTBOX
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

                def account(url: str) -> uuid.UUID:
                    user_id = uuid.uuid4()
                    zapier.generate_key(user_id)
                    zapier.subscribe(user_id, url, "call.received")
                    db.session.commit()  # services only flush: this script is the edge
                    return user_id

                def pending_deliveries(users: list[uuid.UUID], per_user: int) -> None:
                    """Events and their pending deliveries, written directly (no doorbell rings)."""
                    for user_id in users:
                        for _ in range(per_user):
                            record_call(user_id, customer_phone="+14155550123", duration=60)
                    db.session.commit()
                    connection.delete(OUTBOX.ready_key, OUTBOX.flag_key)
                    db.session.execute(text("""
                        INSERT INTO webhook_deliveries (id, user_id, event_id, subscription_id, hook_url)
                        SELECT gen_random_uuid(), e.user_id, e.id, s.id, s.hook_url
                        FROM events e JOIN zapier_subscriptions s ON s.user_id = e.user_id
                        WHERE e.dispatched_at IS NULL"""))
                    db.session.execute(text("UPDATE events SET dispatched_at = now() WHERE dispatched_at IS NULL"))
                    db.session.commit()

                def delivered() -> int:
                    count = db.session.scalar(text("SELECT count(*) FROM webhook_deliveries "
                                                   "WHERE status = 'delivered'"))
                    db.session.commit()
                    return count

                def drain_rate(total: int) -> float:
                    """Wake the drain; deliveries/s until the database shows every outcome recorded."""
                    before = delivered()
                    started = time.monotonic()
                    WEBHOOKS_BELL.wake(connection)
                    if not wait_until(lambda: delivered() - before >= total, 300):
                        sys.exit(f"only {delivered() - before} of {total} delivered in 300 s")
                    return total / (time.monotonic() - started)

                # The Procfile's arrangement: webhooks in their own worker process.
                processes.append(start([sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--queue",
                                        "default", "--queue", "calendar"], env))
                processes.append(start([sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--queue",
                                        "webhooks"], env))
                time.sleep(3.0)  # workers up and idle

                # Throughput: many accounts (the usual case), then one account alone (its in-flight limit).
                per_account = max(1, args.deliveries // args.accounts)
                pending_deliveries([account(hook_url) for _ in range(args.accounts)], per_account)
                many_rate = drain_rate(per_account * args.accounts)
                single_total = args.deliveries // 4
                pending_deliveries([account(hook_url)], single_total)
                single_rate = drain_rate(single_total)

                def latencies_at(rate: float, seconds: float, user_id: uuid.UUID) -> list[float]:
                    """Commit-to-first-attempt of call.received events committed at `rate` per second."""
                    connection.delete("bench:received")
                    interval, total = 1.0 / rate, int(rate * seconds)
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
                    result = []
                    for event_id, created in db.session.execute(text(
                            "SELECT id, extract(epoch FROM created_at) FROM events WHERE user_id = :u "
                            "AND dispatched_at IS NOT NULL ORDER BY created_at DESC LIMIT :n"),
                            {"u": user_id, "n": total}):
                        result.append((arrivals["evt_" + event_id.hex] - float(created)) * 1000)
                    db.session.commit()
                    return result

                # Latency: the whole path at a steady event rate; then the same while another
                # account's receiver stalls (accepts, never answers) with a backlog of deliveries.
                healthy = account(hook_url)
                latencies = latencies_at(args.rate, args.seconds, healthy)
                connection.delete("bench:stalled")
                stalled = account(f"https://localhost:{port}/stall")
                pending_deliveries([stalled], args.stalled)
                WEBHOOKS_BELL.wake(connection)
                if not wait_until(lambda: int(connection.get("bench:stalled") or 0) >= 4, 30):
                    sys.exit("the stalled receiver was never reached")
                stalled_latencies = latencies_at(args.rate, args.seconds, healthy)
                stalled_attempts = int(connection.get("bench:stalled") or 0)
        finally:
            stop(processes)

    concurrency, per_account_limit = config["WEBHOOK_CONCURRENCY"], config["WEBHOOK_ACCOUNT_CONCURRENCY"]
    print(f"webhooks worker process (AppWorker, {concurrency} sender threads, at most {per_account_limit} in "
          f"flight per account), loopback HTTPS receiver with keep-alive:")
    print(f"  baseline: raw requests.Session POST loop   {raw_rate:8.1f} req/s")
    print(f"  signed deliveries, {args.accounts} accounts           {many_rate:8.1f} deliveries/s   "
          f"({per_account * args.accounts} delivered)   ratio {many_rate / raw_rate:.2f}  (goal >= 0.50)")
    print(f"  signed deliveries, one account            {single_rate:8.1f} deliveries/s   "
          f"({single_total} delivered)   ratio {single_rate / raw_rate:.2f}  (its in-flight limit)")
    p50, p99 = statistics.median(latencies), percentile(latencies, 0.99)
    s50, s99 = statistics.median(stalled_latencies), percentile(stalled_latencies, 0.99)
    print(f"  commit-to-first-attempt at {args.rate:.0f} events/s   p50 {p50:7.1f} ms   p99 {p99:7.1f} ms   "
          f"({len(latencies)} events; goal p50 <= 100 ms, p99 <= 1000 ms)")
    print(f"  same, another account's receiver stalling   p50 {s50:7.1f} ms   p99 {s99:7.1f} ms   "
          f"(x{s50 / p50:.2f} / x{s99 / p99:.2f} of the line above; {args.stalled} deliveries stalled, "
          f"{stalled_attempts} attempts held by the stall meanwhile, 15 s each; goal p99 <= 2000 ms)")


if __name__ == "__main__":
    main()
