"""Google push notifications: endpoint latency, and Calendar list calls per burst of notifications.

    python bench/google_push.py [--requests 2000] [--burst 100]

Real parts: the app under gunicorn with the web dyno's settings, the Google sandbox in its own
process, a `worker` process (default + calendar), PostgreSQL and Redis. A user connects through the
sandbox's consent, switches to two-way (baseline + channel), then:
  * latency: --requests notifications (`exists`, the channel's real id and token) one after another;
    baseline in the same run: as many `GET /healthz` (no database) on the same server;
  * coalescing: --burst notifications at once from 20 threads; Calendar `events.list` calls made by
    the syncs they caused, read from the sandbox's counters once every queue is idle.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests

from harness import migrate, scratch_environment, serve, start, stop


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


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
    args = parser.parse_args()

    from callnfy_integrations import create_app
    from callnfy_integrations.auth import create_dev_token
    from callnfy_integrations.google_sandbox import CLIENT_ID, CLIENT_SECRET
    from callnfy_integrations.queues import get_queue, redis_connection

    port, sandbox_port = 5861, 5862
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
            processes.append(start([sys.executable, "-m", "callnfy_integrations.google_sandbox", "--port",
                                    str(sandbox_port)], env))
            processes.append(serve("wsgi:app", port, env))
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

                bursts = []
                for _ in range(3):
                    before = list_calls()
                    with ThreadPoolExecutor(max_workers=20) as pool:
                        codes = list(pool.map(lambda _: requests.post(notify_url, headers=headers, timeout=10)
                                              .status_code, range(args.burst)))
                    if set(codes) != {200}:
                        sys.exit(f"burst answers: {sorted(set(codes))}")
                    wait_until(idle, 60, "the burst's syncs")
                    bursts.append(list_calls() - before)
        finally:
            stop(processes)

    h50, h99 = statistics.median(health), percentile(health, 0.99)
    n50, n99 = statistics.median(notified), percentile(notified, 0.99)
    print(f"gunicorn web dyno settings, sequential requests from one client, {args.requests} each:")
    print(f"  baseline: GET /healthz                      p50 {h50:6.2f} ms   p99 {h99:6.2f} ms")
    print(f"  POST /webhooks/google/calendar (exists)      p50 {n50:6.2f} ms   p99 {n99:6.2f} ms   "
          f"(x{n50 / h50:.2f} / x{n99 / h99:.2f} of the baseline)")
    print(f"  events.list calls per burst of {args.burst} notifications (3 bursts): {bursts}  (goal <= 2 each)")


if __name__ == "__main__":
    main()
