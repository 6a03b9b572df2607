"""Recovery after a restart with an empty Redis: how soon the first lost event arrives, and how fast the
backlog drains beside the normal delivery rate.

    python bench/recovery.py [--events 2000] [--accounts 20] [--rounds 2] [--json PATH]

The deployment as the Procfile runs it, with the deployed sweep intervals and grace periods: the
`scheduler` process (up throughout, as in issue 18's measurement), a `worker` for default+calendar and
a `webhooks` worker, sending to bench/https_receiver.py (keep-alive HTTPS on loopback). Each round,
two phases with the same work:
  * normal: the workers are stopped; --events `call.received` events over --accounts accounts commit
    through the service (each commit rings the outbox doorbell, as in production); the workers start
    and drain it;
  * recovery: the same, but Redis is flushed before the workers start (the doorbells, the queued
    drain and sweep jobs, everything): only the sweepers can find the events.
Per phase: the first arrival after the workers were started, and the drain rate, events / (last
arrival - first arrival). Recovery's rate over the same round's normal rate is the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from deliveries import Receiver, account, receiver_app, wait_until
from harness import add_json_argument, figure, start, stop, write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000, help="events per phase")
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    add_json_argument(parser)
    args = parser.parse_args()

    from rq import Worker

    from callnfy_integrations.calls.service import record_call
    from callnfy_integrations.extensions import db
    from callnfy_integrations.queues import redis_connection

    receiver = Receiver()
    worker_command = [sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--queue"]
    rounds: list[dict] = []

    with receiver_app(receiver) as (app, config, env, processes):
        with app.app_context():
            connection = redis_connection()
            accounts = [account(receiver.hook_url) for _ in range(args.accounts)]
            processes.append(start([sys.executable, "-m", "flask", "--app", "wsgi", "scheduler"], env))
            per_account = max(1, args.events // args.accounts)
            total = per_account * args.accounts

            def phase(flush: bool) -> dict:
                """Commit the events with no worker running, (flush Redis,) start the workers, time the arrivals."""
                connection.delete("bench:received")
                for _ in range(per_account):
                    for user_id in accounts:
                        record_call(user_id, customer_phone="+14155550123", duration=60)
                        db.session.commit()  # one commit per event, as the API does; each rings the doorbell
                if flush:
                    connection.flushdb()
                started = time.time()
                workers = [start([*worker_command, "default", "--queue", "calendar"], env),
                           start([*worker_command, "webhooks"], env)]
                try:
                    if not wait_until(lambda: connection.llen("bench:received") >= total, 600):
                        sys.exit(f"only {connection.llen('bench:received')} of {total} events arrived in 600 s")
                finally:
                    stop(workers)
                    wait_until(lambda: not Worker.all(connection=connection), 30)
                arrivals = {}
                for item in connection.lrange("bench:received", 0, -1):
                    webhook_id, at = item.decode().split()
                    arrivals.setdefault(webhook_id, float(at))  # first attempt of each event
                first, last = min(arrivals.values()), max(arrivals.values())
                return {"first_after_start": first - started, "rate": (len(arrivals) - 1) / (last - first),
                        "events": len(arrivals)}

            for r in range(args.rounds):
                normal = phase(flush=False)
                recovery = phase(flush=True)
                rounds.append({"normal": normal, "recovery": recovery,
                               "ratio": recovery["rate"] / normal["rate"]})
                print(f"round {r + 1}  normal: first {normal['first_after_start']:5.1f} s after start, "
                      f"{normal['rate']:6.1f} events/s   recovery (Redis flushed): first "
                      f"{recovery['first_after_start']:5.1f} s after start, {recovery['rate']:6.1f} events/s   "
                      f"ratio {recovery['rate'] / normal['rate']:.2f}", flush=True)

    def med(phase_name: str, key: str) -> float:
        return statistics.median(r[phase_name][key] for r in rounds)

    first, first_normal = med("recovery", "first_after_start"), med("normal", "first_after_start")
    worst_first = max(r["recovery"]["first_after_start"] for r in rounds)
    rate, normal_rate = med("recovery", "rate"), med("normal", "rate")
    ratio = statistics.median(r["ratio"] for r in rounds)
    listed = ", ".join(f"{r['ratio']:.2f}" for r in rounds)
    print()
    print(f"{total} call.received events over {args.accounts} accounts per phase, workers started after the "
          f"events committed; deployed intervals (OUTBOX_SWEEP_SECONDS={config['OUTBOX_SWEEP_SECONDS']}, "
          f"OUTBOX_GRACE_SECONDS=60, WEBHOOK_SWEEP_SECONDS={config['WEBHOOK_SWEEP_SECONDS']}); median of "
          f"{args.rounds} rounds:")
    print(f"  normal (doorbells intact)   first event {first_normal:5.1f} s after the workers started, "
          f"drain {normal_rate:6.1f} events/s")
    print(f"  Redis flushed before start  first event {first:5.1f} s after the workers started (worst "
          f"{worst_first:.1f} s; goal <= 15 s), drain {rate:6.1f} events/s, ratio {ratio:.2f} [{listed}] "
          f"(goal >= 0.50)")

    write_json(
        args.json, "recovery", "Recovery after a restart with an empty Redis",
        f"The Procfile's processes with the deployed sweep intervals and grace periods (the `scheduler` up "
        f"throughout, a `worker` for default+calendar, a `webhooks` worker) sending to `bench/https_receiver.py`. "
        f"Each round, {total} `call.received` events over {args.accounts} accounts commit one by one while no "
        f"worker runs, then the workers start: once with Redis intact (normal: the doorbells drain), once with "
        f"Redis flushed just before (recovery: only the sweepers find the events). First arrival after the "
        f"workers were started; drain rate = events / (last arrival - first arrival). {args.rounds} rounds.",
        [figure("recovery_first", "first lost event after a restart with an empty Redis", first, "s",
                baseline=first_normal, baseline_label="same, Redis intact", goal="<= 15 s", met=worst_first <= 15,
                details=f"worst of {args.rounds} rounds {worst_first:.1f} s; measured from the workers' start"),
         figure("recovery_rate", "backlog drain after a restart with an empty Redis", rate, "events/s",
                baseline=normal_rate, baseline_label="same backlog, Redis intact", ratio=ratio,
                ratio_note="median of per-round ratios", goal="ratio >= 0.50", met=ratio >= 0.50,
                details=f"per-round ratios {listed}; {total} events per phase")],
        rounds=rounds)


if __name__ == "__main__":
    main()
