"""Throughput and latency of GET /integrations/status under gunicorn, against a ceiling app.

Both apps run under gunicorn with the web dyno's settings (gunicorn.conf.py) on this machine, loaded by wrk over
loopback with rotating JWTs of seeded users (each with Google and Zapier rows). Rounds alternate
ceiling/status so machine noise hits both; medians and the status/ceiling ratio are printed.

    python bench/status_throughput.py [--rounds 3] [--duration 10] [--connections 32] [--users 500] [--json PATH]

Needs `wrk` (Debian package). Uses DATABASE_URL's server (a scratch database is created and
dropped) or the embedded PostgreSQL; REDIS_URL or embedded Redis.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from harness import add_json_argument, figure, free_port, migrate, scratch_environment, serve, stop, write_json

LUA = """
local tokens = {}
init = function(args)
  for line in io.lines(args[1]) do tokens[#tokens + 1] = line end
end
local i = 0
request = function()
  i = (i % #tokens) + 1
  return wrk.format("GET", nil, {["Authorization"] = "Bearer " .. tokens[i]})
end
"""


def seed(app, users: int) -> list[str]:
    from callnfy_integrations.auth import create_dev_token
    from callnfy_integrations.extensions import db
    from tests.factories import make_google_integration, make_user, make_zapier_integration

    migrate(app)
    tokens = []
    with app.app_context():
        for _ in range(users):
            user = make_user(uuid.uuid4())
            make_google_integration(user)
            make_zapier_integration(user)
            tokens.append(create_dev_token(user.id))
        db.engine.dispose()
    return tokens


def to_ms(value: str) -> float:
    if value in ("-nan", "nan", "0.00us"):
        return float("nan")
    number, unit = re.match(r"([\d.]+)(us|ms|s|m|h)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}[unit]


def load(url: str, script: Path, tokens: Path, duration: int, connections: int) -> dict:
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script),
                          url, "--", str(tokens)], capture_output=True, text=True, check=True).stdout
    if not re.search(r"^\s*50%\s+[\d.]+", out, re.M):
        raise RuntimeError(f"wrk reported no latencies (did the server answer?):\n{out}")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": to_ms(re.search(r"^\s*50%\s+(\S+)", out, re.M).group(1)),
        "p99": to_ms(re.search(r"^\s*99%\s+(\S+)", out, re.M).group(1)),
        "errors": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--users", type=int, default=500)
    add_json_argument(parser)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is required: apt-get install wrk")

    from callnfy_integrations import create_app

    processes = []
    with scratch_environment() as (config, env):
        try:
            _measure(args, create_app(config), env, processes)
        finally:
            stop(processes)


def _measure(args, app, env: dict, processes: list) -> None:
    tokens = seed(app, args.users)
    work = Path(tempfile.mkdtemp())
    (work / "tokens.txt").write_text("\n".join(tokens) + "\n")
    (work / "rotate.lua").write_text(LUA)
    targets = {"ceiling": ("bench.ceiling_app:app", free_port(), "/ceiling"),
               "status": ("wsgi:app", free_port(), "/integrations/status")}
    for target, port, _ in targets.values():
        processes.append(serve(target, port, env))
    results: dict[str, list[dict]] = {"ceiling": [], "status": []}
    for name_ in results:  # warm-up: pools, imports and caches
        load(f"http://127.0.0.1:{targets[name_][1]}{targets[name_][2]}", work / "rotate.lua",
             work / "tokens.txt", 3, args.connections)
    for round_ in range(args.rounds):
        for name_, (_, port, path) in targets.items():
            result = load(f"http://127.0.0.1:{port}{path}", work / "rotate.lua", work / "tokens.txt",
                          args.duration, args.connections)
            results[name_].append(result)
            print(f"round {round_ + 1} {name_:8s} {result['rps']:8.1f} req/s  p50 {result['p50']:6.2f} ms  "
                  f"p99 {result['p99']:6.2f} ms  non-2xx {result['errors']} {result['socket_errors']}", flush=True)
    median = {n: {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50", "p99")}
              for n, rs in results.items()}
    # Each round runs the two apps back to back, so the per-round ratio cancels most machine drift.
    ratios = [s["rps"] / c["rps"] for s, c in zip(results["status"], results["ceiling"], strict=True)]
    ratio = statistics.median(ratios)
    print(f"\nmedian of {args.rounds} rounds, {args.connections} connections, {args.duration}s each:")
    for n, m in median.items():
        print(f"  {n:8s} {m['rps']:8.1f} req/s  p50 {m['p50']:6.2f} ms  p99 {m['p99']:6.2f} ms")
    print(f"  status / ceiling throughput, median of per-round ratios: {ratio:.2f}  (goal >= 0.80)"
          f"  [{', '.join(f'{r:.2f}' for r in ratios)}]")
    print(f"  p99: status {median['status']['p99']:.1f} ms, ceiling {median['ceiling']['p99']:.1f} ms (goal <= 50 ms)")
    errors = sum(r["errors"] for rs in results.values() for r in rs)
    socket_errors = [r["socket_errors"] for rs in results.values() for r in rs if r["socket_errors"]]
    status, ceiling = median["status"], median["ceiling"]
    write_json(
        args.json, "status_throughput", "GET /integrations/status vs its ceiling",
        f"`wsgi:app` and `bench/ceiling_app.py` (verify the JWT, one primary-key SELECT) under gunicorn with "
        f"gunicorn.conf.py, loaded by `wrk -t2 -c{args.connections} --latency` over loopback rotating "
        f"{args.users} seeded users' JWTs; {args.rounds} rounds of {args.duration} s, ceiling then status in "
        f"each round (after a 3 s warm-up of each).",
        [figure("status_rps", "GET /integrations/status throughput", status["rps"], "req/s",
                baseline=ceiling["rps"], baseline_label="ceiling app, same rounds", ratio=ratio,
                ratio_note="median of per-round ratios", goal="ratio >= 0.80", met=ratio >= 0.80,
                details="per-round ratios " + ", ".join(f"{r:.2f}" for r in ratios)),
         figure("status_p99", f"GET /integrations/status p99 at {args.connections} connections", status["p99"], "ms",
                baseline=ceiling["p99"], baseline_label="ceiling app p99", goal="<= 50 ms",
                met=status["p99"] <= 50, details=f"p50 {status['p50']:.2f} ms vs ceiling {ceiling['p50']:.2f} ms; "
                                                  f"medians of {args.rounds} rounds")],
        rounds=results, non_2xx=errors, socket_errors=socket_errors)


if __name__ == "__main__":
    main()
