"""Google push notifications: endpoint latency, and Calendar list calls per burst of notifications.

    python bench/google_push.py [--requests 2000] [--burst 100] [--bursts 3] [--json PATH]

Real parts: the app under gunicorn with the web dyno's settings, the Google sandbox in its own
process, a `worker` process (default + calendar), PostgreSQL and Redis. A user connects through the
sandbox's consent, switches to two-way (baseline + channel), then:
  * latency: --requests notifications (`exists`, the channel's real id and token) one after another;
    baseline in the same run: as many `GET /healthz` (no database) on the same server;
  * coalescing: --burst notifications at once from 20 threads, --bursts times; Calendar `events.list`
    calls made by the syncs they caused, read from the sandbox's counters once every queue is idle;
    baseline in the same run: the same bursts to a second server started with
    GOOGLE_SYNC_DEBOUNCE_SECONDS=0 (each notification's sync enqueued at once, no debounce).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests
from harness import (
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


def timed(session: requests.Session, method: str, url: str, **kwargs) -> float:
    started = time.perf_counter()
    response = session.request(method, url, timeout=10, **kwargs)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        sys.exit(f"{method} {url}: HTTP {response.status_code} {response.text[:200]}")
    return elapsed


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    sys.exit(f"timed out waiting for {what}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--burst", type=int, default=100)
    parser.add_argument("--bursts", type=int, default=3)
    add_json_argument(parser)
    args = parser.parse_args()

    from callnfy_integrations import create_app
    from callnfy_integrations.auth import create_dev_token
    from callnfy_integrations.dev.google_sandbox import CLIENT_ID, CLIENT_SECRET
    from callnfy_integrations.queues import get_queue, redis_connection

    port, sandbox_port = free_port(), free_port()
    base, sandbox = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{sandbox_port}"
    google = {"GOOGLE_CLIENT_ID": CLIENT_ID, "GOOGLE_CLIENT_SECRET": CLIENT_SECRET,
              "GOOGLE_AUTHORIZE_URL": f"{sandbox}/o/oauth2/v2/auth", "GOOGLE_TOKEN_URL": f"{sandbox}/token",
              "GOOGLE_USERINFO_URL": f"{sandbox}/v1/userinfo", "GOOGLE_REVOKE_URL": f"{sandbox}/revoke",
              "GOOGLE_CALENDAR_API_URL": f"{sandbox}/calendar/v3/"}
    processes = []
    with scratch_environment() as (config, env):
        env.update({"PUBLIC_API_URL": base, "GOOGLE_PUSH_RATE_LIMIT": "1000000 per minute", **google})
        config.update({"PUBLIC_API_URL": base, **google})
        app = create_app(config)
        migrate(app)
        try:
            processes.append(start([sys.executable, "-m", "callnfy_integrations.dev.google_sandbox", "--port",
                                    str(sandbox_port)], env))
            web = serve("wsgi:app", port, env)
            processes.append(web)
            processes.append(start([sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--queue", "default",
                                    "--queue", "calendar"], env))
            user_id = uuid.uuid4()
            with app.app_context():
                token = create_dev_token(user_id)
            session = requests.Session()
            session.headers["Authorization"] = f"Bearer {token}"
            auth_url = session.post(f"{base}/integrations/google/connect", timeout=10).json()["data"]["authUrl"]
            consent = requests.get(auth_url + "&sandbox_decision=allow", allow_redirects=False, timeout=10)
            callback = session.get(consent.headers["Location"], allow_redirects=False, timeout=10)
            if "success=true" not in callback.headers.get("Location", ""):
                sys.exit(f"connect failed: {callback.headers.get('Location')}")
            session.put(f"{base}/integrations/google/settings", json={"syncMode": "two-way"}, timeout=10)
            channels = requests.Session()
            wait_until(lambda: channels.get(f"{sandbox}/sandbox/channels", timeout=5).json(), 30, "the channel")
            [channel_id] = channels.get(f"{sandbox}/sandbox/channels", timeout=5).json()
            channel = channels.get(f"{sandbox}/sandbox/channels/{channel_id}", timeout=5).json()
            headers = {"X-Goog-Channel-ID": channel_id, "X-Goog-Channel-Token": channel["token"],
                       "X-Goog-Resource-ID": channel["resourceId"], "X-Goog-Resource-State": "exists",
                       "X-Goog-Message-Number": "2"}
            notify_url = f"{base}/webhooks/google/calendar"

            with app.app_context():
                connection = redis_connection()

                def idle() -> bool:
                    """No job waiting (debounced ones included) or running, three checks in a row."""
                    for _ in range(3):
                        for name in ("default", "calendar"):
                            queue = get_queue(name, connection=connection)
                            if queue.count or queue.started_job_registry.count or queue.scheduled_job_registry.count:
                                return False
                        time.sleep(0.3)
                    return True

                plain = requests.Session()
                for _ in range(50):  # warm-up, both routes
                    timed(plain, "GET", f"{base}/healthz")
                    timed(plain, "POST", notify_url, headers=headers)
                wait_until(idle, 60, "the warm-up's syncs")
                health = [timed(plain, "GET", f"{base}/healthz") for _ in range(args.requests)]
                notified = [timed(plain, "POST", notify_url, headers=headers) for _ in range(args.requests)]
                wait_until(idle, 60, "the latency run's syncs")

                def list_calls() -> int:
                    return channels.get(f"{sandbox}/sandbox/calls", timeout=5).json().get("events.list", 0)

                def bursts_to(url: str) -> list[int]:
                    """events.list calls caused by each of --bursts bursts of --burst notifications."""
                    calls = []
                    for _ in range(args.bursts):
                        before = list_calls()
                        with ThreadPoolExecutor(max_workers=20) as pool:
                            codes = list(pool.map(lambda _: requests.post(url, headers=headers, timeout=10)
                                                  .status_code, range(args.burst)))
                        if set(codes) != {200}:
                            sys.exit(f"burst answers: {sorted(set(codes))}")
                        wait_until(idle, 60, "the burst's syncs")
                        calls.append(list_calls() - before)
                    return calls

                bursts = bursts_to(notify_url)
                # Baseline: the same bursts without the debounce (the web process reads the setting).
                processes.remove(web)
                stop([web])
                plain_port = free_port()
                processes.append(serve("wsgi:app", plain_port, {**env, "GOOGLE_SYNC_DEBOUNCE_SECONDS": "0"}))
                undebounced = bursts_to(f"http://127.0.0.1:{plain_port}/webhooks/google/calendar")
        finally:
            stop(processes)

    h50, h99 = statistics.median(health), percentile(health, 0.99)
    n50, n99 = statistics.median(notified), percentile(notified, 0.99)
    print(f"gunicorn web dyno settings, sequential requests from one client, {args.requests} each:")
    print(f"  baseline: GET /healthz                      p50 {h50:6.2f} ms   p99 {h99:6.2f} ms")
    print(f"  POST /webhooks/google/calendar (exists)      p50 {n50:6.2f} ms   p99 {n99:6.2f} ms   "
          f"(x{n50 / h50:.2f} / x{n99 / h99:.2f} of the baseline)")
    print(f"  events.list calls per burst of {args.burst} notifications ({args.bursts} bursts): {bursts}  "
          f"(goal <= 2 each)")
    print(f"  baseline: the same without the debounce (GOOGLE_SYNC_DEBOUNCE_SECONDS=0): {undebounced}")
    worst, worst_plain = max(bursts), statistics.median(undebounced)
    write_json(
        args.json, "google_push", "Google push notifications: endpoint latency and coalescing",
        f"The app under gunicorn (gunicorn.conf.py), the Google sandbox in its own process, one `worker` process "
        f"(default + calendar). A user connects through the sandbox's consent and switches to two-way; the "
        f"notifications carry the real channel id, token and resource id. Latency: {args.requests} sequential "
        f"notifications from one client, beside as many `GET /healthz` (no database) on the same server. "
        f"Coalescing: {args.bursts} bursts of {args.burst} notifications from 20 threads, `events.list` calls "
        f"counted by the sandbox once every queue is idle; baseline: the same bursts to a second server started "
        f"with GOOGLE_SYNC_DEBOUNCE_SECONDS=0.",
        [figure("coalescing", f"events.list calls per burst of {args.burst} notifications (worst of "
                              f"{args.bursts})", worst, "calls",
                baseline=worst_plain, baseline_label="same bursts, no debounce (median)",
                goal="<= 2 per burst", met=worst <= 2,
                details=f"bursts {bursts}; without the debounce {undebounced}"),
         figure("notify_p50", "POST /webhooks/google/calendar p50", n50, "ms", baseline=h50,
                baseline_label="GET /healthz p50, same server", details=f"{args.requests} sequential requests"),
         figure("notify_p99", "POST /webhooks/google/calendar p99", n99, "ms", baseline=h99,
                baseline_label="GET /healthz p99, same server", details=f"{args.requests} sequential requests")])


if __name__ == "__main__":
    main()
