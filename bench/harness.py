"""Shared bench plumbing: a scratch database, gunicorn servers with the web dyno's settings, processes."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import create_database, drop_database, make_config  # noqa: E402


@contextmanager
def scratch_environment():
    """Yield (config, env) for a fresh database on DATABASE_URL's server (or embedded) and Redis."""
    from callnfy_integrations import embedded

    server = os.environ.get("DATABASE_URL") or embedded.start_postgres(ROOT / "instance" / "bench-postgres")
    redis_url = os.environ.get("REDIS_URL") or embedded.start_redis(ROOT / "instance" / "bench-redis")
    name = f"callnfy_bench_{secrets.token_hex(3)}"
    database = create_database(server, name)
    try:
        config = make_config(database, redis_url)
        env = {**os.environ, "APP_ENV": "testing", "DATABASE_URL": database, "REDIS_URL": redis_url,
               "LOG_LEVEL": "WARNING", "JWT_SECRET_KEY": config["JWT_SECRET_KEY"],
               "WEB_CONCURRENCY": os.environ.get("WEB_CONCURRENCY", "2"), "PYTHONPATH": str(ROOT)}
        yield config, env
    finally:
        drop_database(server, name)
        embedded.stop_all()


def migrate(app) -> None:
    from flask_migrate import upgrade

    from callnfy_integrations.extensions import db

    with app.app_context():
        upgrade()
        db.engine.dispose()


def serve(target: str, port: int, env: dict) -> subprocess.Popen:
    """gunicorn with gunicorn.conf.py on 127.0.0.1:port; returns once it answers."""
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py",
                                "--bind", f"127.0.0.1:{port}", target], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return process
        except Exception as exc:
            if getattr(exc, "code", None):  # an HTTP error still means "up"
                return process
            time.sleep(0.2)
    raise RuntimeError(f"{target} did not start on port {port}")


def start(command: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
