"""Signed webhook deliveries per second (one and two webhooks workers), and commit-to-first-attempt latency,
also behind a stalled receiver.

    python bench/webhook_throughput.py [--deliveries 2000] [--accounts 20] [--rounds 3] [--raw-seconds 5]
                                       [--rate 50] [--seconds 10] [--stalled 200] [--json PATH]

A keep-alive HTTPS receiver (trustme certificate) runs in its own process on loopback; its /stall
path reads a request and never answers. Workers run as the Procfile runs them (`worker` for
default+calendar, `webhooks` for webhooks; a second `webhooks` process for the two-worker rounds).
  * baseline, each round: raw `requests.Session` POST loops to that receiver (bench/raw_loop.py), one
    process beside one webhooks worker, two processes side by side beside two workers;
  * throughput, each round: N pending deliveries over --accounts accounts and the drain woken (with
    two workers the doorbell rings again once the first drain has started, as new work does in
    production, so that each worker runs a drain); deliveries/s = N / time until the database shows
    every outcome recorded. Then, --rounds times, N/2 for one account alone (a fresh one each round)
    with one worker, each beside its own raw loop (its in-flight limit, raised while its receiver
    answers fast);
  * latency (one webhooks worker): events committed at --rate per second for --seconds through the
    real path (outbox doorbell → dispatch → delivery rows → webhook doorbell → send); latency =
    receiver arrival time minus the event's commit time (events.created_at, clock_timestamp() at INSERT);
  * the same latency again while another account has --stalled deliveries waiting on the tarpit
    (each of its attempts held for the full 15 s deadline).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid

import raw_loop
from deliveries import Receiver, account, delivered, pending_deliveries, receiver_app, wait_until
from harness import add_json_argument, figure, percentile, start, stop, write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=2000, help="deliveries per throughput round")
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds per worker count")
    parser.add_argument("--raw-seconds", type=float, default=5.0, help="length of each raw-loop baseline")
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each latency phase")
    parser.add_argument("--stalled", type=int, default=200, help="deliveries waiting on the stalled receiver")
    add_json_argument(parser)
    args = parser.parse_args()

    from rq import Worker
    from sqlalchemy import text

    from callnfy_integrations.calls.service import record_call
    from callnfy_integrations.extensions import db
    from callnfy_integrations.queues import redis_connection
    from callnfy_integrations.zapier.delivery import WEBHOOKS_BELL

    receiver = Receiver()
    hook_url, ca_bundle = receiver.hook_url, receiver.ca_bundle
    worker_command = [sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--queue"]

    with receiver_app(receiver) as (app, config, env, processes):
        with app.app_context():
            connection = redis_connection()

            def busy_webhooks_workers() -> int:
                return sum(1 for w in Worker.all(connection=connection)
                           if w.state == "busy" and "webhooks" in w.queue_names())

            def drain_rate(total: int, drains: int) -> tuple[float, int]:
                """Wake the drain(s); deliveries/s until the database shows every outcome recorded, and
                how many webhooks workers were seen draining at once."""
                before = delivered()
                started = time.monotonic()
                WEBHOOKS_BELL.wake(connection)
                for _ in range(drains - 1):
                    # Ring again once the running drain has answered (its flag is gone): the next
                    # drain job is enqueued, and a free worker takes it.
                    wait_until(lambda: not connection.exists(WEBHOOKS_BELL.flag_key), 5)
                    WEBHOOKS_BELL.wake(connection)
                seen = 0

                def done() -> bool:
                    nonlocal seen
                    seen = max(seen, busy_webhooks_workers())
                    return delivered() - before >= total

                if not wait_until(done, 300):
                    sys.exit(f"only {delivered() - before} of {total} delivered in 300 s")
                return total / (time.monotonic() - started), seen

            def workers_registered(count: int) -> None:
                if not wait_until(lambda: len(Worker.all(connection=connection)) == count, 60):
                    sys.exit(f"{count} workers did not register in 60 s")
                time.sleep(1.0)  # idle, listening

            # The Procfile's arrangement: webhooks in their own worker process.
            processes.append(start([*worker_command, "default", "--queue", "calendar"], env))
            processes.append(start([*worker_command, "webhooks"], env))
            workers_registered(2)

            # Throughput: many accounts (the usual case) with one and two webhooks workers, each round
            # beside its own raw-loop baseline; one account alone (its in-flight limit) with one.
            accounts = [account(hook_url) for _ in range(args.accounts)]
            per_account = max(1, args.deliveries // args.accounts)
            total = per_account * args.accounts
            rounds: dict[int, list[dict]] = {1: [], 2: []}
            single: list[dict] = []
            second = None
            for workers in (1, 2):
                if workers == 2:
                    second = start([*worker_command, "webhooks"], env)
                    processes.append(second)
                    workers_registered(3)
                for r in range(args.rounds):
                    raw = raw_loop.run(hook_url, ca_bundle, args.raw_seconds, processes=workers)
                    pending_deliveries(accounts, per_account, connection)
                    rate, draining = drain_rate(total, drains=workers)
                    rounds[workers].append({"raw": raw, "deliveries": rate, "ratio": rate / raw,
                                            "draining_at_once": draining})
                    print(f"round {r + 1} {workers} webhooks worker{'s' if workers > 1 else ' '}  raw loop "
                          f"({workers} process{'es' if workers > 1 else ''}) {raw:7.1f} req/s  deliveries "
                          f"{rate:7.1f}/s  ratio {rate / raw:.2f}  ({total} delivered; {draining} worker"
                          f"{'s' if draining > 1 else ''} seen draining at once)", flush=True)
                if workers == 1:  # one account alone (a fresh one each round), beside its own raw loop
                    single_total = args.deliveries // 2
                    for r in range(args.rounds):
                        raw = raw_loop.run(hook_url, ca_bundle, args.raw_seconds)
                        pending_deliveries([account(hook_url)], single_total, connection)
                        rate, _ = drain_rate(single_total, drains=1)
                        single.append({"raw": raw, "deliveries": rate, "ratio": rate / raw})
                        print(f"round {r + 1} one account alone  raw loop (1 process) {raw:7.1f} req/s  deliveries "
                              f"{rate:7.1f}/s  ratio {rate / raw:.2f}  ({single_total} delivered)", flush=True)
            stop([second])
            processes.remove(second)
            workers_registered(2)

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
            stalled = account(receiver.stall_url)
            pending_deliveries([stalled], args.stalled, connection)
            WEBHOOKS_BELL.wake(connection)
            if not wait_until(lambda: int(connection.get("bench:stalled") or 0) >= 4, 30):
                sys.exit("the stalled receiver was never reached")
            stalled_latencies = latencies_at(args.rate, args.seconds, healthy)
            stalled_attempts = int(connection.get("bench:stalled") or 0)

    def med(workers: int, key: str) -> float:
        return statistics.median(r[key] for r in rounds[workers])

    def listed(workers: int) -> str:
        return ", ".join(f"{r['ratio']:.2f}" for r in rounds[workers])

    one, two, one_raw, two_raw = med(1, "deliveries"), med(2, "deliveries"), med(1, "raw"), med(2, "raw")
    one_ratio, two_ratio = med(1, "ratio"), med(2, "ratio")
    concurrency, per_account_limit = config["WEBHOOK_CONCURRENCY"], config["WEBHOOK_ACCOUNT_CONCURRENCY"]
    raised_limit = min(config.get("WEBHOOK_ACCOUNT_CONCURRENCY_MAX", per_account_limit), concurrency // 2)
    single_rate = statistics.median(r["deliveries"] for r in single)
    single_raw = statistics.median(r["raw"] for r in single)
    single_ratio = statistics.median(r["ratio"] for r in single)
    single_listed = ", ".join(f"{r['ratio']:.2f}" for r in single)
    limits = (f"at most {per_account_limit} in flight per account, up to {raised_limit} while its receiver "
              f"answers fast" if raised_limit > per_account_limit else f"at most {per_account_limit} in flight "
              f"per account")
    print()
    print(f"webhooks worker process(es) (AppWorker, {concurrency} sender threads, {limits}), loopback HTTPS "
          f"receiver with keep-alive, median of {args.rounds} rounds:")
    print(f"  baseline: raw requests.Session POST loop, 1 process    {one_raw:8.1f} req/s")
    print(f"  signed deliveries, {args.accounts} accounts, 1 worker     {one:8.1f} deliveries/s   ({total} per round)"
          f"   ratio {one_ratio:.2f} [{listed(1)}]  (goal >= 0.50)")
    print(f"  baseline: raw loops, 2 processes side by side           {two_raw:8.1f} req/s")
    print(f"  signed deliveries, {args.accounts} accounts, 2 workers    {two:8.1f} deliveries/s   ({total} per round)"
          f"   ratio {two_ratio:.2f} [{listed(2)}]  (x{two / one:.2f} of one worker)")
    print(f"  baseline: raw loop beside the one-account rounds          {single_raw:8.1f} req/s")
    print(f"  signed deliveries, one account, 1 worker  {single_rate:8.1f} deliveries/s   ({single_total} per round)"
          f"   ratio {single_ratio:.2f} [{single_listed}]  (goal >= 0.50)")
    p50, p99 = statistics.median(latencies), percentile(latencies, 0.99)
    s50, s99 = statistics.median(stalled_latencies), percentile(stalled_latencies, 0.99)
    print(f"  commit-to-first-attempt at {args.rate:.0f} events/s   p50 {p50:7.1f} ms   p99 {p99:7.1f} ms   "
          f"({len(latencies)} events; goal p50 <= 100 ms, p99 <= 1000 ms)")
    print(f"  same, another account's receiver stalling   p50 {s50:7.1f} ms   p99 {s99:7.1f} ms   "
          f"(x{s50 / p50:.2f} / x{s99 / p99:.2f} of the line above; {args.stalled} deliveries stalled, "
          f"{stalled_attempts} attempts held by the stall meanwhile, 15 s each; goal p99 <= 2000 ms)")

    stall_note = (f"{args.stalled} deliveries of another account on a receiver that never answers; "
                  f"{stalled_attempts} attempts held by it meanwhile, 15 s each")
    write_json(
        args.json, "webhook_throughput", "Webhook delivery: deliveries/s and another account's latency behind a stall",
        f"`webhooks` worker process(es) as the Procfile runs them (AppWorker, {concurrency} sender threads, "
        f"{limits}) sending to `bench/https_receiver.py` (keep-alive "
        f"HTTPS on loopback). Each round: {total} pending deliveries over {args.accounts} accounts, the drain "
        f"woken, the clock stopped when the database shows every outcome; beside it, in the same round, "
        f"{args.raw_seconds:g} s of raw `requests.Session` POST loops to the same receiver (bench/raw_loop.py; one "
        f"process for one worker, two side by side for two). {args.rounds} rounds per worker count, and "
        f"{args.rounds} rounds of {single_total} deliveries of one account alone (a fresh one each round) with one "
        f"worker, each beside its own raw loop. Latency: "
        f"`call.received` events committed at {args.rate:g}/s for {args.seconds:g} s through the whole path, "
        f"receiver arrival minus events.created_at, one webhooks worker; then again behind a stalled receiver.",
        [figure("deliveries_1", f"signed deliveries/s, one webhooks worker, {args.accounts} accounts", one,
                "deliveries/s", baseline=one_raw, baseline_label="raw POST loop, 1 process", baseline_unit="req/s",
                ratio=one_ratio, ratio_note="median of per-round ratios", goal="ratio >= 0.50",
                met=one_ratio >= 0.50, details=f"per-round ratios {listed(1)}"),
         figure("deliveries_2", f"signed deliveries/s, two webhooks workers, {args.accounts} accounts", two,
                "deliveries/s", baseline=two_raw, baseline_label="raw POST loops, 2 processes side by side",
                baseline_unit="req/s", ratio=two_ratio, ratio_note="median of per-round ratios",
                details=f"per-round ratios {listed(2)}; x{two / one:.2f} of one worker's deliveries/s, "
                        f"x{two / one_raw:.2f} of one raw loop; workers seen draining at once per round: "
                        + ", ".join(str(r["draining_at_once"]) for r in rounds[2])),
         figure("deliveries_single", "signed deliveries/s, one account alone, one worker", single_rate,
                "deliveries/s", baseline=single_raw, baseline_label="raw POST loop, 1 process", baseline_unit="req/s",
                ratio=single_ratio, ratio_note="median of per-round ratios", goal="ratio >= 0.50",
                met=single_ratio >= 0.50, details=f"per-round ratios {single_listed}; {single_total} per round; "
                                                  f"{limits}"),
         figure("latency_p50", f"commit-to-first-attempt p50 at {args.rate:g} events/s", p50, "ms",
                goal="<= 100 ms", met=p50 <= 100, details=f"{len(latencies)} events"),
         figure("latency_p99", f"commit-to-first-attempt p99 at {args.rate:g} events/s", p99, "ms",
                goal="<= 1000 ms", met=p99 <= 1000, details=f"{len(latencies)} events"),
         figure("stalled_p50", "another account's commit-to-first-attempt p50 behind a stalled receiver", s50, "ms",
                baseline=p50, baseline_label="same, no stalled receiver", details=stall_note),
         figure("stalled_p99", "another account's commit-to-first-attempt p99 behind a stalled receiver", s99, "ms",
                baseline=p99, baseline_label="same, no stalled receiver", goal="<= 2000 ms", met=s99 <= 2000,
                details=stall_note)],
        rounds={str(k): v for k, v in rounds.items()}, single=single)


if __name__ == "__main__":
    main()
