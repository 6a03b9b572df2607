"""Resident memory (RSS) of a `webhooks` worker after 10,000 deliveries, against the same worker idle after start.

    python bench/worker_memory.py [--deliveries 10000] [--batch 1000] [--accounts 20] [--json PATH]

One `flask worker --queue webhooks` process, as the Procfile runs it: an AppWorker (RQ's SimpleWorker:
every drain job runs in the worker process itself, no work-horse fork), whose RQ scheduler runs in a
forked child that sends nothing. It sends to bench/https_receiver.py (keep-alive HTTPS on loopback).
  * baseline: the worker's VmRSS (/proc/PID/status) once it has started and sat idle for a few seconds;
  * then --deliveries deliveries in batches of --batch (spread over --accounts accounts, written
    straight to the database, the drain woken), each batch waited out until the database shows it
    delivered and the worker idle again; VmRSS read after each batch (and VmHWM, the peak).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from deliveries import Receiver, account, delivered, pending_deliveries, receiver_app, wait_until
from harness import add_json_argument, figure, start, write_json


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in KiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:  # field 4, after the command in parentheses
                found.append(int(entry))
    return found


def mib(kib: float) -> float:
    return kib / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=10000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--idle-seconds", type=float, default=5.0, help="idle time before the baseline reading")
    add_json_argument(parser)
    args = parser.parse_args()
    if args.batch % args.accounts or args.deliveries % args.batch:
        sys.exit("--batch must be a multiple of --accounts, and --deliveries a multiple of --batch")

    from rq import Worker

    from callnfy_integrations.extensions import db
    from callnfy_integrations.queues import redis_connection
    from callnfy_integrations.zapier.delivery import WEBHOOKS_BELL

    receiver = Receiver()
    readings: list[dict] = []
    with receiver_app(receiver) as (app, config, env, processes):
        with app.app_context():
            connection = redis_connection()
            accounts = [account(receiver.hook_url) for _ in range(args.accounts)]
            db.session.commit()

            worker = start([sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--queue", "webhooks"], env)
            processes.append(worker)

            def idle() -> bool:
                workers = Worker.all(connection=connection)
                return len(workers) == 1 and workers[0].state == "idle"

            if not wait_until(idle, 60):
                sys.exit("the webhooks worker did not start")
            time.sleep(args.idle_seconds)

            def read(done: int) -> dict:
                helpers = {child: memory_kib(child) for child in children(worker.pid)}
                reading = {"delivered": done, **memory_kib(worker.pid),
                           "children": {str(k): v for k, v in helpers.items()}}
                readings.append(reading)
                helper_rss = sum(v["VmRSS"] for v in helpers.values())
                print(f"after {done:6d} deliveries  worker VmRSS {mib(reading['VmRSS']):7.1f} MiB  "
                      f"VmHWM {mib(reading['VmHWM']):7.1f} MiB  (child processes: {len(helpers)}, "
                      f"{mib(helper_rss):.1f} MiB)", flush=True)
                return reading

            read(0)
            done = 0
            sending_seconds = 0.0
            while done < args.deliveries:
                pending_deliveries(accounts, args.batch // args.accounts, connection)
                before = delivered()
                started = time.monotonic()
                WEBHOOKS_BELL.wake(connection)
                if not wait_until(lambda before=before: delivered() - before >= args.batch, 300):
                    sys.exit(f"only {delivered() - before} of {args.batch} delivered in 300 s")
                sending_seconds += time.monotonic() - started
                done += args.batch
                # The drain job over (nothing left due): the worker back to waiting for work.
                if not wait_until(lambda: idle() and not connection.exists(WEBHOOKS_BELL.flag_key), 60):
                    sys.exit("the webhooks worker did not go idle")
                time.sleep(0.5)
                read(done)

    idle_kib = readings[0]["VmRSS"]
    first = next(r for r in readings if r["delivered"] >= min(1000, args.deliveries))
    last = readings[-1]
    growth = last["VmRSS"] - first["VmRSS"]
    per_thousand = growth / (last["delivered"] - first["delivered"]) * 1000 if last is not first else 0.0
    child_kib = sum(v["VmRSS"] for v in last["children"].values())
    print()
    print(f"one webhooks worker (AppWorker, {config['WEBHOOK_CONCURRENCY']} sender threads), "
          f"{args.deliveries} deliveries in batches of {args.batch} over {args.accounts} accounts "
          f"({args.deliveries / sending_seconds:.0f} deliveries/s while sending):")
    print(f"  baseline: worker idle after start   VmRSS {mib(idle_kib):7.1f} MiB")
    print(f"  after {first['delivered']:6d} deliveries           VmRSS {mib(first['VmRSS']):7.1f} MiB   "
          f"x{first['VmRSS'] / idle_kib:.2f}")
    print(f"  after {last['delivered']:6d} deliveries           VmRSS {mib(last['VmRSS']):7.1f} MiB   "
          f"x{last['VmRSS'] / idle_kib:.2f}   (peak VmHWM {mib(last['VmHWM']):.1f} MiB)")
    print(f"  growth from {first['delivered']} to {last['delivered']}: {mib(growth):+.1f} MiB "
          f"({per_thousand:+.0f} KiB per 1,000 deliveries); RQ scheduler child {mib(child_kib):.1f} MiB")

    write_json(
        args.json, "worker_memory", "Webhooks worker memory (RSS) after 10,000 deliveries",
        f"One `flask worker --queue webhooks` (AppWorker: drain jobs run in the worker process itself, no "
        f"work-horse fork; its RQ scheduler is a forked child that sends nothing) sending to "
        f"`bench/https_receiver.py`. Baseline: the worker's VmRSS (/proc/PID/status) after start-up and "
        f"{args.idle_seconds:g} s idle. Then {args.deliveries} deliveries in batches of {args.batch} over "
        f"{args.accounts} accounts (written straight to the database, the drain woken), VmRSS read after each "
        f"batch once the worker is idle again.",
        [figure("rss_last", f"webhooks worker RSS after {last['delivered']:,} deliveries", mib(last["VmRSS"]),
                "MiB", baseline=mib(idle_kib), baseline_label="same worker, idle after start",
                details=f"peak (VmHWM) {mib(last['VmHWM']):.1f} MiB; {mib(growth):+.1f} MiB from "
                        f"{first['delivered']:,} to {last['delivered']:,} deliveries ({per_thousand:+.0f} KiB per "
                        f"1,000); RQ scheduler child {mib(child_kib):.1f} MiB, not counted"),
         figure("rss_first", f"webhooks worker RSS after {first['delivered']:,} deliveries", mib(first["VmRSS"]),
                "MiB", baseline=mib(idle_kib), baseline_label="same worker, idle after start")],
        readings=readings)


if __name__ == "__main__":
    main()
