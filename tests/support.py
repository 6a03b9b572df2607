"""Helpers the tests (and bench/) import: scratch databases, the app's configuration, real `flask`
processes that never outlive their test, and `wait_for`. Fixtures live in conftest.py and the fixture
modules it registers; this module defines none."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg2
from psycopg2 import sql
from sqlalchemy.engine import make_url

from callnfy_integrations.config import load_config, normalize_database_url

REPO_ROOT = Path(__file__).resolve().parent.parent


def admin_dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(normalize_database_url(url))
    if database:
        parsed = parsed.set(database=database)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def create_database(server_url: str, name: str) -> str:
    conn = psycopg2.connect(admin_dsn(server_url))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    conn.close()
    return make_url(normalize_database_url(server_url)).set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, name: str) -> None:
    conn = psycopg2.connect(admin_dsn(server_url))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    conn.close()


def make_config(database_url: str, redis_url: str, **overrides) -> dict:
    environ = {"APP_ENV": "testing", "DATABASE_URL": database_url, "REDIS_URL": redis_url,
               "PUBLIC_API_URL": "https://api.callnfy.test", "FRONTEND_URL": "https://app.callnfy.test",
               "LOG_LEVEL": "WARNING"}
    environ.update({k: v for k, v in overrides.items() if v is not None})
    return load_config(environ)


_STARTED: list[subprocess.Popen] = []


def run_flask(env: dict, *args: str, **kwargs) -> subprocess.Popen:
    """A real `flask` process, in its own process group (a worker's RQ scheduler is a child process);
    whatever of it is still running when the test ends is killed, group and all."""
    kwargs.setdefault("start_new_session", True)
    process = subprocess.Popen([sys.executable, "-m", "flask", *args], cwd=REPO_ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)
    _STARTED.append(process)
    return process


def kill_started() -> None:
    """No process of a test outlives it: a stray worker would take the next tests' jobs."""
    while _STARTED:
        process = _STARTED.pop()
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def wait_for(predicate, timeout: float = 15.0, interval: float = 0.05):
    """Poll until `predicate()` is truthy; return its value or fail with the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")
