"""The baseline of the webhook benches: a raw `requests.Session` POST loop to the HTTPS receiver.

    python bench/raw_loop.py URL CA_BUNDLE SECONDS START_AT

One process, one thread, keep-alive, a fixed small body, no signing, no database. It warms up, waits
until the wall-clock time START_AT (so several processes load the receiver over the same window),
loops for SECONDS and prints `{"requests": N, "seconds": S}`. `run(...)` starts N of them at once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

BODY = b'{"event":"call.received","data":{}}'


def loop(url: str, ca_bundle: str, seconds: float, start_at: float) -> dict:
    import requests

    with requests.Session() as session:
        session.trust_env = False  # else REQUESTS_CA_BUNDLE from the environment overrides verify
        session.verify = ca_bundle
        headers = {"Content-Type": "application/json"}
        for _ in range(50):  # warm-up: connection, TLS session, imports
            session.post(url, data=BODY, headers=headers).raise_for_status()
        time.sleep(max(0.0, start_at - time.time()))
        count, started = 0, time.monotonic()
        while time.monotonic() - started < seconds:
            session.post(url, data=BODY, headers=headers)
            count += 1
        return {"requests": count, "seconds": time.monotonic() - started}


def run(url: str, ca_bundle: str, seconds: float, processes: int = 1) -> float:
    """Requests/s of `processes` raw loops running side by side over the same window (their sum)."""
    start_at = time.time() + 2.0  # time for each to import requests and warm up
    children = [subprocess.Popen([sys.executable, str(Path(__file__).resolve()), url, ca_bundle, str(seconds),
                                  repr(start_at)], stdout=subprocess.PIPE, text=True) for _ in range(processes)]
    results = []
    for child in children:
        out, _ = child.communicate(timeout=seconds + 60)
        if child.returncode != 0:
            raise RuntimeError(f"raw loop failed (exit {child.returncode})")
        results.append(json.loads(out))
    return sum(r["requests"] / r["seconds"] for r in results)


if __name__ == "__main__":
    print(json.dumps(loop(sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]))))
